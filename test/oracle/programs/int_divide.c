#include "common.h"
#include <inttypes.h>
#include <limits.h>
/* Division by zero and INT_MIN/-1 are UB in C; AArch64 defines them (result 0, and INT_MIN), so use asm. */
static int64_t sdiv64(int64_t a, int64_t b) { int64_t r; __asm__ volatile("sdiv %0, %1, %2" : "=r"(r) : "r"(a), "r"(b)); return r; }
static uint64_t udiv64(uint64_t a, uint64_t b) { uint64_t r; __asm__ volatile("udiv %0, %1, %2" : "=r"(r) : "r"(a), "r"(b)); return r; }
static int32_t sdiv32(int32_t a, int32_t b) { int32_t r; __asm__ volatile("sdiv %w0, %w1, %w2" : "=r"(r) : "r"(a), "r"(b)); return r; }
static uint32_t udiv32(uint32_t a, uint32_t b) { uint32_t r; __asm__ volatile("udiv %w0, %w1, %w2" : "=r"(r) : "r"(a), "r"(b)); return r; }
static const int64_t v[] = {0, 1, -1, 2, -2, 3, -3, 7, -7, 10, 100, -100, INT64_MAX, INT64_MIN, INT32_MAX, INT32_MIN, 0xFFFFFFFFll, 0x123456789ll, -0x123456789ll, 1000000007};
int main(void) {
  unsigned n = sizeof v / sizeof v[0];
  uint64_t h = FNV0;
  for (unsigned i = 0; i < n; i++) for (unsigned j = 0; j < n; j++) {
    int64_t a = v[i], b = v[j];
    int64_t q = sdiv64(a, b); uint64_t uq = udiv64((uint64_t)a, (uint64_t)b);
    int32_t q32 = sdiv32((int32_t)a, (int32_t)b); uint32_t uq32 = udiv32((uint32_t)a, (uint32_t)b);
    /* remainder via msub as the compiler would do it */
    int64_t r = (int64_t)((uint64_t)a - (uint64_t)q * (uint64_t)b);
    printf("%" PRId64 "/%" PRId64 " = %" PRId64 " r%" PRId64 " u=%" PRIu64 " s32=%d u32=%u\n", a, b, q, r, uq, q32, uq32);
    if (b != 0 && !(a == INT64_MIN && b == -1)) {
      int64_t cq = OPAQUE(a) / OPAQUE(b), cr = OPAQUE(a) % OPAQUE(b);
      if (cq != q || cr != r) printf("MISMATCH C division\n");
      h = mix(h, (uint64_t)cq); h = mix(h, (uint64_t)cr);
      h = mix(h, OPAQUE((uint64_t)a) / OPAQUE((uint64_t)b)); h = mix(h, OPAQUE((uint64_t)a) % OPAQUE((uint64_t)b));
    }
  }
  /* constant divisors: compiled to multiply-high sequences */
  for (int64_t a = -1000; a <= 1000; a += 7) {
    int64_t x = OPAQUE(a);
    h = mix(h, (uint64_t)(x / 3)); h = mix(h, (uint64_t)(x / 7)); h = mix(h, (uint64_t)(x % 10)); h = mix(h, (uint64_t)(x / 1000000007));
    h = mix(h, (uint64_t)x / 3); h = mix(h, (uint64_t)x % 641);
    int32_t y = (int32_t)x * 1234567; h = mix(h, (uint64_t)(y / 13)); h = mix(h, (uint32_t)y / 13u);
  }
  printf("hash=%016" PRIx64 "\n", h);
  return 0;
}
