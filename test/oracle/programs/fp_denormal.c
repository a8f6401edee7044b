#include "common.h"
#include <math.h>
#include <float.h>
#include <inttypes.h>
int main(void) {
  double d = OPAQUEF(DBL_MIN); float f = OPAQUEF(FLT_MIN);
  for (int i = 0; i < 60; i++) {
    printf("%d %a %.17g %a %.9g %d %d\n", i, d, d, (double)f, (double)f, fpclassify(d) == FP_SUBNORMAL, fpclassify(f) == FP_SUBNORMAL);
    d = d / 2.0 + d / 1024.0; f = f * 0.5f - f / 4096.0f;
  }
  uint64_t h = FNV0; rng_seed(3);
  for (int i = 0; i < 20000; i++) {
    double a = bitsd(rng64() & 0x801FFFFFFFFFFFFFull), b = bitsd(rng64() & 0x803FFFFFFFFFFFFFull), c = bitsd((rng64() & 0x800FFFFFFFFFFFFFull) | 0x3C00000000000000ull);
    h = mix(h, dbits(a + b)); h = mix(h, dbits(a - b)); h = mix(h, dbits(a * c)); h = mix(h, dbits(b / (c + 1e300)));
    h = mix(h, dbits(a * 1e300)); h = mix(h, dbits(sqrt(fabs(a)))); h = mix(h, dbits(fma(a, c, b)));
    float fa = bitsf(rng32() & 0x80FFFFFFu), fb = bitsf(rng32() & 0x817FFFFFu);
    h = mix(h, fbits(fa + fb)); h = mix(h, fbits(fa * 3.5f)); h = mix(h, fbits(fa / 3.0f)); h = mix(h, fbits((float)a)); h = mix(h, fbits(sqrtf(fabsf(fb))));
  }
  printf("hash=%016" PRIx64 "\n", h);
  printf("nextafter %a %a %a %a\n", nextafter(0.0, 1.0), nextafter(DBL_MIN, 0.0), nextafterf(0.0f, -1.0f), nexttoward(1.0, 2.0L));
  printf("ldexp %a %a %a frexp ", ldexp(1.0, -1074), ldexp(1.0, -1075), ldexp(3.0, -1075));
  int e; double m = frexp(5e-320, &e); printf("%a %d ilogb=%d logb=%g\n", m, e, ilogb(5e-320), logb(5e-320));
  return 0;
}
