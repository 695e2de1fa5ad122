/* test_buf.c - the capped byte buffer: appends, printf, the cap at and
 * over its limit, sticky errors, reset and hand-over. */
#include "check.h"
#include "mlopsd/buf.h"

TEST(add_and_format)
{
  struct buf b;
  buf_init(&b, BUF_NO_MAX);
  CHECK_EQ_STR(buf_str(&b), "");
  CHECK_EQ_INT(buf_add(&b, "ab", 2), ERR_OK);
  CHECK_EQ_INT(buf_adds(&b, "cd"), ERR_OK);
  CHECK_EQ_INT(buf_addf(&b, "-%d-%s", 42, "x"), ERR_OK);
  CHECK_EQ_STR(buf_str(&b), "abcd-42-x");
  CHECK_EQ_INT(b.len, 9);
  CHECK_EQ_INT(buf_add(&b, NULL, 0), ERR_OK);
  /* a formatted piece longer than the stack buffer */
  char big[1000];
  memset(big, 'z', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  CHECK_EQ_INT(buf_addf(&b, "[%s]", big), ERR_OK);
  CHECK_EQ_INT(b.len, 9 + 1001);
  CHECK(b.p[9] == '[' && b.p[1009] == ']' && b.p[1010] == '\0');
  CHECK_EQ_INT(buf_error(&b), ERR_OK);
  buf_free(&b);
  CHECK(b.p == NULL && b.len == 0);
  buf_free(NULL);
}

TEST(cap_is_exact_and_sticky)
{
  struct buf b;
  buf_init(&b, 5);
  CHECK_EQ_INT(buf_add(&b, "abcde", 5), ERR_OK); /* exactly the cap */
  CHECK_EQ_INT(buf_add(&b, "f", 1), ERR_FULL);
  CHECK_EQ_STR(buf_str(&b), "abcde");
  /* sticky: a piece that would fit is refused too, with the first code */
  CHECK_EQ_INT(buf_add(&b, "", 0), ERR_FULL);
  CHECK_EQ_INT(buf_addf(&b, "%s", ""), ERR_FULL);
  CHECK_EQ_INT(buf_error(&b), ERR_FULL);
  /* reset clears the error and keeps the memory */
  char *mem = b.p;
  buf_reset(&b);
  CHECK_EQ_INT(buf_error(&b), ERR_OK);
  CHECK_EQ_STR(buf_str(&b), "");
  CHECK_EQ_INT(buf_addf(&b, "%d", 123456), ERR_FULL); /* 6 > 5 */
  CHECK_EQ_INT(b.len, 0);
  CHECK(b.p == mem);
  buf_free(&b);
  /* lengths near SIZE_MAX must not wrap */
  buf_init(&b, BUF_NO_MAX);
  CHECK_EQ_INT(buf_add(&b, "a", 1), ERR_OK);
  CHECK_EQ_INT(buf_add(&b, "b", SIZE_MAX), ERR_FULL);
  CHECK_EQ_STR(buf_str(&b), "a");
  buf_free(&b);
#ifndef __SANITIZE_ADDRESS__ /* ASan aborts on such a request */
  buf_init(&b, BUF_NO_MAX);
  CHECK_EQ_INT(buf_add(&b, "b", SIZE_MAX / 2), ERR_NOMEM);
  CHECK_EQ_INT(buf_error(&b), ERR_NOMEM);
  buf_free(&b);
#endif
}

TEST(take_hands_over)
{
  struct buf b;
  buf_init(&b, 100);
  size_t n = 99;
  char *s = buf_take(&b, &n); /* empty: a fresh "" */
  CHECK(s && s[0] == '\0');
  CHECK_EQ_INT(n, 0);
  free(s);
  for (int i = 0; i < 20; i++)
    buf_addf(&b, "%d,", i);
  CHECK_EQ_INT(buf_error(&b), ERR_OK);
  s = buf_take(&b, &n);
  CHECK_EQ_STR(s, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,");
  CHECK_EQ_INT(n, strlen(s));
  CHECK(b.p == NULL && b.len == 0 && b.max == 100);
  free(s);
}

/* A (p, len, cap) triple kept between uses, as metrics_render's. */
TEST(attach_appends)
{
  char *p = malloc(8);
  REQUIRE(p != NULL);
  memcpy(p, "abc", 3);
  struct buf b;
  buf_attach(&b, p, 3, 8, 10);
  CHECK_EQ_INT(buf_adds(&b, "defg"), ERR_OK); /* 7 + NUL fits in 8 */
  CHECK(b.p == p);
  CHECK_EQ_INT(buf_adds(&b, "hij"), ERR_OK); /* grows; 10 = max */
  CHECK_EQ_STR(buf_str(&b), "abcdefghij");
  CHECK_EQ_INT(buf_add(&b, "k", 1), ERR_FULL);
  buf_free(&b);
  buf_attach(&b, NULL, 0, 0, BUF_NO_MAX);
  CHECK_EQ_INT(buf_add(&b, "", 0), ERR_OK); /* allocates, terminates */
  CHECK(b.p != NULL && b.p[0] == '\0' && b.len == 0);
  buf_free(&b);
}

/* JSON strings: quotes, backslashes and control bytes escaped, UTF-8
 * passed through, NULL as null. */
TEST(json_string)
{
  struct buf b = BUF_INIT(64);
  CHECK_EQ_INT(buf_add_jstr(&b, "a\"b\\c\n\t\r\x01\xc3\xa9"), ERR_OK);
  CHECK_EQ_INT(buf_add_jstr(&b, NULL), ERR_OK);
  CHECK_EQ_STR(buf_str(&b), "\"a\\\"b\\\\c\\n\\t\\r\\u0001\xc3\xa9\"null");
  struct buf small = BUF_INIT(3);
  CHECK_EQ_INT(buf_add_jstr(&small, "abcd"), ERR_FULL);
  buf_free(&small);
  buf_free(&b);
}

int main(void)
{
  RUN(add_and_format);
  RUN(cap_is_exact_and_sticky);
  RUN(take_hands_over);
  RUN(attach_appends);
  RUN(json_string);
  return check_done();
}
