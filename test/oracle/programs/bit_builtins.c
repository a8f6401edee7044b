#include "common.h"
#include <inttypes.h>
static uint64_t rbit64(uint64_t x) { uint64_t r; __asm__("rbit %0,%1" : "=r"(r) : "r"(x)); return r; }
static uint32_t rbit32(uint32_t x) { uint32_t r; __asm__("rbit %w0,%w1" : "=r"(r) : "r"(x)); return r; }
static uint64_t cls64(uint64_t x) { uint64_t r; __asm__("cls %0,%1" : "=r"(r) : "r"(x)); return r; }
static uint64_t clz64(uint64_t x) { uint64_t r; __asm__("clz %0,%1" : "=r"(r) : "r"(x)); return r; }
static uint32_t clz32(uint32_t x) { uint32_t r; __asm__("clz %w0,%w1" : "=r"(r) : "r"(x)); return r; }
static uint64_t rev16(uint64_t x) { uint64_t r; __asm__("rev16 %0,%1" : "=r"(r) : "r"(x)); return r; }
static uint64_t rev32(uint64_t x) { uint64_t r; __asm__("rev32 %0,%1" : "=r"(r) : "r"(x)); return r; }
static inline uint64_t rotl64(uint64_t x, unsigned s) { return (x << (s & 63)) | (x >> ((64 - s) & 63)); }
static inline uint32_t rotr32(uint32_t x, unsigned s) { return (x >> (s & 31)) | (x << ((32 - s) & 31)); }
int main(void) {
  uint64_t h = FNV0;
  const uint64_t fixed[] = {0, 1, 2, 0x80000000ull, 0xFFFFFFFFull, 0x8000000000000000ull, ~0ull, 0x00F0F0F000000000ull, 0x7FFFFFFFFFFFFFFFull, 0x4000000000000000ull, 0xC000000000000000ull};
  for (unsigned i = 0; i < sizeof fixed / 8; i++) {
    uint64_t x = OPAQUE(fixed[i]); uint32_t w = (uint32_t)x;
    printf("%016" PRIx64 ": pop=%d/%d clz=%" PRIu64 "/%u cls=%" PRIu64 " ctz=%d clrsb=%d par=%d bswap=%016" PRIx64 " %08x %04x rbit=%016" PRIx64 " %08x rev16=%016" PRIx64 " rev32=%016" PRIx64 " ffs=%d\n",
           x, __builtin_popcountll(x), __builtin_popcount(w), clz64(x), clz32(w), cls64(x), x ? __builtin_ctzll(x) : -1,
           __builtin_clrsbll((long long)x), __builtin_parityll(x), __builtin_bswap64(x), __builtin_bswap32(w), __builtin_bswap16((uint16_t)w),
           rbit64(x), rbit32(w), rev16(x), rev32(x), __builtin_ffsll((long long)x));
  }
  rng_seed(7);
  for (int i = 0; i < 20000; i++) {
    uint64_t x = rng64() >> (i & 63); uint32_t w = (uint32_t)(x >> (i % 7));
    unsigned s = OPAQUE((unsigned)i);
    h = mix(h, (uint64_t)__builtin_popcountll(x) | (uint64_t)(x ? __builtin_clzll(x) : 64) << 8 | (uint64_t)(x ? __builtin_ctzll(x) : 64) << 16 | (uint64_t)__builtin_clrsbll((long long)x) << 24);
    h = mix(h, __builtin_bswap64(x) ^ rbit64(x) ^ rotl64(x, s) ^ rotr32(w, s) ^ rev16(x) ^ cls64(x));
    h = mix(h, (uint64_t)(w ? __builtin_clz(w) : 32) * 131 + (uint64_t)__builtin_popcount(w));
  }
  printf("hash=%016" PRIx64 "\n", h);
  return 0;
}
