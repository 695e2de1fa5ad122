/* test_fstore.c - the feature store client (src/fstore.c) on its own,
 * against the test MariaDB (database it_fstore) and small tables written
 * here, so each case knows every row it reads.
 *
 * What is checked: columns in spec order, SQL NULL as NaN (numbers) and
 * NULL (strings), equal strings stored once, labels mapped to class
 * indexes, rows in primary-key order whatever the insert order, row keys
 * without the column the filter pins; the filter rendered for ds (other
 * dates not read); clear errors naming table, row and column for a label
 * that is not a class and text in a numeric column; no rows, a bad ds and
 * a filter with {{ conf.X }} refused; a cancel callback stops the read;
 * fstore_lookup returns the newest row of one key.
 */
#include <math.h>

#include "check.h"
#include "fixture.h"

#include "mlopsd/fstore.h"
#include "mlopsd/log.h"
#include "mlopsd/spec.h"

#define DBNAME "it_fstore"

static struct err E;
static struct db_pool *P;

static struct spec *spec_with(const char *table, const char *filter)
{
  char y[1024];
  snprintf(y, sizeof(y),
           "name: m\n"
           "source: {table: %s, filter: \"%s\", key: cust}\n"
           "target: {column: label, classes: [Poor, Standard, Good]}\n"
           "features:\n"
           "  numeric: [{name: income}, {name: age}]\n"
           "  categorical: [{name: job}]\n",
           table, filter);
  struct spec *s = NULL;
  if (spec_load_buf("/t/m.yaml", y, strlen(y), &s, &E))
    fprintf(stderr, "  spec: %s\n", E.msg);
  return s;
}

static int sql(const char *q) { return fx_exec(P, q, 0); }

/* t: primary key (base_dt, id); rows of two dates inserted out of
 * order; NULLs in a number and a string; a repeated job */
static int make_tables(void)
{
  return sql("CREATE TABLE t (base_dt DATE NOT NULL, id INT NOT NULL, "
             "cust VARCHAR(16), income DOUBLE, age INT, job VARCHAR(32), "
             "label VARCHAR(16), PRIMARY KEY (base_dt, id))") ||
         sql("INSERT INTO t VALUES "
             "('2025-09-01', 3, 'c3', 30.5, 41, 'Lawyer', 'Good'),"
             "('2025-09-01', 1, 'c1', NULL, 18, 'Lawyer', 'Poor'),"
             "('2025-08-01', 9, 'c1', 1.0, 17, 'Old', 'Poor'),"
             "('2025-09-01', 2, 'c2', 20.0, 30, NULL, 'Standard')") ||
         /* bad rows: a label that is no class, text in a number */
         sql("CREATE TABLE badlabel LIKE t") ||
         sql("INSERT INTO badlabel VALUES "
             "('2025-09-01', 1, 'c1', 1, 1, 'x', 'Poor'),"
             "('2025-09-01', 2, 'c7', 1, 1, 'x', 'Fair')") ||
         sql("CREATE TABLE badnum (base_dt DATE, id INT PRIMARY KEY, "
             "cust VARCHAR(16), income VARCHAR(16), age INT, "
             "job VARCHAR(8), label VARCHAR(16))") ||
         sql("INSERT INTO badnum VALUES "
             "('2025-09-01', 1, 'c1', '12.5', 1, 'x', 'Poor'),"
             "('2025-09-01', 2, 'c2', 'lots', 1, 'x', 'Poor')");
}

TEST(columns_nulls_order_and_labels)
{
  struct spec *s = spec_with("t", "base_dt = '{{ ds }}'");
  REQUIRE(s);
  struct fstore_set *set = NULL;
  REQUIRE_OK(fstore_read_training(P, s, "2025-09-01", NULL, NULL, &set, &E));
  CHECK_EQ_INT(set->n_rows, 3); /* the 2025-08-01 row is not read */
  CHECK_EQ_INT(set->n_features, 3);
  /* primary-key order: id 1, 2, 3 (inserted 3, 1, 2) */
  CHECK_EQ_STR(set->keys[0], "c1");
  CHECK_EQ_STR(set->keys[1], "c2");
  CHECK_EQ_STR(set->keys[2], "c3");
  /* spec order: income, age (numbers), job (string) */
  REQUIRE(set->cols[0].num && set->cols[1].num && set->cols[2].str);
  CHECK(isnan(set->cols[0].num[0]));
  CHECK_NEAR(set->cols[0].num[1], 20.0, 0);
  CHECK_NEAR(set->cols[0].num[2], 30.5, 0);
  CHECK_NEAR(set->cols[1].num[0], 18, 0);
  CHECK_EQ_STR(set->cols[2].str[0], "Lawyer");
  CHECK(set->cols[2].str[1] == NULL);
  /* the two "Lawyer" values are one stored string */
  CHECK(set->cols[2].str[0] == set->cols[2].str[2]);
  CHECK_EQ_INT(set->labels[0], 0); /* Poor */
  CHECK_EQ_INT(set->labels[1], 1); /* Standard */
  CHECK_EQ_INT(set->labels[2], 2); /* Good */
  CHECK(set->target == NULL);
  /* row keys: the primary key without base_dt, which the filter pins */
  CHECK_EQ_INT(set->n_row_key_cols, 1);
  CHECK_EQ_STR(set->row_key_cols[0], "id");
  CHECK_EQ_STR(set->row_keys[0], "1");
  CHECK_EQ_STR(set->row_keys[2], "3");
  CHECK_HAS(set->sql, "WHERE (base_dt = '2025-09-01')");
  CHECK_HAS(set->sql, "ORDER BY `base_dt`, `id`");
  fstore_set_free(set);
  spec_destroy(s);
}

/* Reading TABLE under FILTER at DS fails with WANT (ERR_OK: with any
 * error), gives no set, and E.msg has each of SAID (NULL-terminated, may
 * be NULL). */
static void check_refused(const char *table, const char *filter,
                          const char *ds, enum err_code want,
                          const char *const *said)
{
  struct spec *s = spec_with(table, filter);
  struct fstore_set *set = NULL;
  if (!s) {
    check_fail_at(__FILE__, __LINE__, "no spec for %s", table);
    return;
  }
  enum err_code rc = fstore_read_training(P, s, ds, NULL, NULL, &set, &E);
  if (want != ERR_OK ? rc != want : rc == ERR_OK)
    check_fail_at(__FILE__, __LINE__, "%s where %s at %s: %s (%s), want %s",
                  table, filter, ds, err_str(rc), E.msg,
                  want != ERR_OK ? err_str(want) : "an error");
  if (set != NULL)
    check_fail_at(__FILE__, __LINE__, "%s where %s at %s: a set", table,
                  filter, ds);
  for (size_t i = 0; said && said[i]; i++)
    if (!strstr(E.msg, said[i]))
      check_fail_at(__FILE__, __LINE__, "%s where %s at %s: \"%s\" lacks "
                    "\"%s\"", table, filter, ds, E.msg, said[i]);
  fstore_set_free(set);
  spec_destroy(s);
}

TEST(bad_label_named_with_row_and_key)
{
  check_refused("badlabel", "base_dt = '{{ ds }}'", "2025-09-01", ERR_INVAL,
                (const char *const[]){"label 'Fair' in column label (row 2, "
                                      "cust=c7) is not one of the classes "
                                      "Poor, Standard, Good",
                                      NULL});
}

TEST(text_in_a_numeric_column)
{
  check_refused("badnum", "base_dt = '{{ ds }}'", "2025-09-01", ERR_INVAL,
                (const char *const[]){"badnum", "income", "lots", NULL});
}

TEST(no_rows_bad_ds_and_conf_filter)
{
  check_refused("t", "base_dt = '{{ ds }}'", "2025-07-01", ERR_NOTFOUND,
                NULL);
  CHECK_EQ_STR(E.msg, "no training rows in t for base_dt=2025-07-01");
  check_refused("t", "base_dt = '{{ ds }}'", "2025-02-30", ERR_INVAL, NULL);
  check_refused("t", "base_dt = '{{ ds }}'", "yesterday", ERR_INVAL, NULL);
  check_refused("t", "base_dt = '{{ conf.day }}'", "2025-09-01", ERR_OK,
                (const char *const[]){"conf", NULL});
}

static int cancel_now(void *ud)
{
  (*(int *)ud)++;
  return 1;
}

TEST(cancel_stops_the_read)
{
  /* enough rows for the cancel callback to be polled */
  REQUIRE(sql("CREATE TABLE big (base_dt DATE, id INT PRIMARY KEY, "
              "cust VARCHAR(16), income DOUBLE, age INT, job VARCHAR(8), "
              "label VARCHAR(16))") == 0);
  REQUIRE(sql("INSERT INTO big SELECT '2025-09-01', seq, CONCAT('c', seq), "
              "seq, 30, 'x', 'Poor' FROM seq_1_to_20000") == 0);
  struct spec *s = spec_with("big", "base_dt = '{{ ds }}'");
  REQUIRE(s);
  struct fstore_set *set = NULL;
  int polls = 0;
  CHECK_EQ_INT(fstore_read_training(P, s, "2025-09-01", cancel_now, &polls,
                                    &set, &E),
               ERR_CANCELED);
  CHECK(set == NULL);
  CHECK(polls >= 1);
  /* the connection is usable again afterwards */
  REQUIRE_OK(fstore_read_training(P, s, "2025-09-01", NULL, NULL, &set, &E));
  CHECK_EQ_INT(set->n_rows, 20000);
  fstore_set_free(set);
  spec_destroy(s);
}

TEST(lookup_newest_row_of_a_key)
{
  struct spec *s = spec_with("t", "base_dt = '{{ ds }}'");
  REQUIRE(s);
  cJSON *o = NULL;
  REQUIRE_OK(fstore_lookup(P, s, "c1", &o, &E));
  /* c1 has rows on 2025-08-01 and 2025-09-01: the newer one */
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "income")));
  CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "age")), 18, 0);
  CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "job")),
               "Lawyer");
  cJSON_Delete(o);
  o = NULL;
  CHECK_EQ_INT(fstore_lookup(P, s, "nobody", &o, &E), ERR_NOTFOUND);
  CHECK_EQ_STR(E.msg, "no row in t with cust=nobody");
  CHECK(o == NULL);
  spec_destroy(s);
}

int main(void)
{
  log_set_level(LOG_ERROR);
  if (fx_db_recreate(DBNAME) || !(P = fx_pool(DBNAME, 2)) || make_tables()) {
    fprintf(stderr, "test_fstore: set-up failed (run through tests/run.sh)\n");
    printf("check: 0 passed, 1 failed\n");
    db_pool_destroy(P);
    return 1;
  }
  RUN(columns_nulls_order_and_labels);
  RUN(bad_label_named_with_row_and_key);
  RUN(text_in_a_numeric_column);
  RUN(no_rows_bad_ds_and_conf_filter);
  RUN(cancel_stops_the_read);
  RUN(lookup_newest_row_of_a_key);
  fx_exec(P, "DROP DATABASE " DBNAME, 0);
  db_pool_destroy(P);
  return check_done();
}
