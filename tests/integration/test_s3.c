/* test_s3.c - the S3 client (src/s3.c) against a real OpenStack Swift with
 * s3api (tests/s3.sh, started by tests/run.sh for tests named *s3*):
 * put/get/head/delete of files and buffers with their SHA-256, listing
 * across continuation tokens, keys that need percent-encoding, query
 * strings that must be sorted to verify, wrong credentials, a missing
 * bucket and missing keys, credentials from a file, and s3_url_parse. */
#include "check.h"
#include "fixture.h"
#include "mlopsd/s3.h"
#include "mlopsd/sha256.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct s3_opts g_opts;
static char g_prefix[64];

static struct s3 *client(void)
{
  struct s3 *s = NULL;
  struct err e = {0};
  if (s3_create(&g_opts, &s, &e)) {
    fprintf(stderr, "s3_create: %s\n", e.msg);
    return NULL;
  }
  return s;
}

static const char *key(const char *leaf)
{
  static char k[4][512];
  static int i;
  i = (i + 1) % 4;
  snprintf(k[i], sizeof(k[i]), "%s/%s", g_prefix, leaf);
  return k[i];
}

#define NEED_S3()                                                            \
  do {                                                                        \
    if (!g_opts.endpoint)                                                     \
      SKIP("no S3 store (MLOPSD_TEST_S3_ENDPOINT unset: run through "         \
           "tests/run.sh, which starts tests/s3.sh)");                        \
  } while (0)

TEST(put_get_head_delete)
{
  NEED_S3();
  struct s3 *s = client();
  REQUIRE(s);
  struct err e = {0};
  char src[4096], dst[4096];
  snprintf(src, sizeof(src), "%s/src.bin", fx_tmp());
  snprintf(dst, sizeof(dst), "%s/dst.bin", fx_tmp());
  /* 300 KiB of bytes that are not text, so a short or mangled transfer
   * changes the digest */
  size_t n = 300u << 10;
  unsigned char *data = malloc(n);
  REQUIRE(data);
  for (size_t i = 0; i < n; i++)
    data[i] = (unsigned char)((i * 2654435761u) >> 13);
  FILE *f = fopen(src, "wb");
  REQUIRE(f && fwrite(data, 1, n, f) == n && fclose(f) == 0);
  char put_sha[SHA256_HEX_LEN], get_sha[SHA256_HEX_LEN],
      want[SHA256_HEX_LEN];
  uint8_t d[SHA256_DIGEST_LEN];
  sha256_buf(data, n, d);
  sha256_hex(d, want);
  CHECK_EQ_INT(s3_put_file(s, key("a/model.ubj"), src, put_sha, &e), ERR_OK);
  if (e.code)
    fprintf(stderr, "  %s\n", e.msg);
  CHECK_EQ_STR(put_sha, want);
  int64_t size = -1;
  CHECK_EQ_INT(s3_head(s, key("a/model.ubj"), &size, &e), ERR_OK);
  CHECK_EQ_INT(size, (long long)n);
  CHECK_EQ_INT(s3_get_file(s, key("a/model.ubj"), dst, get_sha, &e), ERR_OK);
  CHECK_EQ_STR(get_sha, want);
  size_t got_n = 0;
  char *got = fx_read_file(dst, &got_n);
  CHECK(got && got_n == n && memcmp(got, data, n) == 0);
  free(got);

  /* buffers, an empty object */
  CHECK_EQ_INT(s3_put_buf(s, key("a/meta.json"), "{\"x\":1}", 7, &e), ERR_OK);
  CHECK_EQ_INT(s3_put_buf(s, key("a/empty"), NULL, 0, &e), ERR_OK);
  char *buf = NULL;
  size_t bn = 0;
  CHECK_EQ_INT(s3_get_buf(s, key("a/meta.json"), 1024, &buf, &bn, &e),
               ERR_OK);
  CHECK(buf && bn == 7 && !strcmp(buf, "{\"x\":1}"));
  free(buf);
  CHECK_EQ_INT(s3_get_buf(s, key("a/empty"), 1024, &buf, &bn, &e), ERR_OK);
  CHECK(buf && bn == 0);
  free(buf);
  /* the cap holds */
  CHECK_EQ_INT(s3_get_buf(s, key("a/model.ubj"), 1000, &buf, &bn, &e),
               ERR_INVAL);
  CHECK(buf == NULL && strstr(e.msg, "larger than 1000"));

  /* missing keys: ERR_NOTFOUND with the status and S3 code; the file
   * a failed download was meant for is left alone */
  CHECK_EQ_INT(s3_get_file(s, key("a/nope"), dst, NULL, &e), ERR_NOTFOUND);
  CHECK(strstr(e.msg, "HTTP 404") && strstr(e.msg, "NoSuchKey") &&
        strstr(e.msg, "a/nope"));
  got = fx_read_file(dst, &got_n);
  CHECK(got && got_n == n);
  free(got);
  CHECK_EQ_INT(s3_head(s, key("a/nope"), NULL, &e), ERR_NOTFOUND);
  CHECK(strstr(e.msg, "HTTP 404") != NULL);

  CHECK_EQ_INT(s3_delete(s, key("a/model.ubj"), &e), ERR_OK);
  CHECK_EQ_INT(s3_head(s, key("a/model.ubj"), NULL, &e), ERR_NOTFOUND);
  CHECK_EQ_INT(s3_delete(s, key("a/model.ubj"), &e), ERR_OK); /* again */
  free(data);
  s3_destroy(s);
}

struct seen {
  char keys[64][256];
  int64_t sizes[64];
  int n;
  int stop_at;
};

static int on_key(const char *k, int64_t size, void *ud)
{
  struct seen *s = ud;
  if (s->n < 64) {
    snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", k);
    s->sizes[s->n] = size;
  }
  s->n++;
  return s->stop_at && s->n >= s->stop_at;
}

TEST(list_and_encoding)
{
  NEED_S3();
  struct s3 *s = client();
  REQUIRE(s);
  struct err e = {0};
  /* keys with characters the SigV4 canonical URI must encode, and a
   * prefix whose encoding matters in the (sorted) query string */
  const char *leaves[] = {"l/x y+z=1", "l/a~b.c", "l/%41", "l/u_ü"};
  for (size_t i = 0; i < 4; i++)
    CHECK_EQ_INT(s3_put_buf(s, key(leaves[i]), leaves[i], strlen(leaves[i]),
                            &e),
                 ERR_OK);
  if (e.code)
    fprintf(stderr, "  %s\n", e.msg);
  struct seen sn = {0};
  CHECK_EQ_INT(s3_list(s, key("l/"), on_key, &sn, &e), ERR_OK);
  CHECK_EQ_INT(sn.n, 4);
  /* S3 lists in byte order */
  CHECK_EQ_STR(sn.keys[0], key("l/%41"));
  CHECK_EQ_STR(sn.keys[1], key("l/a~b.c"));
  CHECK_EQ_STR(sn.keys[2], key("l/u_ü"));
  CHECK_EQ_STR(sn.keys[3], key("l/x y+z=1"));
  CHECK_EQ_INT(sn.sizes[3], (long long)strlen("l/x y+z=1"));
  char *buf = NULL;
  size_t bn;
  CHECK_EQ_INT(s3_get_buf(s, key("l/x y+z=1"), 100, &buf, &bn, &e), ERR_OK);
  CHECK(buf && !strcmp(buf, "l/x y+z=1"));
  free(buf);
  /* the callback stops a listing */
  struct seen stop = {.stop_at = 2};
  CHECK_EQ_INT(s3_list(s, key("l/"), on_key, &stop, &e), ERR_CANCELED);
  CHECK_EQ_INT(stop.n, 2);
  /* an empty prefix result */
  struct seen none = {0};
  CHECK_EQ_INT(s3_list(s, key("nothing-here/"), on_key, &none, &e), ERR_OK);
  CHECK_EQ_INT(none.n, 0);
  s3_destroy(s);
}

TEST(list_continuation)
{
  NEED_S3();
  struct s3 *s = client();
  REQUIRE(s);
  struct err e = {0};
  /* pages of 3 keys: 3 pages and a bit need continuation tokens, and the
   * query (continuation-token, list-type, max-keys, prefix) verifies only
   * when sorted */
  struct s3_opts o = g_opts;
  o.list_page = 3;
  s3_destroy(s);
  s = NULL;
  REQUIRE(s3_create(&o, &s, &e) == ERR_OK);
  int n = 11;
  int ok = 1;
  for (int i = 0; i < n && ok; i++) {
    char leaf[64];
    snprintf(leaf, sizeof(leaf), "many/k%05d", i);
    ok = s3_put_buf(s, key(leaf), "x", 1, &e) == ERR_OK;
  }
  if (!ok)
    fprintf(stderr, "  %s\n", e.msg);
  REQUIRE(ok);
  struct seen sn = {0};
  CHECK_EQ_INT(s3_list(s, key("many/"), on_key, &sn, &e), ERR_OK);
  if (e.code)
    fprintf(stderr, "  %s\n", e.msg);
  CHECK_EQ_INT(sn.n, n);
  CHECK_EQ_STR(sn.keys[0], key("many/k00000"));
  s3_destroy(s);
}

TEST(bad_credentials_and_bucket)
{
  NEED_S3();
  struct err e = {0};
  struct s3_opts o = g_opts;
  o.secret_key = "wrong-secret";
  o.access_key = g_opts.access_key;
  struct s3 *s = NULL;
  REQUIRE(s3_create(&o, &s, &e) == ERR_OK);
  CHECK_EQ_INT(s3_put_buf(s, key("auth/x"), "x", 1, &e), ERR_AUTH);
  CHECK(strstr(e.msg, "HTTP 403") && strstr(e.msg, "SignatureDoesNotMatch"));
  /* the secret never shows in a message */
  CHECK(!strstr(e.msg, "wrong-secret"));
  s3_destroy(s);

  o = g_opts;
  o.bucket = "no-such-bucket-here";
  REQUIRE(s3_create(&o, &s, &e) == ERR_OK);
  CHECK_EQ_INT(s3_get_buf(s, "x", 10, &(char *){NULL}, NULL, &e),
               ERR_NOTFOUND);
  CHECK(strstr(e.msg, "NoSuchBucket") != NULL);

  s3_destroy(s);

  /* an endpoint where nothing listens: a transport error naming it */
  o = g_opts;
  char ep[64];
  snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", fx_free_port());
  o.endpoint = ep;
  REQUIRE(s3_create(&o, &s, &e) == ERR_OK);
  CHECK_EQ_INT(s3_head(s, "x", NULL, &e), ERR_IO);
  CHECK(strstr(e.msg, ep) != NULL);
  s3_destroy(s);
}

TEST(credentials_file)
{
  NEED_S3();
  struct err e = {0};
  char path[4096];
  snprintf(path, sizeof(path), "%s/creds", fx_tmp());
  char text[512];
  snprintf(text, sizeof(text),
           "# comment\n[other]\naws_access_key_id = nobody\n"
           "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
           g_opts.access_key, g_opts.secret_key);
  REQUIRE(fx_write_text(path, text) == 0);
  /* the environment is read before the file: clear it for this check */
  char *ak = strdup(getenv("AWS_ACCESS_KEY_ID"));
  char *sk = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  struct s3_opts o = g_opts;
  o.access_key = o.secret_key = NULL;
  struct s3 *s = NULL;
  CHECK_EQ_INT(s3_create(&o, &s, &e), ERR_CONFIG); /* nothing given */
  CHECK(strstr(e.msg, "AWS_ACCESS_KEY_ID") != NULL);
  o.credentials_file = path;
  CHECK_EQ_INT(s3_create(&o, &s, &e), ERR_OK);
  if (s)
    CHECK_EQ_INT(s3_put_buf(s, key("creds/x"), "x", 1, &e), ERR_OK);
  s3_destroy(s);
  REQUIRE(fx_write_text(path, "[default]\naws_access_key_id = a\n") == 0);
  s = NULL;
  CHECK_EQ_INT(s3_create(&o, &s, &e), ERR_CONFIG);
  CHECK(strstr(e.msg, path) != NULL);
  setenv("AWS_ACCESS_KEY_ID", ak, 1);
  setenv("AWS_SECRET_ACCESS_KEY", sk, 1);
  free(ak);
  free(sk);
}

TEST(url_parse)
{
  struct err e = {0};
  char b[64], p[64];
  CHECK_EQ_INT(s3_url_parse("s3://bkt/a/b/", b, sizeof(b), p, sizeof(p), &e),
               ERR_OK);
  CHECK_EQ_STR(b, "bkt");
  CHECK_EQ_STR(p, "a/b");
  CHECK_EQ_INT(s3_url_parse("s3://bkt", b, sizeof(b), p, sizeof(p), &e),
               ERR_OK);
  CHECK_EQ_STR(p, "");
  CHECK_EQ_INT(s3_url_parse("s3:///x", b, sizeof(b), p, sizeof(p), &e),
               ERR_CONFIG);
  CHECK_EQ_INT(s3_url_parse("http://x/y", b, sizeof(b), p, sizeof(p), &e),
               ERR_CONFIG);
  CHECK(strstr(e.msg, "http://x/y") != NULL);
}

int main(void)
{
  g_opts.endpoint = getenv("MLOPSD_TEST_S3_ENDPOINT");
  g_opts.bucket = getenv("MLOPSD_TEST_S3_BUCKET");
  g_opts.region = getenv("MLOPSD_TEST_S3_REGION");
  g_opts.access_key = getenv("AWS_ACCESS_KEY_ID");
  g_opts.secret_key = getenv("AWS_SECRET_ACCESS_KEY");
  if (!g_opts.bucket || !g_opts.access_key || !g_opts.secret_key)
    g_opts.endpoint = NULL;
  /* a fresh prefix per run: the store may be shared by several tests */
  snprintf(g_prefix, sizeof(g_prefix), "test_s3-%d-%ld", (int)getpid(),
           (long)fx_now_s());
  RUN(put_get_head_delete);
  RUN(list_and_encoding);
  RUN(list_continuation);
  RUN(bad_credentials_and_bucket);
  RUN(credentials_file);
  RUN(url_parse);
  fx_tmp_remove();
  return check_done();
}
