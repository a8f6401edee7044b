#include "common.h"
#include <inttypes.h>
static const uint64_t vals[] = {0, 1, 0x80, 0xFF, 0x8000000000000000ull, 0x7FFFFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull,
  0x0123456789ABCDEFull, 0xFEDCBA9876543210ull, 0x80000000ull, 0x7FFFFFFFull, 0xFFFFFFFF00000000ull, 0xAAAAAAAA55555555ull};
int main(void) {
  uint64_t h = FNV0;
  for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    uint64_t v = OPAQUE(vals[i]);
    uint32_t w = (uint32_t)v;
    for (unsigned s = 0; s < 64; s++) {
      unsigned sh = OPAQUE(s);
      uint64_t a = v << sh, b = v >> sh, c = (uint64_t)((int64_t)v >> sh);
      uint32_t d = w << (sh & 31), e = w >> (sh & 31), f = (uint32_t)((int32_t)w >> (sh & 31));
      /* AArch64 LSLV etc. use the shift amount modulo the width: test via asm to see raw behaviour */
      uint64_t g, k; uint32_t m;
      __asm__("lslv %0, %1, %2" : "=r"(g) : "r"(v), "r"((uint64_t)sh + 64 * (i & 3)));
      __asm__("asrv %0, %1, %2" : "=r"(k) : "r"(v), "r"((uint64_t)sh + 128));
      __asm__("rorv %w0, %w1, %w2" : "=r"(m) : "r"(w), "r"(sh));
      h = mix(h, a); h = mix(h, b); h = mix(h, c); h = mix(h, d); h = mix(h, e); h = mix(h, f);
      h = mix(h, g); h = mix(h, k); h = mix(h, m);
      if (s == 0 || s == 1 || s == 31 || s == 32 || s == 63)
        printf("v=%016" PRIx64 " s=%2u lsl=%016" PRIx64 " lsr=%016" PRIx64 " asr=%016" PRIx64 " w: %08x %08x %08x ror=%08x\n",
               v, s, a, b, c, d, e, f, m);
    }
  }
  /* immediate shifts (compile to UBFM/SBFM forms) */
  for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    int64_t v = (int64_t)OPAQUE(vals[i]);
    int32_t w = (int32_t)v;
    printf("%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %08x %08x %08x %016" PRIx64 "\n", (uint64_t)(v << 63),
           (uint64_t)(v >> 63), (uint64_t)v >> 63, (uint32_t)w << 31, (uint32_t)(w >> 31), (uint32_t)w >> 31,
           (uint64_t)(int64_t)(int8_t)(v >> 3));
  }
  printf("hash=%016" PRIx64 "\n", h);
  return 0;
}
