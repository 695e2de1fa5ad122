/* fuzz_tmpl.c - libFuzzer target for the template engine (tmpl.h): the
 * {{ ... }} tags of DAG fields (SQL, shell commands, URLs, headers).
 *
 * Input: [mode byte][template text] NUL [value].  The value is what the
 * run supplies: every {{ conf.X }} and every {{ params.X }} not declared
 * below resolves to it, and it is also tried as the logical date.  Each
 * mode is exercised (tmpl_next over the text, tmpl_check, tmpl_render,
 * tmpl_check_value).  Checked beyond "no crash":
 *   - sql: a successful render has exactly as many `?` placeholders in
 *     code as it returned bound values (a spliced value never adds or
 *     hides one: the injection guard), and the output still splits;
 *   - header: no CR or LF in the output unless the template had one;
 *   - a template that passes tmpl_check renders with well-formed values.
 */
#include "fuzz.h"

#include "mlopsd/sqlsplit.h"
#include "mlopsd/tmpl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_quiet();
  return 0;
}

static const char *lookup(void *user, enum tmpl_kind kind, const char *name)
{
  (void)kind;
  (void)name;
  return user;
}

static size_t code_qmarks(const char *s)
{
  struct sqlsplit_scan sc;
  size_t n = 0, len = strlen(s);
  sqlsplit_scan_init(&sc, s, len);
  for (size_t i = 0; i < len; i++)
    if (s[i] == '?' && sqlsplit_scan_to(&sc, i) == SQLSPLIT_CODE)
      n++;
  return n;
}

static void render(const char *text, enum tmpl_mode mode,
                   const struct tmpl_ctx *ctx, int must_work)
{
  struct tmpl_binds b = {0};
  struct err e = {0};
  char *out = NULL;
  enum err_code rc = tmpl_render(text, ctx, mode, &out, &b, &e);
  if (must_work && rc != ERR_OK && rc != ERR_FULL) {
    fprintf(stderr, "render failed after check passed: %s\n", e.msg);
    FUZZ_CHECK(rc == ERR_OK);
  }
  if (rc != ERR_OK) {
    FUZZ_CHECK(out == NULL && e.msg[0]);
    if (mode == TMPL_SQL)
      FUZZ_CHECK(b.n == 0);
    return;
  }
  FUZZ_CHECK(out != NULL);
  if (mode == TMPL_SQL) {
    FUZZ_CHECK(code_qmarks(out) == b.n);
    if (!strstr(text, "{{"))
      FUZZ_CHECK(strcmp(out, text) == 0);
  }
  if (mode == TMPL_HEADER && !strpbrk(text, "\r\n"))
    FUZZ_CHECK(!strpbrk(out, "\r\n"));
  free(out);
  tmpl_binds_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  enum tmpl_mode mode = (enum tmpl_mode)(data[0] % 5);
  char *text = fuzz_strndup(data + 1, size - 1);
  size_t tl = strlen(text);
  const char *value = tl + 1 < size - 1 ? text + tl + 1 : "";

  /* every tag of the text */
  size_t pos = 0, prev = 0;
  for (int i = 0; i < 10000; i++) {
    struct tmpl_tag t;
    struct err e = {0};
    enum err_code rc = tmpl_next(text, &pos, &t, &e);
    if (rc != ERR_OK)
      break;
    FUZZ_CHECK(t.off >= prev && t.off + t.len <= tl && pos == t.off + t.len);
    FUZZ_CHECK(t.len >= 4 && memcmp(text + t.off, "{{", 2) == 0);
    if (t.kind == TMPL_PARAM || t.kind == TMPL_CONF)
      FUZZ_CHECK(t.name >= text && t.name + t.name_len <= text + tl);
    prev = pos;
  }
  struct tmpl_pos where;
  tmpl_pos_at(text, tl, &where);
  FUZZ_CHECK(where.line >= 1 && where.col >= 1);

  static const char *const params[] = {"lookback_days", "p"};
  static const struct tmpl_var pv[] = {{"lookback_days", "7"},
                                       {"p", "credit_score"}};
  struct tmpl_ctx good = {.ds = "2025-03-30",
                          .run_id = "scheduled__2025-03-30T00:00:00+09:00",
                          .dag_id = "credit_score_ct",
                          .params = pv,
                          .nparams = 2,
                          .lookup = lookup,
                          .user = "42"};
  struct tmpl_ctx fz = good;
  fz.user = (void *)value;
  struct tmpl_ctx fzds = good;
  fzds.ds = value;
  fzds.run_id = value;
  fzds.dag_id = value;

  for (int m = 0; m < 5; m++) {
    enum tmpl_mode md = (enum tmpl_mode)((mode + m) % 5);
    struct err e = {0};
    enum err_code rc = tmpl_check(text, md, params, 2, &where, &e);
    if (rc != ERR_OK)
      FUZZ_CHECK(e.msg[0] && where.line >= 1);
    /* well-formed values must render what the check accepted */
    render(text, md, &good, rc == ERR_OK);
    render(text, md, &fz, 0);
    render(text, md, &fzds, 0);
    for (int k = TMPL_DS; k <= TMPL_CONF; k++) {
      struct err e2 = {0};
      (void)tmpl_check_value(md, (enum tmpl_kind)k, value, &e2);
    }
  }
  free(text);
  return 0;
}
