-- bad template on line 3
SELECT 1;
SELECT * FROM t WHERE d = {{ ds_add(x) }};
