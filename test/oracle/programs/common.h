/* Shared helpers for the oracle programs: a deterministic PRNG and a checksum.
 * Everything printed must be identical on any correct AArch64 Linux (no time, pids, addresses). */
#ifndef XENO_ORACLE_COMMON_H
#define XENO_ORACLE_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static inline uint64_t rng64(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}
static inline uint32_t rng32(void) { return (uint32_t)(rng64() >> 32); }
static inline void rng_seed(uint64_t s) { rng_state = s ? s : 1; }

/* FNV-1a 64 over bytes, chainable */
static inline uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = (const unsigned char *)p;
  for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001B3ull; }
  return h;
}
#define FNV0 0xCBF29CE484222325ull
static inline uint64_t mix(uint64_t h, uint64_t v) { return fnv(h, &v, sizeof v); }

static inline uint64_t dbits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static inline uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline double bitsd(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static inline float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Keep the compiler from constant-folding a value. */
#define OPAQUE(x) ({ __auto_type _v = (x); __asm__ volatile("" : "+r"(_v)); _v; })
#define OPAQUEF(x) ({ __auto_type _v = (x); __asm__ volatile("" : "+w"(_v)); _v; })
#endif
