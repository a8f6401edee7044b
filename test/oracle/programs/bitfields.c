#include "common.h"
#include <inttypes.h>
struct bf { unsigned a : 3; signed b : 5; unsigned c : 12; signed d : 1; unsigned long long e : 37; signed long long f : 27; };
struct __attribute__((packed)) pk { uint8_t x; uint32_t y; uint16_t z; uint64_t w; };
int main(void) {
  struct bf s; memset(&s, 0, sizeof s);
  uint64_t h = FNV0;
  rng_seed(42);
  for (int i = 0; i < 2000; i++) {
    uint64_t r = rng64();
    s.a = r; s.b = (int)(r >> 3); s.c = r >> 8; s.d = (int)(r >> 20); s.e = r >> 21; s.f = (long long)(r >> 30);
    h = fnv(h, &s, sizeof s);
    h = mix(h, (uint64_t)(s.a + s.b + s.c + s.d) ^ s.e ^ (uint64_t)s.f);
    if (i < 8) printf("a=%u b=%d c=%u d=%d e=%" PRIx64 " f=%lld\n", s.a, s.b, s.c, s.d, (uint64_t)s.e, (long long)s.f);
    s.b += 7; s.c *= 3; s.e -= 1; s.f ^= 0x5555;
    h = fnv(h, &s, sizeof s);
  }
  printf("size=%zu hash=%016" PRIx64 "\n", sizeof s, h);
  struct pk p[5]; memset(p, 0, sizeof p);
  for (int i = 0; i < 5; i++) { p[i].x = i; p[i].y = 0x11111111u * i; p[i].z = 0xABCD + i; p[i].w = 0x0102030405060708ull * i; }
  uint64_t sum = 0; for (int i = 0; i < 5; i++) sum += p[i].x + p[i].y + p[i].z + p[i].w;
  printf("packed size=%zu sum=%016" PRIx64 " h=%016" PRIx64 "\n", sizeof p, sum, fnv(FNV0, p, sizeof p));
  /* explicit bitfield insert/extract instructions */
  uint64_t v = OPAQUE(0x0123456789ABCDEFull), src = OPAQUE(0xFEDCBA9876543210ull), t;
  t = v; __asm__("bfi %0, %1, #12, #20" : "+r"(t) : "r"(src)); printf("bfi=%016" PRIx64 "\n", t);
  t = v; __asm__("bfxil %0, %1, #40, #16" : "+r"(t) : "r"(src)); printf("bfxil=%016" PRIx64 "\n", t);
  __asm__("ubfx %0, %1, #60, #4" : "=r"(t) : "r"(src)); printf("ubfx=%016" PRIx64 "\n", t);
  __asm__("sbfx %0, %1, #56, #8" : "=r"(t) : "r"(src)); printf("sbfx=%016" PRIx64 "\n", t);
  __asm__("sbfiz %0, %1, #4, #9" : "=r"(t) : "r"(src)); printf("sbfiz=%016" PRIx64 "\n", t);
  __asm__("ubfiz %w0, %w1, #20, #8" : "=r"(t) : "r"(src)); printf("ubfiz32=%016" PRIx64 "\n", t);
  __asm__("extr %0, %1, %2, #17" : "=r"(t) : "r"(v), "r"(src)); printf("extr=%016" PRIx64 "\n", t);
  __asm__("extr %w0, %w1, %w2, #5" : "=r"(t) : "r"(v), "r"(src)); printf("extr32=%016" PRIx64 "\n", t);
  __asm__("sxtb %0, %w1" : "=r"(t) : "r"(src)); printf("sxtb=%016" PRIx64 "\n", t);
  __asm__("sxth %0, %w1" : "=r"(t) : "r"(v)); printf("sxth=%016" PRIx64 "\n", t);
  __asm__("sxtw %0, %w1" : "=r"(t) : "r"(src)); printf("sxtw=%016" PRIx64 "\n", t);
  return 0;
}
