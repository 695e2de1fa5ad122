/* test_metrics.c - metrics_: Prometheus text format, label escaping,
 * histogram buckets, callback gauges, concurrent lock-free updates.
 * check: tsan */
#include <math.h>
#include <pthread.h>

#include "check.h"
#include "mlopsd/metrics.h"

static char *render(struct metrics *m)
{
  char *buf = NULL;
  size_t len = 0, cap = 0;
  struct err e;
  if (metrics_render(m, &buf, &len, &cap, &e) != ERR_OK) {
    fprintf(stderr, "render: %s\n", e.msg);
    free(buf);
    return NULL;
  }
  if (strlen(buf) != len) {
    free(buf);
    return NULL;
  }
  return buf;
}

TEST(text_format_exact)
{
  struct metrics *m;
  struct err e;
  REQUIRE(metrics_create(&m, &e) == ERR_OK);
  struct metrics_counter *c1, *c2;
  struct metrics_gauge *g;
  struct metrics_hist *h;
  const char *l1[] = {"route", "/healthz", "method", "GET", "status", "200",
                      NULL};
  const char *l2[] = {"route", "/x", "method", "POST", "status", "404", NULL};
  REQUIRE(metrics_counter_new(m, "mlopsd_http_requests_total", "HTTP requests.", l1,
                              0, &c1, &e) == ERR_OK);
  REQUIRE(metrics_counter_new(m, "mlopsd_http_requests_total", "HTTP requests.", l2,
                              0, &c2, &e) == ERR_OK);
  REQUIRE(metrics_gauge_new(m, "model_version", "Served version.", NULL, 0,
                            &g, &e) == ERR_OK);
  const double b[] = {1, 2.5, 10};
  const char *lh[] = {"route", "/p", NULL};
  REQUIRE(metrics_hist_new(m, "lat_ms", "Latency in ms.", lh, b, 3, 0, &h,
                           &e) == ERR_OK);
  metrics_counter_add(c1, 3);
  metrics_counter_add(c2, 1);
  metrics_gauge_set(g, 7);
  metrics_hist_observe(h, 0.5);  /* le=1 */
  metrics_hist_observe(h, 1);    /* le=1: bounds are inclusive */
  metrics_hist_observe(h, 2);    /* le=2.5 */
  metrics_hist_observe(h, 99);   /* +Inf */
  char *t = render(m);
  REQUIRE(t);
  const char *want =
      "# HELP mlopsd_http_requests_total HTTP requests.\n"
      "# TYPE mlopsd_http_requests_total counter\n"
      "mlopsd_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 3\n"
      "mlopsd_http_requests_total{route=\"/x\",method=\"POST\",status=\"404\"} 1\n"
      "# HELP model_version Served version.\n"
      "# TYPE model_version gauge\n"
      "model_version 7\n"
      "# HELP lat_ms Latency in ms.\n"
      "# TYPE lat_ms histogram\n"
      "lat_ms_bucket{route=\"/p\",le=\"1\"} 2\n"
      "lat_ms_bucket{route=\"/p\",le=\"2.5\"} 3\n"
      "lat_ms_bucket{route=\"/p\",le=\"10\"} 3\n"
      "lat_ms_bucket{route=\"/p\",le=\"+Inf\"} 4\n"
      "lat_ms_sum{route=\"/p\"} 102.5\n"
      "lat_ms_count{route=\"/p\"} 4\n";
  CHECK_EQ_STR(t, want);
  free(t);
  CHECK_EQ_INT(metrics_hist_count(h), 4);
  CHECK_NEAR(metrics_hist_sum(h), 102.5, 1e-9);
  CHECK_EQ_INT(metrics_hist_bucket(h, 3), 1);
  metrics_destroy(m);
}

TEST(default_ms_buckets_and_escaping)
{
  struct metrics *m;
  struct err e;
  REQUIRE(metrics_create(&m, &e) == ERR_OK);
  struct metrics_hist *h;
  REQUIRE(metrics_hist_new(m, "d_ms", "a \\ help\nline", NULL, NULL, 0, 0, &h,
                           &e) == ERR_OK);
  metrics_hist_observe(h, 0.3);
  metrics_hist_observe(h, -1);  /* counts as 0 */
  metrics_hist_observe(h, NAN); /* counts as 0 */
  struct metrics_counter *c;
  const char *l[] = {"v", "a\"b\\c\nd", NULL};
  REQUIRE(metrics_counter_new(m, "esc_total", "", l, 0, &c, &e) == ERR_OK);
  char *t = render(m);
  REQUIRE(t);
  CHECK(strstr(t, "# HELP d_ms a \\\\ help\\nline\n"));
  CHECK(strstr(t, "d_ms_bucket{le=\"0.1\"} 2\n"));
  CHECK(strstr(t, "d_ms_bucket{le=\"0.25\"} 2\n"));
  CHECK(strstr(t, "d_ms_bucket{le=\"0.5\"} 3\n"));
  CHECK(strstr(t, "d_ms_bucket{le=\"1000\"} 3\n"));
  CHECK(strstr(t, "d_ms_bucket{le=\"+Inf\"} 3\n"));
  CHECK(strstr(t, "d_ms_sum 0.3\n"));
  CHECK(strstr(t, "d_ms_count 3\n"));
  CHECK(strstr(t, "esc_total{v=\"a\\\"b\\\\c\\nd\"} 0\n"));
  /* 13 finite buckets + Inf */
  int n = 0;
  for (const char *p = t; (p = strstr(p, "d_ms_bucket")); p++)
    n++;
  CHECK_EQ_INT(n, METRICS_MS_NBUCKETS + 1);
  free(t);
  metrics_destroy(m);
}

TEST(hide_zero_and_same_series)
{
  struct metrics *m;
  struct err e;
  REQUIRE(metrics_create(&m, &e) == ERR_OK);
  struct metrics_counter *a, *b, *a2;
  const char *la[] = {"status", "200", NULL};
  const char *lb[] = {"status", "503", NULL};
  REQUIRE(metrics_counter_new(m, "req_total", "r", la, METRICS_HIDE_ZERO, &a,
                              &e) == ERR_OK);
  REQUIRE(metrics_counter_new(m, "req_total", "r", lb, METRICS_HIDE_ZERO, &b,
                              &e) == ERR_OK);
  REQUIRE(metrics_counter_new(m, "req_total", "r", la, METRICS_HIDE_ZERO, &a2,
                              &e) == ERR_OK);
  CHECK(a == a2);
  char *t = render(m);
  REQUIRE(t);
  CHECK_EQ_STR(t, ""); /* a family with nothing to show is left out */
  free(t);
  metrics_counter_add(b, 2);
  t = render(m);
  REQUIRE(t);
  CHECK(strstr(t, "req_total{status=\"503\"} 2\n"));
  CHECK(!strstr(t, "status=\"200\""));
  CHECK(strstr(t, "# TYPE req_total counter\n"));
  free(t);
  metrics_destroy(m);
}

TEST(bad_registrations)
{
  struct metrics *m;
  struct err e;
  REQUIRE(metrics_create(&m, &e) == ERR_OK);
  struct metrics_counter *c;
  struct metrics_gauge *g;
  struct metrics_hist *h;
  CHECK(metrics_counter_new(m, "9bad", "", NULL, 0, &c, &e) == ERR_INVAL);
  CHECK(metrics_counter_new(m, "bad-name", "", NULL, 0, &c, &e) == ERR_INVAL);
  const char *lle[] = {"le", "1", NULL};
  CHECK(metrics_counter_new(m, "x_total", "", lle, 0, &c, &e) == ERR_INVAL);
  const char *lodd[] = {"k", NULL};
  CHECK(metrics_counter_new(m, "x_total", "", lodd, 0, &c, &e) == ERR_INVAL);
  REQUIRE(metrics_counter_new(m, "x_total", "", NULL, 0, &c, &e) == ERR_OK);
  CHECK(metrics_gauge_new(m, "x_total", "", NULL, 0, &g, &e) == ERR_INVAL);
  CHECK(strstr(e.msg, "x_total is a counter"));
  const double b1[] = {1, 2}, b2[] = {1, 3}, bad[] = {2, 1};
  CHECK(metrics_hist_new(m, "h", "", NULL, bad, 2, 0, &h, &e) == ERR_INVAL);
  REQUIRE(metrics_hist_new(m, "h", "", NULL, b1, 2, 0, &h, &e) == ERR_OK);
  const char *l[] = {"a", "b", NULL};
  CHECK(metrics_hist_new(m, "h", "", l, b2, 2, 0, &h, &e) == ERR_INVAL);
  metrics_destroy(m);
}

static double cb_val(void *arg) { return *(double *)arg; }

TEST(callback_gauge)
{
  struct metrics *m;
  struct err e;
  REQUIRE(metrics_create(&m, &e) == ERR_OK);
  double depth = 42;
  struct metrics_gauge *g, *g2;
  const char *l[] = {"queue", "log", NULL};
  REQUIRE(metrics_gauge_fn_new(m, "queue_depth", "Jobs waiting.", l, cb_val,
                               &depth, &g, &e) == ERR_OK);
  CHECK(metrics_gauge_fn_new(m, "queue_depth", "", l, cb_val, &depth, &g2,
                             &e) == ERR_EXISTS);
  CHECK(metrics_gauge_new(m, "queue_depth", "", l, 0, &g2, &e) == ERR_EXISTS);
  CHECK_NEAR(metrics_gauge_get(g), 42, 0);
  depth = 0.5;
  char *t = render(m);
  REQUIRE(t);
  CHECK(strstr(t, "queue_depth{queue=\"log\"} 0.5\n"));
  free(t);
  metrics_gauge_fn_detach(g);
  t = render(m);
  REQUIRE(t);
  CHECK(!strstr(t, "queue_depth"));
  free(t);
  metrics_destroy(m);
}

TEST(gauge_set_add_and_special_values)
{
  struct metrics *m;
  struct err e;
  REQUIRE(metrics_create(&m, &e) == ERR_OK);
  struct metrics_gauge *g, *gi;
  REQUIRE(metrics_gauge_new(m, "g", "", NULL, 0, &g, &e) == ERR_OK);
  const char *l[] = {"k", "inf", NULL};
  REQUIRE(metrics_gauge_new(m, "g", "", l, 0, &gi, &e) == ERR_OK);
  metrics_gauge_set(g, 1.5);
  metrics_gauge_add(g, -3);
  metrics_gauge_set(gi, INFINITY);
  CHECK_NEAR(metrics_gauge_get(g), -1.5, 0);
  char *t = render(m);
  REQUIRE(t);
  CHECK(strstr(t, "g -1.5\n"));
  CHECK(strstr(t, "g{k=\"inf\"} +Inf\n"));
  free(t);
  metrics_destroy(m);
}

TEST(render_appends_to_reused_buffer)
{
  struct metrics *m;
  struct err e;
  REQUIRE(metrics_create(&m, &e) == ERR_OK);
  struct metrics_counter *c[200];
  for (int i = 0; i < 200; i++) {
    char v[16];
    snprintf(v, sizeof(v), "%d", i);
    const char *l[] = {"i", v, NULL};
    REQUIRE(metrics_counter_new(m, "many_total", "", l, 0, &c[i], &e)
            == ERR_OK);
    metrics_counter_add(c[i], (uint64_t)i);
  }
  char *buf = malloc(4);
  size_t cap = 4, len = 3;
  memcpy(buf, "pre", 4);
  REQUIRE(metrics_render(m, &buf, &len, &cap, &e) == ERR_OK);
  CHECK(strncmp(buf, "pre# HELP", 9) == 0);
  CHECK(strstr(buf, "many_total{i=\"199\"} 199\n"));
  CHECK_EQ_INT(strlen(buf), len);
  CHECK(cap > len);
  free(buf);
  metrics_destroy(m);
}

struct hammer {
  struct metrics_counter *c;
  struct metrics_hist *h;
  struct metrics_gauge *g;
  struct metrics *m;
};

#define HAMMER_N 200000

static void *hammer_thread(void *arg)
{
  struct hammer *hm = arg;
  for (int i = 0; i < HAMMER_N; i++) {
    metrics_counter_add(hm->c, 1);
    metrics_hist_observe(hm->h, (double)(i % 2000) / 2);
    metrics_gauge_add(hm->g, 1);
  }
  return NULL;
}

static void *render_thread(void *arg)
{
  struct hammer *hm = arg;
  char *buf = NULL;
  size_t cap = 0;
  for (int i = 0; i < 50; i++) {
    size_t len = 0;
    struct err e;
    if (metrics_render(hm->m, &buf, &len, &cap, &e) != ERR_OK)
      break;
  }
  free(buf);
  return NULL;
}

TEST(concurrent_updates_exact)
{
  struct hammer hm;
  struct err e;
  REQUIRE(metrics_create(&hm.m, &e) == ERR_OK);
  REQUIRE(metrics_counter_new(hm.m, "c_total", "", NULL, 0, &hm.c, &e)
          == ERR_OK);
  REQUIRE(metrics_hist_new(hm.m, "h_ms", "", NULL, NULL, 0, 0, &hm.h, &e)
          == ERR_OK);
  REQUIRE(metrics_gauge_new(hm.m, "g", "", NULL, 0, &hm.g, &e) == ERR_OK);
  pthread_t t[4], r;
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, hammer_thread, &hm);
  pthread_create(&r, NULL, render_thread, &hm);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  pthread_join(r, NULL);
  CHECK_EQ_INT(metrics_counter_get(hm.c), 4 * HAMMER_N);
  CHECK_EQ_INT(metrics_hist_count(hm.h), 4 * HAMMER_N);
  CHECK_NEAR(metrics_gauge_get(hm.g), 4 * HAMMER_N, 0);
  /* sum of (i % 2000) / 2 over i < N, times 4 threads */
  double want = 0;
  for (int i = 0; i < HAMMER_N; i++)
    want += (double)(i % 2000) / 2;
  CHECK_NEAR(metrics_hist_sum(hm.h), 4 * want, 1e-3);
  metrics_destroy(hm.m);
}

int main(void)
{
  RUN(text_format_exact);
  RUN(default_ms_buckets_and_escaping);
  RUN(hide_zero_and_same_series);
  RUN(bad_registrations);
  RUN(callback_gauge);
  RUN(gauge_set_add_and_special_values);
  RUN(render_appends_to_reused_buffer);
  RUN(concurrent_updates_exact);
  return check_done();
}
