/* test_admin.c - the serving figures behind /api/v2/serving (admin_stats.c):
 * Prometheus text lines, histogram quantiles, and the sampler against a
 * real metrics registry updated from another thread.
 *
 * check: tsan
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "admin_int.h"
#include "check.h"
#include "mlopsd/metrics.h"

/* One line through admin_prom_line into the test's buffers (room
 * labels); its answer. */
static char P_NAME[64];
static struct admin_prom_label P_L[4];
static int P_N;
static double P_V;

static int prom(const char *s, int room)
{
  return admin_prom_line(s, strlen(s), P_NAME, sizeof(P_NAME), P_L, room,
                         &P_N, &P_V);
}

TEST(prom_line)
{
  CHECK_EQ_INT(prom("mlopsd_http_requests_total{route=\"/models/{name}/"
                    "predict\",method=\"POST\",status=\"200\"} 42", 4),
               0);
  CHECK_EQ_STR(P_NAME, "mlopsd_http_requests_total");
  CHECK_EQ_INT(P_N, 3);
  CHECK_EQ_STR(P_L[0].key, "route");
  CHECK_EQ_STR(P_L[0].val, "/models/{name}/predict");
  CHECK_EQ_STR(P_L[2].val, "200");
  CHECK_NEAR(P_V, 42, 0);
  /* escapes in values, no labels, +Inf, comments, junk */
  CHECK_EQ_INT(prom("x{a=\"q\\\"uote\\\\\",b=\"n\\nl\"} 1.5e3", 4), 0);
  CHECK_EQ_STR(P_L[0].val, "q\"uote\\");
  CHECK_EQ_STR(P_L[1].val, "n\nl");
  CHECK_NEAR(P_V, 1500, 0);
  CHECK_EQ_INT(prom("mlopsd_up 1", 4), 0);
  CHECK_EQ_INT(P_N, 0);
  CHECK_EQ_INT(prom("h_bucket{le=\"+Inf\"} +Inf", 4), 0);
  CHECK(isinf(P_V));
  CHECK_EQ_INT(prom("# HELP x y", 4), -1);
  CHECK_EQ_INT(prom("x{a=\"unterminated} 1", 4), -1);
  CHECK_EQ_INT(prom("x{a=b} 1", 4), -1);
  CHECK_EQ_INT(prom("x", 4), -1);
  CHECK_EQ_INT(prom("", 4), -1);
  /* more labels than room: counted up to the room, still parsed */
  CHECK_EQ_INT(prom("x{a=\"1\",b=\"2\",c=\"3\"} 7", 2), 0);
  CHECK_EQ_INT(P_N, 2);
  CHECK_NEAR(P_V, 7, 0);
}

TEST(quantiles)
{
  /* 100 observations: 50 in (0, 1], 40 in (1, 2], 10 in (2, 4] */
  double le[] = {1, 2, 4, INFINITY};
  double cum[] = {50, 90, 100, 100};
  CHECK_NEAR(admin_stats_quantile(le, cum, 4, 0.5), 1.0, 1e-12);
  CHECK_NEAR(admin_stats_quantile(le, cum, 4, 0.25), 0.5, 1e-12);
  CHECK_NEAR(admin_stats_quantile(le, cum, 4, 0.7), 1.5, 1e-12);
  CHECK_NEAR(admin_stats_quantile(le, cum, 4, 0.99), 3.8, 1e-12);
  /* everything above the largest finite bound: that bound */
  double cum2[] = {0, 0, 0, 10};
  CHECK_NEAR(admin_stats_quantile(le, cum2, 4, 0.5), 4, 1e-12);
  /* nothing observed */
  double zero[] = {0, 0, 0, 0};
  CHECK(isnan(admin_stats_quantile(le, zero, 4, 0.5)));
  CHECK(isnan(admin_stats_quantile(le, zero, 0, 0.5)));
}

struct load {
  struct metrics_counter *req, *cls_a, *cls_b;
  struct metrics_hist *lat;
  atomic_int stop;
  atomic_long done;
};

static void *hammer(void *arg)
{
  struct load *ld = arg;
  while (!atomic_load(&ld->stop)) {
    metrics_counter_add(ld->req, 1);
    metrics_counter_add(ld->cls_a, 1);
    metrics_hist_observe(ld->lat, 0.0003); /* 0.3 ms */
    atomic_fetch_add(&ld->done, 1);
  }
  return NULL;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The sampler reads the series the HTTP layer, the serving set and the
 * log register, while another thread updates them. */
TEST(sampler)
{
  struct metrics *m = NULL;
  struct err e = {0};
  struct load ld = {0};
  REQUIRE(metrics_create(&m, &e) == ERR_OK);
  const char *lr[] = {"route", "/predict", "method", "POST", "status", "200",
                      NULL};
  const char *lh[] = {"route", "/predict", "method", "POST", "status_class",
                      "2xx", NULL};
  const char *lo[] = {"route", "/healthz", "method", "GET", "status", "200",
                      NULL};
  const char *la[] = {"model", "m", "class", "A", NULL};
  const char *lb[] = {"model", "m", "class", "B", NULL};
  struct metrics_counter *other;
  struct metrics_gauge *backlog;
  REQUIRE(metrics_counter_new(m, "mlopsd_http_requests_total", "r", lr, 0, &ld.req,
                              &e) == ERR_OK);
  REQUIRE(metrics_counter_new(m, "mlopsd_http_requests_total", "r", lo, 0, &other,
                              &e) == ERR_OK);
  REQUIRE(metrics_hist_new(m, "mlopsd_http_request_duration_seconds", "d", lh,
                           metrics_s_buckets, METRICS_S_NBUCKETS, 0,
                           &ld.lat, &e) == ERR_OK);
  REQUIRE(metrics_counter_new(m, "mlopsd_predictions_total", "p", la, 0,
                              &ld.cls_a, &e) == ERR_OK);
  REQUIRE(metrics_counter_new(m, "mlopsd_predictions_total", "p", lb, 0,
                              &ld.cls_b, &e) == ERR_OK);
  REQUIRE(metrics_gauge_new(m, "mlopsd_plog_backlog_rows", "b", NULL, 0,
                            &backlog, &e) == ERR_OK);
  metrics_counter_add(other, 1000); /* not a prediction route */
  metrics_gauge_set(backlog, 17);

  struct admin_stats *st = NULL;
  REQUIRE(admin_stats_create(&st, m, 20, 5, &e) == ERR_OK);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, hammer, &ld) == 0);
  sleep_ms(150);
  atomic_store(&ld.stop, 1);
  pthread_join(t, NULL);
  metrics_counter_add(ld.cls_b, 3);
  admin_stats_sample(st);

  cJSON *o = admin_stats_json(st);
  REQUIRE(o != NULL);
  long done = atomic_load(&ld.done);
  const cJSON *tot = cJSON_GetObjectItemCaseSensitive(o, "totals");
  CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(tot, "requests")->valuedouble,
             (double)done, 0);
  CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(tot, "requests_all_routes")
                 ->valuedouble,
             (double)done + 1000, 0);
  const cJSON *pm = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(tot, "predictions"), "m");
  CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(pm, "A")->valuedouble,
             (double)done, 0);
  CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(pm, "B")->valuedouble, 3, 0);
  CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(
                 cJSON_GetObjectItemCaseSensitive(o, "log"), "backlog_rows")
                 ->valuedouble,
             17, 0);
  /* the ring keeps at most 5 intervals; their request counts add up to
   * what happened inside the window, and latency sits in (0.25, 0.5] */
  const cJSON *series = cJSON_GetObjectItemCaseSensitive(o, "series");
  int n = cJSON_GetArraySize(series);
  CHECK(n >= 1 && n <= 5);
  double sum = 0;
  const cJSON *pt;
  cJSON_ArrayForEach(pt, series)
  {
    sum += cJSON_GetObjectItemCaseSensitive(pt, "requests")->valuedouble;
    const cJSON *p50 = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(pt, "latency_ms"), "p50");
    if (cJSON_IsNumber(p50))
      CHECK(p50->valuedouble > 0.25 && p50->valuedouble <= 0.5);
  }
  CHECK(sum <= (double)done);
  CHECK(sum > 0);
  cJSON_Delete(o);
  admin_stats_destroy(st);
  metrics_destroy(m);
}

int main(void)
{
  RUN(prom_line);
  RUN(quantiles);
  RUN(sampler);
  return check_done();
}
