/* test_sha256.c - SHA-256 against the FIPS 180-2 / NIST example vectors,
 * incremental updates across block boundaries, and sha256_file. */
#include "check.h"
#include "mlopsd/sha256.h"

#include <stdint.h>
#include <unistd.h>

static void hex_of(const void *p, size_t n, char out[SHA256_HEX_LEN])
{
  uint8_t d[SHA256_DIGEST_LEN];
  sha256_buf(p, n, d);
  sha256_hex(d, out);
}

TEST(known_vectors)
{
  char h[SHA256_HEX_LEN];
  hex_of("", 0, h);
  CHECK_EQ_STR(h, "e3b0c44298fc1c149afbf4c8996fb924"
                  "27ae41e4649b934ca495991b7852b855");
  hex_of("abc", 3, h);
  CHECK_EQ_STR(h, "ba7816bf8f01cfea414140de5dae2223"
                  "b00361a396177a9cb410ff61f20015ad");
  const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  hex_of(m2, strlen(m2), h);
  CHECK_EQ_STR(h, "248d6a61d20638b8e5c026930c3e6039"
                  "a33ce45964ff2167f6ecedd419db06c1");
  const char *m3 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                   "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  hex_of(m3, strlen(m3), h);
  CHECK_EQ_STR(h, "cf5b16a778af8380036ce59e7b049237"
                  "0b249b11e8f07a51afac45037afee9d1");
}

TEST(million_a_incremental)
{
  struct sha256_ctx c;
  sha256_init(&c);
  char chunk[1000];
  memset(chunk, 'a', sizeof(chunk));
  /* odd chunk sizes exercise the partial-block path */
  size_t left = 1000000;
  size_t step = 1;
  while (left) {
    size_t n = step < left ? step : left;
    if (n > sizeof(chunk))
      n = sizeof(chunk);
    sha256_update(&c, chunk, n);
    left -= n;
    step = step * 7 % 997 + 1;
  }
  uint8_t d[SHA256_DIGEST_LEN];
  char h[SHA256_HEX_LEN];
  sha256_final(&c, d);
  sha256_hex(d, h);
  CHECK_EQ_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67"
                  "f1809a48a497200e046d39ccc7112cd0");
}

TEST(boundaries_split_equals_oneshot)
{
  /* lengths around the 55/56/64 padding boundaries, every split point */
  uint8_t msg[130];
  for (size_t i = 0; i < sizeof(msg); i++)
    msg[i] = (uint8_t)(i * 31 + 7);
  size_t lens[] = {55, 56, 57, 63, 64, 65, 119, 120, 128, 130};
  for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
    uint8_t ref[SHA256_DIGEST_LEN];
    sha256_buf(msg, lens[k], ref);
    for (size_t cut = 0; cut <= lens[k]; cut++) {
      struct sha256_ctx c;
      uint8_t d[SHA256_DIGEST_LEN];
      sha256_init(&c);
      sha256_update(&c, msg, cut);
      sha256_update(&c, msg + cut, lens[k] - cut);
      sha256_final(&c, d);
      CHECK(memcmp(d, ref, sizeof(d)) == 0);
    }
  }
}

TEST(file_digest)
{
  char path[] = "/tmp/test_sha256_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, "abc", 3) == 3);
  close(fd);
  char h[SHA256_HEX_LEN];
  struct err e = {0};
  CHECK_EQ_INT(sha256_file(path, h, &e), ERR_OK);
  CHECK_EQ_STR(h, "ba7816bf8f01cfea414140de5dae2223"
                  "b00361a396177a9cb410ff61f20015ad");
  unlink(path);
  CHECK_EQ_INT(sha256_file(path, h, &e), ERR_IO);
  CHECK(strstr(e.msg, path) != NULL);
}

int main(void)
{
  RUN(known_vectors);
  RUN(million_a_incremental);
  RUN(boundaries_split_equals_oneshot);
  RUN(file_digest);
  return check_done();
}
