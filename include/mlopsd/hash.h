/* hash.h - FNV-1a, the one non-cryptographic string hash of mlopsd.
 *
 * Several modules key small open-addressing tables by short strings (the
 * statement cache by SQL text, the category tables of prep, the string
 * arena of fstore); they all want the same cheap, well-spread hash, so it
 * lives here once instead of as private copies.
 * Not for anything an attacker may choose to collide on purpose in bulk
 * (use sha256.h where that matters).
 *
 * Thread rule: pure function, any thread.
 */
#ifndef MLOPSD_HASH_H
#define MLOPSD_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_START 1469598103934665603ULL

/* 64-bit FNV-1a of the n bytes at p (p may be NULL when n is 0): prime
 * 1099511628211, byte by byte, from the start value 1469598103934665603.
 * That start value is not FNV's published offset basis (which has one
 * more digit, 14695981039346656037): it is the one every private copy
 * used, kept so that no value changes.  The spread is as good; the values
 * differ from published FNV-1a test vectors and are stable across builds
 * and machines.  hash_fnv1a_more goes on from h (a running hash over
 * several pieces; HASH_FNV1A_START for the first). */
static inline uint64_t hash_fnv1a_more(uint64_t h, const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static inline uint64_t hash_fnv1a(const void *p, size_t n)
{
  return hash_fnv1a_more(HASH_FNV1A_START, p, n);
}

#endif
