-- features.sql - the course's feature extraction for one logical date.
--
-- Rebuilds credit_score_features_target for base_dt = {{ ds }}:
--   1. drop the rows of this logical date (so a rerun is idempotent) and
--      every row at least 7 days older (the course keeps one week);
--   2. insert the join of the feature table with the labels of the month
--      before the logical date (course semantics: date BETWEEN ds - 1 month
--      AND ds, compared as the course does).
-- Templated by mlopsd's sql task: {{ ds }} is YYYY-MM-DD in the scheduler
-- timezone, substituted as a validated literal.

DELETE FROM credit_score_features_target
 WHERE base_dt = '{{ ds }}'
    OR base_dt <= DATE_FORMAT(DATE_SUB(DATE('{{ ds }}'), INTERVAL 7 DAY), '%Y-%m-%d');

INSERT INTO credit_score_features_target (
  base_dt, id, customer_id, date, age, occupation, annual_income,
  monthly_inhand_salary, num_bank_accounts, num_credit_card, interest_rate,
  num_of_loan, type_of_loan, delay_from_due_date, num_of_delayed_payment,
  changed_credit_limit, num_credit_inquiries, credit_mix, outstanding_debt,
  credit_utilization_ratio, credit_history_age, payment_of_min_amount,
  total_emi_per_month, amount_invested_monthly, payment_behaviour,
  monthly_balance, credit_score)
SELECT '{{ ds }}', s.id, s.customer_id, s.date, f.age, f.occupation,
       f.annual_income, f.monthly_inhand_salary, f.num_bank_accounts,
       f.num_credit_card, f.interest_rate, f.num_of_loan, f.type_of_loan,
       f.delay_from_due_date, f.num_of_delayed_payment,
       f.changed_credit_limit, f.num_credit_inquiries, f.credit_mix,
       f.outstanding_debt, f.credit_utilization_ratio, f.credit_history_age,
       f.payment_of_min_amount, f.total_emi_per_month,
       f.amount_invested_monthly, f.payment_behaviour, f.monthly_balance,
       s.credit_score
  FROM credit_score_features AS f
  JOIN (SELECT id, customer_id, date, credit_score
          FROM credit_score
         WHERE date BETWEEN DATE_SUB(DATE('{{ ds }}'), INTERVAL 1 MONTH)
                        AND DATE('{{ ds }}')) AS s
    ON f.id = s.id AND f.customer_id = s.customer_id;
