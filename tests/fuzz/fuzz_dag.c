/* fuzz_dag.c - libFuzzer target for the DAG YAML loader (dag_load_file,
 * dag.h): config/dags/NAME.yaml, with every check it runs (task types and
 * fields, templates, SQL split, cron, durations, dependencies, cycles).
 *
 * Input: the bytes of a DAG file, written to a scratch directory that also
 * holds queries/q.sql (so `sql_file: queries/q.sql` resolves next to the
 * DAG, as for real files).  Checked beyond "no crash" on a DAG that loads:
 * topo is a permutation with every task after its upstream tasks,
 * upstream/downstream lists mirror each other, ids are unique and found
 * by dag_task_index, retry delays stay within their cap, and the sources
 * are unchanged right after loading.
 */
#include "fuzz.h"

#include "mlopsd/dag.h"

static char path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  static const char q[] =
      "-- features of the day\n"
      "INSERT INTO t SELECT * FROM s WHERE base_dt = '{{ ds }}';\n"
      "DELETE FROM u WHERE d < '{{ ds_add(-7) }}';\n";
  char p[600];
  (void)argc;
  (void)argv;
  fuzz_quiet();
  const char *d = fuzz_dir("dag");
  snprintf(p, sizeof(p), "%s/queries", d);
  FUZZ_CHECK(mkdir(p, 0700) == 0);
  snprintf(p, sizeof(p), "%s/queries/q.sql", d);
  fuzz_write(p, q, sizeof(q) - 1);
  snprintf(path, sizeof(path), "%s/dag.yaml", d);
  return 0;
}

static void check_dag(const struct dag *d)
{
  size_t n = d->ntasks;
  FUZZ_CHECK(d->dag_id && d->dag_id[0] && n >= 1 && n <= DAG_TASKS_MAX);
  FUZZ_CHECK(d->nsources >= 1 && d->params != NULL);
  FUZZ_CHECK(d->max_active_runs >= 1);
  size_t *pos = calloc(n, sizeof(size_t));
  FUZZ_CHECK(pos != NULL);
  for (size_t i = 0; i < n; i++)
    pos[i] = (size_t)-1;
  for (size_t k = 0; k < n; k++) {
    size_t t = d->topo[k];
    FUZZ_CHECK(t < n && pos[t] == (size_t)-1);
    pos[t] = k;
  }
  for (size_t i = 0; i < n; i++) {
    const struct dag_task *t = &d->tasks[i];
    FUZZ_CHECK(t->id && dag_task_index(d, t->id) == (ptrdiff_t)i);
    FUZZ_CHECK(t->type != NULL && t->fields != NULL);
    for (size_t u = 0; u < t->nupstream; u++) {
      size_t up = t->upstream[u];
      FUZZ_CHECK(up < n && up != i && pos[up] < pos[i]);
      const struct dag_task *ut = &d->tasks[up];
      size_t k = 0;
      while (k < ut->ndownstream && ut->downstream[k] != i)
        k++;
      FUZZ_CHECK(k < ut->ndownstream);
    }
    for (size_t k = 0; k < t->ndownstream; k++)
      FUZZ_CHECK(t->downstream[k] < n);
    for (int try = 1; try <= 40; try++) {
      int dl = dag_retry_delay(&t->retry, try);
      FUZZ_CHECK(dl >= 0);
      if (t->retry.max_retry_delay_s > 0) /* 0: no cap */
        FUZZ_CHECK(dl <= t->retry.max_retry_delay_s ||
                   dl <= t->retry.retry_delay_s);
    }
    if (t->file_path)
      FUZZ_CHECK(t->file_text != NULL);
    (void)dag_task_str(t, "sql");
    (void)dag_task_json(t, "headers");
    FUZZ_CHECK(dag_trigger_rule_name(t->trigger_rule) != NULL);
  }
  FUZZ_CHECK(dag_task_index(d, "no such task id!") == -1);
  FUZZ_CHECK(dag_sources_changed(d) == 0);
  free(pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct dag *d = NULL;
  struct err e = {0};
  fuzz_write(path, data, size);
  if (dag_load_file(path, &d, &e) != ERR_OK) {
    FUZZ_CHECK(d == NULL && e.msg[0]);
    return 0;
  }
  check_dag(d);
  struct dag *r = dag_ref(d);
  FUZZ_CHECK(r == d);
  dag_destroy(r);
  dag_destroy(d);
  return 0;
}
