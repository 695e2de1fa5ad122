/* sha256.h - SHA-256 (FIPS 180-4) for content fingerprints.
 *
 * mlopsd records the sha256 of every model spec and of every training set
 * in the registry's meta.json so a version can be traced to its inputs.
 * The dependency list has no crypto library, so this is a small
 * self-contained implementation; it is for fingerprints, not for secrets
 * (no constant-time guarantees are needed or given).
 *
 * Usage: struct sha256_ctx c; sha256_init(&c); sha256_update(&c, p, n)...;
 * sha256_final(&c, digest); sha256_hex(digest, hex).
 *
 * Thread rule: a context belongs to one thread at a time; the functions
 * have no shared state and may be called from any thread.
 */
#ifndef MLOPSD_SHA256_H
#define MLOPSD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 65 /* 64 hex digits + NUL */

/* Streaming state; fields are private (the struct is public only so a
 * context can live on the stack). */
struct sha256_ctx {
  uint32_t h[8];
  uint64_t total; /* bytes hashed so far */
  uint8_t buf[64];
  size_t nbuf;
};

void sha256_init(struct sha256_ctx *c);
/* Hash n more bytes of data (data may be NULL when n is 0). */
void sha256_update(struct sha256_ctx *c, const void *data, size_t n);
/* Finish and write the 32-byte digest; c must be re-initialised to reuse. */
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]);

/* One-shot digest of a buffer. */
void sha256_buf(const void *data, size_t n, uint8_t out[SHA256_DIGEST_LEN]);

/* Lower-case hex of a digest into out (65 bytes incl. NUL). */
void sha256_hex(const uint8_t digest[SHA256_DIGEST_LEN],
                char out[SHA256_HEX_LEN]);

/* Hex digest of a whole file's bytes.  Errors: ERR_IO (names the path). */
MLOPSD_WUR enum err_code sha256_file(const char *path,
                                     char out[SHA256_HEX_LEN], struct err *e);

#endif
