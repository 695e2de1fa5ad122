-- feature extraction for {{ ds }}; the ';' in this comment is not a split
DELETE FROM credit_score_features_target
 WHERE base_dt = '{{ ds }}' OR base_dt < DATE_SUB('{{ ds }}', INTERVAL 7 DAY);

INSERT INTO credit_score_features_target
SELECT f.*, '{{ ds }}' AS base_dt
  FROM credit_score_features f
 WHERE f.month = DATE_FORMAT(DATE_SUB('{{ ds }}', INTERVAL 1 MONTH), '%Y-%m');
