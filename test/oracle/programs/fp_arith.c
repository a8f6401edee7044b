#include "common.h"
#include <math.h>
#include <float.h>
#include <inttypes.h>
static double fabd_(double a, double b) { double r; __asm__("fabd %d0,%d1,%d2" : "=w"(r) : "w"(a), "w"(b)); return r; }
int main(void) {
  rng_seed(12345); uint64_t h = FNV0, hf = FNV0;
  double acc = 0; float facc = 0;
  for (int i = 0; i < 30000; i++) {
    double a = bitsd(rng64()), b = bitsd(rng64());
    if (i & 1) { a = (double)(int64_t)rng64() * 1e-12; b = (double)(int32_t)rng32() / 3.0; }
    h = mix(h, dbits(a + b)); h = mix(h, dbits(a - b)); h = mix(h, dbits(a * b)); h = mix(h, dbits(a / b)); h = mix(h, dbits(fabd_(a, b)));
    h = mix(h, (uint64_t)((a < b) | (a == b) << 1 | (a > b) << 2));
    float fa = bitsf(rng32()), fb = bitsf(rng32());
    if (i & 2) { fa = (float)(int32_t)rng32() / 17.0f; fb = (float)(rng32() & 0xFFFFF) * 0.001f; }
    hf = mix(hf, fbits(fa + fb)); hf = mix(hf, fbits(fa - fb)); hf = mix(hf, fbits(fa * fb)); hf = mix(hf, fbits(fa / fb)); hf = mix(hf, fbits(-fa)); hf = mix(hf, fbits(fabsf(fb)));
    if (isfinite(a * b)) acc += a * b * 1e-10;
    if (isfinite(fa)) facc = facc * 0.5f + fa;
  }
  printf("double hash=%016" PRIx64 " float hash=%016" PRIx64 " acc=%a facc=%a\n", h, hf, acc, (double)facc);
  /* sums in fixed order: Kahan vs naive, harmonic series, dot products */
  double s = 0, c = 0, naive = 0; for (int i = 1; i <= 200000; i++) { double y = 1.0 / i - c; double t = s + y; c = (t - s) - y; s = t; naive += 1.0 / i; }
  printf("harmonic kahan=%.17g naive=%.17g\n", s, naive);
  float fs = 0; for (int i = 1; i <= 100000; i++) fs += 1.0f / (float)i; printf("float harmonic=%.9g\n", (double)fs);
  double pi = 0; for (int k = 0; k < 100000; k++) pi += (k & 1 ? -4.0 : 4.0) / (2 * k + 1); printf("leibniz=%.17g\n", pi);
  return 0;
}
