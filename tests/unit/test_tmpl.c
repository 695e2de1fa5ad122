/* test_tmpl.c - templates: names, load-time checks, rendering per mode. */
#include "check.h"
#include "mlopsd/tmpl.h"

static const struct tmpl_var params[] = {
    {"days", "7"},
    {"table", "credit_score"},
    {"ratio", "-1.5e-3"},
    {"bad", "x'; DROP TABLE t; --"},
    {"dashes", "a -- b"},
    {"host", "https://example.com:8443/api"},
    {"multi", "a\r\nX-Evil: 1"},
};
static const struct tmpl_var conf[] = {
    {"name", "O'Brien; DROP TABLE x"},
    {"n", "42"},
    {"path", "a b&c/d?e"},
};

static struct tmpl_ctx ctx(void)
{
  struct tmpl_ctx c = {0};
  c.ds = "2025-09-01";
  c.run_id = "scheduled__2025-09-01T00:00:00+09:00";
  c.dag_id = "credit_score_ct";
  c.params = params;
  c.nparams = sizeof(params) / sizeof(params[0]);
  c.conf = conf;
  c.nconf = sizeof(conf) / sizeof(conf[0]);
  return c;
}

/* Render in mode and compare; returns the output (static buffer). */
static const char *render(const char *text, enum tmpl_mode mode,
                          struct tmpl_binds *binds, enum err_code *rc,
                          struct err *e)
{
  static char last[4096];
  struct tmpl_ctx c = ctx();
  char *out = NULL;
  *rc = tmpl_render(text, &c, mode, &out, binds, e);
  snprintf(last, sizeof(last), "%s", out ? out : "(null)");
  if (*rc != ERR_OK && out)
    snprintf(last, sizeof(last), "(leak)");
  free(out);
  return last;
}

TEST(names)
{
  enum err_code rc;
  struct err e = {0};
  CHECK_EQ_STR(render("{{ds}} {{ ds_nodash }} {{  run_id  }} {{dag_id}}",
                      TMPL_PLAIN, NULL, &rc, &e),
               "2025-09-01 20250901 scheduled__2025-09-01T00:00:00+09:00 "
               "credit_score_ct");
  CHECK_EQ_INT(rc, ERR_OK);
  CHECK_EQ_STR(render("{{ ds_add(-1) }}|{{ds_add(1)}}|{{ ds_add( +31 ) }}|"
                      "{{ ds_add(-244) }}|{{ds_add(0)}}",
                      TMPL_PLAIN, NULL, &rc, &e),
               "2025-08-31|2025-09-02|2025-10-02|2024-12-31|2025-09-01");
  CHECK_EQ_STR(render("{{ params.days }} {{conf.n}}", TMPL_PLAIN, NULL, &rc,
                      &e),
               "7 42");
  CHECK_EQ_STR(render("no tags { } }} {", TMPL_PLAIN, NULL, &rc, &e),
               "no tags { } }} {");
  CHECK_EQ_STR(render("", TMPL_PLAIN, NULL, &rc, &e), "");
  CHECK_EQ_INT(rc, ERR_OK);
}

static void check_err(const char *text, enum tmpl_mode mode, int line,
                      int col, const char *want)
{
  static const char *const names[] = {"days", "table"};
  struct tmpl_pos p = {0};
  struct err e = {0};
  CHECK_EQ_INT(tmpl_check(text, mode, names, 2, &p, &e), ERR_PARSE);
  CHECK_EQ_STR(e.msg, want);
  CHECK_EQ_INT(p.line, line);
  CHECK_EQ_INT(p.col, col);
}

/* every conf / params name resolves to user */
static const char *lookup_any(void *user, enum tmpl_kind kind,
                              const char *name)
{
  (void)kind;
  (void)name;
  return user;
}

TEST(check)
{
  static const char *const names[] = {"days", "table"};
  struct err e = {0};
  struct tmpl_pos p;
  CHECK_EQ_INT(tmpl_check("SELECT * FROM {{ params.table }} WHERE d = "
                          "'{{ ds }}' AND x = {{ conf.anything }}",
                          TMPL_SQL, names, 2, &p, &e),
               ERR_OK);
  CHECK_EQ_INT(tmpl_check(NULL, TMPL_SQL, NULL, 0, NULL, &e), ERR_OK);
  check_err("a\nb {{ yesterday }}", TMPL_PLAIN, 2, 3,
            "unknown template name 'yesterday' (known: ds, ds_nodash, "
            "ds_add(N), run_id, dag_id, params.NAME, conf.NAME)");
  check_err("x {{ params.nope }}", TMPL_PLAIN, 1, 3,
            "unknown template name 'params.nope': the DAG declares no param "
            "'nope' (params: days, table)");
  check_err("{{ ds }} {{ ds", TMPL_PLAIN, 1, 10,
            "unterminated '{{' (no '}}' on the same line)");
  check_err("{{ ds\n}}", TMPL_PLAIN, 1, 1,
            "unterminated '{{' (no '}}' on the same line)");
  check_err("{{  }}", TMPL_PLAIN, 1, 1,
            "empty template '{{ }}' (known: ds, ds_nodash, ds_add(N), "
            "run_id, dag_id, params.NAME, conf.NAME)");
  check_err("{{ ds | upper }}", TMPL_PLAIN, 1, 1,
            "bad template '{{ ds | upper }}': filters and expressions are "
            "not supported (known: ds, ds_nodash, ds_add(N), run_id, "
            "dag_id, params.NAME, conf.NAME)");
  check_err("{{ ds_add(x) }}", TMPL_PLAIN, 1, 1,
            "bad template '{{ ds_add(x) }}': ds_add takes a whole number of "
            "days, e.g. ds_add(-1)");
  check_err("{{ ds_add }}", TMPL_PLAIN, 1, 1,
            "bad template '{{ ds_add }}': ds_add takes a whole number of "
            "days, e.g. ds_add(-1)");
  check_err("{{ ds_add(1000000) }}", TMPL_PLAIN, 1, 1,
            "bad template '{{ ds_add(1000000) }}': more than 100000 days");
  check_err("{{ conf }}", TMPL_PLAIN, 1, 1,
            "bad template '{{ conf }}': write conf.NAME");
  /* names up to TMPL_NAME_MAX are looked up; longer ones are refused by
   * the check, so a checked template never fails to render for that
   * (fuzz_tmpl found a 133-character conf name the check passed and the
   * render could not look up) */
  {
    char t[TMPL_NAME_MAX + 32], msg[512];
    int n = snprintf(t, sizeof(t), "{{ conf.%0*d }}", TMPL_NAME_MAX, 0);
    REQUIRE(n > 0 && (size_t)n < sizeof(t));
    CHECK_EQ_INT(tmpl_check(t, TMPL_SHELL, NULL, 0, NULL, &e), ERR_OK);
    char *out = NULL;
    struct tmpl_binds b = {0};
    struct tmpl_ctx c = {.ds = "2025-03-30", .lookup = lookup_any,
                         .user = "42"};
    CHECK_EQ_INT(tmpl_render(t, &c, TMPL_PLAIN, &out, &b, &e), ERR_OK);
    CHECK(out && strcmp(out, "42") == 0);
    free(out);
    tmpl_binds_free(&b);
    n = snprintf(t, sizeof(t), "{{ conf.%0*d }}", TMPL_NAME_MAX + 1, 0);
    REQUIRE(n > 0 && (size_t)n < sizeof(t));
    snprintf(msg, sizeof(msg), "bad template '%s': NAME in conf.NAME is %d "
             "characters, at most %d", t, TMPL_NAME_MAX + 1, TMPL_NAME_MAX);
    check_err(t, TMPL_PLAIN, 1, 1, msg);
  }
  check_err("{{ conf.a.b }}", TMPL_PLAIN, 1, 1,
            "bad template '{{ conf.a.b }}': NAME in conf.NAME must be "
            "letters, digits or _ (no filters or expressions)");
  check_err("{{ 1 + 1 }}", TMPL_PLAIN, 1, 1,
            "bad template '{{ 1 + 1 }}' (known: ds, ds_nodash, ds_add(N), "
            "run_id, dag_id, params.NAME, conf.NAME)");
  /* SQL placement */
  check_err("SELECT 1;\nSELECT * FROM t WHERE name = '{{ conf.who }}'",
            TMPL_SQL, 2, 31,
            "{{ conf.who }} is inside a '...' string: conf values are bound "
            "as parameters (?), which cannot stand inside quotes; put the "
            "tag outside quotes, e.g. WHERE name = {{ conf.who }} or "
            "CONCAT('%', {{ conf.who }}, '%')");
  check_err("SELECT \"{{ conf.x }}\"", TMPL_SQL, 1, 9,
            "{{ conf.x }} is inside a \"...\" string: conf values are bound "
            "as parameters (?), which cannot stand inside quotes; put the "
            "tag outside quotes, e.g. WHERE name = {{ conf.x }} or "
            "CONCAT('%', {{ conf.x }}, '%')");
  check_err("SELECT 1 -- {{ conf.x }}", TMPL_SQL, 1, 13,
            "{{ conf.x }} is inside a line comment: a bound parameter there "
            "would never be used; remove it");
  check_err("SELECT a FROM t WHERE a = ? AND d = '{{ ds }}'", TMPL_SQL, 1,
            27,
            "literal '?' outside quotes: in sql, placeholders are reserved "
            "for {{ conf.NAME }}");
  check_err("SELECT '{{ ds }}'\n  , ?", TMPL_SQL, 2, 5,
            "literal '?' outside quotes: in sql, placeholders are reserved "
            "for {{ conf.NAME }}");
  /* '?' in strings and comments is fine, conf in quotes fine in plain */
  CHECK_EQ_INT(tmpl_check("SELECT '?', `?` -- ?\n", TMPL_SQL, NULL, 0, &p,
                          &e),
               ERR_OK);
  CHECK_EQ_INT(tmpl_check("echo '{{ conf.x }}'", TMPL_PLAIN, NULL, 0, &p,
                          &e),
               ERR_OK);
  /* shell placement */
  check_err("echo \"hello {{ conf.who }}\"", TMPL_SHELL, 1, 13,
            "{{ conf.who }} is inside quotes in a shell command: conf values "
            "are inserted as one single-quoted word; put the tag outside "
            "quotes");
  CHECK_EQ_INT(tmpl_check("echo \\' {{ conf.x }} 'a\"b' \"c'd\" {{ conf.y }}",
                          TMPL_SHELL, NULL, 0, &p, &e),
               ERR_OK);
}

TEST(sql_mode)
{
  enum err_code rc;
  struct err e = {0};
  struct tmpl_binds b = {0};
  const char *out = render(
      "DELETE FROM {{ params.table }}_target WHERE base_dt = '{{ ds }}'"
      " OR base_dt < DATE_SUB('{{ ds }}', INTERVAL {{ params.days }} DAY);\n"
      "INSERT INTO log VALUES ({{ conf.name }}, {{conf.n}}, '{{ run_id }}',"
      " {{ params.ratio }}, '?');",
      TMPL_SQL, &b, &rc, &e);
  CHECK_EQ_INT(rc, ERR_OK);
  CHECK_EQ_STR(out,
               "DELETE FROM credit_score_target WHERE base_dt = '2025-09-01'"
               " OR base_dt < DATE_SUB('2025-09-01', INTERVAL 7 DAY);\n"
               "INSERT INTO log VALUES (?, ?, "
               "'scheduled__2025-09-01T00:00:00+09:00', -1.5e-3, '?');");
  REQUIRE(b.n == 2);
  CHECK_EQ_STR(b.v[0], "O'Brien; DROP TABLE x");
  CHECK_EQ_STR(b.v[1], "42");
  tmpl_binds_free(&b);
  CHECK(b.n == 0 && b.v == NULL);

  /* unsafe params are refused, not spliced */
  out = render("SELECT '{{ params.bad }}'", TMPL_SQL, &b, &rc, &e);
  CHECK_EQ_INT(rc, ERR_INVAL);
  CHECK_EQ_STR(e.msg,
               "{{ params.bad }} at line 1: param value 'x'; DROP TABLE t; "
               "--' is not safe in sql (allowed: a number, or letters, "
               "digits, blanks and _ . : - without \"--\"); pass it as "
               "{{ conf.NAME }} to bind it instead");
  CHECK_EQ_STR(out, "(null)");
  out = render("SELECT 1\n-{{ params.dashes }}", TMPL_SQL, &b, &rc, &e);
  CHECK_EQ_INT(rc, ERR_INVAL);
  /* "- " after "-" would start a comment: caught by the re-scan */
  const struct tmpl_var p2[] = {{"m", "- 1"}};
  struct tmpl_ctx c = ctx();
  c.params = p2;
  c.nparams = 1;
  char *o = NULL;
  CHECK_EQ_INT(tmpl_render("SELECT 5-{{ params.m }}, 2", &c, TMPL_SQL, &o,
                           &b, &e),
               ERR_INVAL);
  CHECK(o == NULL);
  CHECK_EQ_STR(e.msg, "{{ params.m }} at line 1: its value would change the "
                      "SQL around it (opens a comment or string)");
  /* bad scheduler values are refused in SQL */
  c = ctx();
  c.run_id = "manual__x'y";
  CHECK_EQ_INT(tmpl_render("SELECT '{{ run_id }}'", &c, TMPL_SQL, &o, &b, &e),
               ERR_INVAL);
  CHECK_EQ_STR(e.msg, "{{ run_id }} at line 1: run_id value 'manual__x'y' is "
                      "not safe in sql (allowed: letters, digits and _ . : + "
                      "-)");
  c = ctx();
  c.ds = "2025-9-1";
  CHECK_EQ_INT(tmpl_render("x\n{{ ds_nodash }}", &c, TMPL_PLAIN, &o, NULL,
                           &e),
               ERR_INVAL);
  CHECK_EQ_STR(e.msg, "{{ ds_nodash }} at line 2: logical date '2025-9-1' is "
                      "not YYYY-MM-DD");
  /* unset conf and missing binds */
  out = render("SELECT {{ conf.missing }}", TMPL_SQL, &b, &rc, &e);
  CHECK_EQ_INT(rc, ERR_INVAL);
  CHECK_EQ_STR(e.msg, "{{ conf.missing }} at line 1: the run's conf has no "
                      "'missing' (trigger with --conf '{\"missing\": ...}')");
  out = render("SELECT 1", TMPL_SQL, NULL, &rc, &e);
  CHECK_EQ_INT(rc, ERR_INVAL);
  out = render("SELECT '{{ conf.n }}'", TMPL_SQL, &b, &rc, &e);
  CHECK_EQ_INT(rc, ERR_PARSE);
  CHECK(b.n == 0);
}

static const char *lookup(void *user, enum tmpl_kind kind, const char *name)
{
  (void)user;
  if (kind == TMPL_CONF && strcmp(name, "late") == 0)
    return "from-callback";
  return NULL;
}

TEST(other_modes)
{
  enum err_code rc;
  struct err e = {0};
  /* shell: conf as one quoted word */
  CHECK_EQ_STR(render("echo {{ conf.name }} {{ ds }} >> '/tmp/{{ ds }}.log'",
                      TMPL_SHELL, NULL, &rc, &e),
               "echo 'O'\\''Brien; DROP TABLE x' 2025-09-01 >> "
               "'/tmp/2025-09-01.log'");
  CHECK_EQ_INT(rc, ERR_OK);
  /* url: scheduler and conf values encoded, params as written */
  CHECK_EQ_STR(render("{{ params.host }}/runs?id={{ run_id }}&p={{ conf.path }}",
                      TMPL_URL, NULL, &rc, &e),
               "https://example.com:8443/api/runs?id=scheduled__2025-09-01T00"
               "%3A00%3A00%2B09%3A00&p=a%20b%26c%2Fd%3Fe");
  /* header: no CR/LF */
  render("Bearer {{ params.multi }}", TMPL_HEADER, NULL, &rc, &e);
  CHECK_EQ_INT(rc, ERR_INVAL);
  CHECK_EQ_STR(e.msg, "{{ params.multi }} at line 1: params value 'a\r\nX-Evil: "
                      "1' holds a control character (CR/LF), not allowed in a "
                      "header");
  /* plain: as written */
  CHECK_EQ_STR(render("{\"who\": \"{{ conf.name }}\"}", TMPL_PLAIN, NULL, &rc,
                      &e),
               "{\"who\": \"O'Brien; DROP TABLE x\"}");
  /* lookup callback for names not in the arrays */
  struct tmpl_ctx c = ctx();
  c.lookup = lookup;
  char *o = NULL;
  CHECK_EQ_INT(tmpl_render("{{ conf.late }}", &c, TMPL_PLAIN, &o, NULL, &e),
               ERR_OK);
  CHECK_EQ_STR(o, "from-callback");
  free(o);
  CHECK_EQ_INT(tmpl_render("{{ params.zzz }}", &c, TMPL_PLAIN, &o, NULL, &e),
               ERR_INVAL);
  CHECK_EQ_STR(e.msg, "{{ params.zzz }} at line 1: param 'zzz' is not set");
  CHECK_EQ_STR(tmpl_mode_name(TMPL_SQL), "sql");
}

TEST(values)
{
  struct err e = {0};
  CHECK_EQ_INT(tmpl_check_value(TMPL_SQL, TMPL_PARAM, "12", &e), ERR_OK);
  CHECK_EQ_INT(tmpl_check_value(TMPL_SQL, TMPL_PARAM, "1e+5", &e), ERR_OK);
  CHECK_EQ_INT(tmpl_check_value(TMPL_SQL, TMPL_PARAM, "Standard Poor", &e),
               ERR_OK);
  CHECK_EQ_INT(tmpl_check_value(TMPL_SQL, TMPL_PARAM, "", &e), ERR_OK);
  CHECK_EQ_INT(tmpl_check_value(TMPL_SQL, TMPL_PARAM, "a'b", &e), ERR_INVAL);
  CHECK_EQ_INT(tmpl_check_value(TMPL_SQL, TMPL_PARAM, "a/*", &e), ERR_INVAL);
  CHECK_EQ_INT(tmpl_check_value(TMPL_SQL, TMPL_PARAM, "1+1", &e), ERR_INVAL);
  CHECK_EQ_INT(tmpl_check_value(TMPL_PLAIN, TMPL_PARAM, "a'b", &e), ERR_OK);
  CHECK_EQ_INT(tmpl_check_value(TMPL_SQL, TMPL_CONF, "a'b", &e), ERR_OK);
  CHECK_EQ_INT(tmpl_check_value(TMPL_SQL, TMPL_DAG_ID, "a b", &e), ERR_INVAL);
  CHECK_EQ_INT(tmpl_check_value(TMPL_SHELL, TMPL_RUN_ID, "a;b", &e),
               ERR_INVAL);
  CHECK_EQ_INT(tmpl_check_value(TMPL_URL, TMPL_RUN_ID, "a;b", &e), ERR_OK);
  CHECK_EQ_INT(tmpl_check_value(TMPL_PLAIN, TMPL_DS, "2025-02-30", &e),
               ERR_INVAL);
}

TEST(iterate)
{
  const char *t = "a {{ ds }} b {{ params.x }}\n{{ ds_add(-3) }}";
  size_t pos = 0;
  struct tmpl_tag tag;
  struct err e = {0};
  REQUIRE(tmpl_next(t, &pos, &tag, &e) == ERR_OK);
  CHECK(tag.kind == TMPL_DS && tag.off == 2 && tag.len == 8);
  REQUIRE(tmpl_next(t, &pos, &tag, &e) == ERR_OK);
  CHECK(tag.kind == TMPL_PARAM && tag.name_len == 1 && tag.name[0] == 'x');
  REQUIRE(tmpl_next(t, &pos, &tag, &e) == ERR_OK);
  CHECK(tag.kind == TMPL_DS_ADD && tag.days == -3);
  struct tmpl_pos p;
  tmpl_pos_at(t, tag.off, &p);
  CHECK(p.line == 2 && p.col == 1);
  CHECK_EQ_INT(tmpl_next(t, &pos, &tag, &e), ERR_NOTFOUND);
}

TEST(cap)
{
  /* 1 MiB of text with 64k tags renders; output over the cap is refused */
  size_t n = 1 << 16;
  char *big = malloc(n * 16 + 1);
  REQUIRE(big);
  for (size_t i = 0; i < n; i++)
    memcpy(big + i * 16, "{{ ds_nodash }}\n", 16);
  big[n * 16] = '\0';
  struct tmpl_ctx c = ctx();
  char *o = NULL;
  struct err e = {0};
  struct tmpl_binds b = {0};
  CHECK_EQ_INT(tmpl_render(big, &c, TMPL_SQL, &o, &b, &e), ERR_OK);
  CHECK(o && strlen(o) == n * 9);
  free(o);
  struct tmpl_pos p;
  CHECK_EQ_INT(tmpl_check(big, TMPL_SQL, NULL, 0, &p, &e), ERR_OK);
  free(big);

  size_t vl = 1 << 20;
  char *v = malloc(vl + 1);
  REQUIRE(v);
  memset(v, 'a', vl);
  v[vl] = '\0';
  struct tmpl_var pv[] = {{"v", v}};
  c.params = pv;
  c.nparams = 1;
  char tm[20 * 18 + 1] = "";
  for (int i = 0; i < 20; i++)
    strcat(tm, "{{ params.v }}    ");
  CHECK_EQ_INT(tmpl_render(tm, &c, TMPL_PLAIN, &o, NULL, &e), ERR_FULL);
  CHECK(o == NULL);
  free(v);
}

int main(void)
{
  RUN(names);
  RUN(check);
  RUN(sql_mode);
  RUN(other_modes);
  RUN(values);
  RUN(iterate);
  RUN(cap);
  return check_done();
}
