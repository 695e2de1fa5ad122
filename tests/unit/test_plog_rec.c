/* test_plog_rec.c - the prediction log's spool record format
 * (src/plog_rec.c, plog_int.h): rows come back from a record as they went
 * in, texts and numbers bit for bit, and every damaged record (short,
 * wrong magic, a row cut off, bytes left over, a row count larger than
 * the bytes allow) is refused rather than read past its end. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "plog_int.h"

static struct pbuf_row mkrow(uint64_t seq, const char *cid, const char *pred,
                             const char *model, const char *feat, double conf)
{
  struct pbuf_row r = {.seq = seq,
                       .created_us = 1764136800000000LL + (int64_t)seq,
                       .conf = conf,
                       .elapsed_ms = (int32_t)seq * 3,
                       .model_version = 7,
                       .cid = cid,
                       .pred = pred,
                       .model = model,
                       .feat = feat,
                       .cid_len = strlen(cid),
                       .pred_len = strlen(pred),
                       .model_len = strlen(model),
                       .feat_len = strlen(feat)};
  return r;
}

static int same_text(const char *a, size_t al, const char *b, size_t bl)
{
  return al == bl && memcmp(a, b, al) == 0;
}

TEST(round_trip)
{
  struct pbuf_row in[3] = {
      mkrow(1, "4096", "Standard", "credit", "{\"age\": 18}", 0.75),
      mkrow(2, "", "0.5", "credit", "{}", NAN),
      mkrow(UINT64_MAX, "c\xc3\xa9", "Poor", "m", "{\"x\": [1, 2]}", -0.0)};
  char *buf = NULL;
  size_t cap = 0;
  size_t len = plog_rec_encode(&buf, &cap, in, 3);
  REQUIRE(len > 8 + 3 * PLOG_REC_ROW_HDR);
  struct pbuf_row *out = NULL;
  size_t vcap = 0;
  CHECK_EQ_INT(plog_rec_decode(&out, &vcap, buf, len), 3);
  for (int i = 0; i < 3; i++) {
    CHECK(out[i].seq == in[i].seq);
    CHECK(out[i].created_us == in[i].created_us);
    CHECK(memcmp(&out[i].conf, &in[i].conf, 8) == 0); /* NaN, -0 too */
    CHECK_EQ_INT(out[i].elapsed_ms, in[i].elapsed_ms);
    CHECK_EQ_INT(out[i].model_version, in[i].model_version);
    CHECK(same_text(out[i].cid, out[i].cid_len, in[i].cid, in[i].cid_len));
    CHECK(same_text(out[i].pred, out[i].pred_len, in[i].pred,
                    in[i].pred_len));
    CHECK(same_text(out[i].model, out[i].model_len, in[i].model,
                    in[i].model_len));
    CHECK(same_text(out[i].feat, out[i].feat_len, in[i].feat,
                    in[i].feat_len));
    /* the views point into the record, not into copies */
    CHECK(out[i].feat >= buf && out[i].feat < buf + len);
  }
  /* an empty batch is a record too */
  len = plog_rec_encode(&buf, &cap, in, 0);
  CHECK_EQ_INT(len, 8);
  CHECK_EQ_INT(plog_rec_decode(&out, &vcap, buf, len), 0);
  free(buf);
  free(out);
}

TEST(damaged_records_refused)
{
  struct pbuf_row in[2] = {
      mkrow(10, "1", "Good", "credit", "{\"a\": 1}", 0.9),
      mkrow(11, "2", "Poor", "credit", "{\"a\": 2}", 0.1)};
  char *buf = NULL;
  size_t cap = 0;
  size_t len = plog_rec_encode(&buf, &cap, in, 2);
  REQUIRE(len > 0);
  struct pbuf_row *out = NULL;
  size_t vcap = 0;
  /* every cut short of the whole record */
  int cut_refused = 1;
  for (size_t l = 0; l < len; l++)
    cut_refused &= plog_rec_decode(&out, &vcap, buf, l) == -1;
  CHECK(cut_refused);
  /* bytes left over after the last row */
  char *longer = malloc(len + 1);
  REQUIRE(longer);
  memcpy(longer, buf, len);
  longer[len] = 0;
  CHECK_EQ_INT(plog_rec_decode(&out, &vcap, longer, len + 1), -1);
  free(longer);
  /* another format's record */
  buf[0] ^= 1;
  CHECK_EQ_INT(plog_rec_decode(&out, &vcap, buf, len), -1);
  buf[0] ^= 1;
  /* a row count the bytes cannot hold: refused before any allocation */
  uint32_t huge = UINT32_MAX;
  memcpy(buf + 4, &huge, 4);
  CHECK_EQ_INT(plog_rec_decode(&out, &vcap, buf, len), -1);
  /* a text length that runs past the end */
  uint32_t two = 2, big_feat = (uint32_t)len;
  memcpy(buf + 4, &two, 4);
  memcpy(buf + 8 + 40, &big_feat, 4);
  CHECK_EQ_INT(plog_rec_decode(&out, &vcap, buf, len), -1);
  free(buf);
  free(out);
}

/* The shadow tail of a model text (plog_int.h): parsed back exactly; a
 * plain name (rows from before shadows) or a damaged tail is no shadow,
 * and the name length is right either way. */
TEST(shadow_tail)
{
  size_t nl = 0, pl = 0;
  int v = 0;
  double c = 0;
  const char *pred = NULL;
  const char ok[] = "credit\x1f" "12\x1f" "0.61234567890123451\x1f" "Standard";
  CHECK(plog_model_split(ok, strlen(ok), &nl, &v, &c, &pred, &pl) == 1);
  CHECK(nl == 6 && v == 12 && c == 0.61234567890123451);
  CHECK(pl == 8 && memcmp(pred, "Standard", 8) == 0);
  const char nan_conf[] = "m\x1f" "3\x1f" "nan\x1f" "4.5";
  CHECK(plog_model_split(nan_conf, strlen(nan_conf), &nl, &v, &c, &pred,
                         &pl) == 1);
  CHECK(nl == 1 && v == 3 && isnan(c) && pl == 3);
  CHECK(plog_model_split("credit", 6, &nl, &v, &c, &pred, &pl) == 0);
  CHECK(nl == 6);
  const char *bad[] = {"m\x1f", "m\x1f" "3", "m\x1f" "3\x1f" "0.5",
                       "m\x1f" "x\x1f" "0.5\x1f" "A",
                       "m\x1f" "0\x1f" "0.5\x1f" "A",
                       "m\x1f" "3\x1f" "0.5z\x1f" "A"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CHECK(plog_model_split(bad[i], strlen(bad[i]), &nl, &v, &c, &pred,
                           &pl) == 0);
    CHECK(nl == 1);
  }
}

int main(void)
{
  RUN(round_trip);
  RUN(damaged_records_refused);
  RUN(shadow_tail);
  return check_done();
}
