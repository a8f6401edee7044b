#include "common.h"
#include <inttypes.h>
typedef unsigned __int128 u128; typedef __int128 s128;
static void p128(const char *tag, u128 x) { printf("%s=%016" PRIx64 "%016" PRIx64 "\n", tag, (uint64_t)(x >> 64), (uint64_t)x); }
static const uint64_t v[] = {0, 1, 2, 3, 0xFFFFFFFFull, 0x100000000ull, 0x7FFFFFFFFFFFFFFFull, 0x8000000000000000ull, 0xFFFFFFFFFFFFFFFFull, 0x0123456789ABCDEFull, 0xDEADBEEFCAFEBABEull, 12345678901234567ull};
int main(void) {
  unsigned n = sizeof v / sizeof v[0];
  for (unsigned i = 0; i < n; i++) for (unsigned j = i; j < n; j++) {
    uint64_t a = OPAQUE(v[i]), b = OPAQUE(v[j]);
    u128 p = (u128)a * b; s128 sp = (s128)(int64_t)a * (int64_t)b;
    uint64_t uh, sh; __asm__("umulh %0,%1,%2" : "=r"(uh) : "r"(a), "r"(b)); __asm__("smulh %0,%1,%2" : "=r"(sh) : "r"(a), "r"(b));
    uint64_t ml, mn; __asm__("madd %0,%1,%2,%3" : "=r"(ml) : "r"(a), "r"(b), "r"(a ^ b)); __asm__("msub %0,%1,%2,%3" : "=r"(mn) : "r"(a), "r"(b), "r"(a + b));
    int64_t sm; uint64_t um; __asm__("smaddl %0,%w1,%w2,%3" : "=r"(sm) : "r"((uint32_t)a), "r"((uint32_t)b), "r"(b)); __asm__("umsubl %0,%w1,%w2,%3" : "=r"(um) : "r"((uint32_t)a), "r"((uint32_t)b), "r"(a));
    printf("%016" PRIx64 "*%016" PRIx64 ": ", a, b); p128("u", p);
    printf("  "); p128("s", (u128)sp);
    printf("  umulh=%016" PRIx64 " smulh=%016" PRIx64 " madd=%016" PRIx64 " msub=%016" PRIx64 " smaddl=%016" PRIx64 " umsubl=%016" PRIx64 "\n", uh, sh, ml, mn, (uint64_t)sm, um);
    u128 big = p * p + ((u128)b << 64 | a);
    if (b) { p128("  div", big / b); p128("  mod", big % b); }
    if (p >> 64) { p128("  div128", big / (p | 1)); }
    s128 sb = -(s128)big; if (a) { p128("  sdiv", (u128)(sb / (int64_t)a)); p128("  smod", (u128)(sb % (int64_t)a)); }
  }
  /* factorial mod 2^128 and a 128-bit LCG */
  u128 f = 1; for (unsigned k = 1; k <= 40; k++) f *= k; p128("40!", f);
  u128 x = 1; for (int k = 0; k < 1000; k++) x = x * (((u128)0x2360ED051FC65DA4ull << 64) | 0x4385DF649FCCF645ull) + 1; p128("lcg", x);
  return 0;
}
