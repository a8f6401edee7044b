#include "common.h"
#include <math.h>
#include <inttypes.h>
static double frinta(double x) { double r; __asm__("frinta %d0,%d1" : "=w"(r) : "w"(x)); return r; }
static double frintx(double x) { double r; __asm__("frintx %d0,%d1" : "=w"(r) : "w"(x)); return r; }
static float frintnf(float x) { float r; __asm__("frintn %s0,%s1" : "=w"(r) : "w"(x)); return r; }
int main(void) {
  double v[] = {0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994, 1.0000000000000002, 3.7, -3.7, 4503599627370495.5,
    4503599627370496.0, 9007199254740991.0, 1e300, -1e-300, INFINITY, -INFINITY, NAN, 123.456, -7.5, 8.5, 2.0, 1e16 + 1};
  for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++) {
    double d = OPAQUEF(v[i]); float f = (float)d;
    printf("%.17g: floor=%.17g ceil=%.17g round=%.17g trunc=%.17g rint=%.17g nearby=%.17g frinta=%.17g frintx=%.17g lrint=%ld llround=%lld sqrt=%a | f: %a %a %a %a %a %a %a\n",
           d, floor(d), ceil(d), round(d), trunc(d), rint(d), nearbyint(d), frinta(d), frintx(d), isfinite(d) && fabs(d) < 1e18 ? lrint(d) : 0L, isfinite(d) && fabs(d) < 1e18 ? llround(d) : 0LL,
           sqrt(d), (double)floorf(f), (double)ceilf(f), (double)roundf(f), (double)truncf(f), (double)rintf(f), (double)frintnf(f), (double)sqrtf(f));
  }
  rng_seed(5); uint64_t h = FNV0;
  for (int i = 0; i < 20000; i++) {
    double d = bitsd(rng64()); if (i & 1) d = (double)(int64_t)rng64() / (double)(1 + (rng32() & 0xFFFF));
    h = mix(h, dbits(floor(d))); h = mix(h, dbits(ceil(d))); h = mix(h, dbits(round(d))); h = mix(h, dbits(trunc(d))); h = mix(h, dbits(rint(d))); h = mix(h, dbits(sqrt(d)));
    h = mix(h, dbits(fmod(d, 3.0))); h = mix(h, dbits(remainder(d, 7.5)));
    float f = (float)d; h = mix(h, fbits(floorf(f))); h = mix(h, fbits(roundf(f))); h = mix(h, fbits(sqrtf(f))); h = mix(h, fbits(fmodf(f, 0.7f)));
  }
  printf("hash=%016" PRIx64 "\n", h);
  return 0;
}
