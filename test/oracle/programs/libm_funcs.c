#include "common.h"
#include <math.h>
#include <inttypes.h>
int main(void) {
  double xs[] = {0.0, -0.0, 1e-310, 1e-20, 0.1, 0.5, 0.7853981633974483, 1.0, 1.5707963267948966, 2.0, 3.141592653589793, 10.0, 100.0, 709.78, 710.0, -745.2, 1e10, 1e22, -2.5, -1.0, INFINITY, -INFINITY, NAN};
  for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; i++) {
    double x = OPAQUEF(xs[i]);
    printf("x=%a\n exp=%a log=%a log2=%a log10=%a log1p=%a expm1=%a\n sin=%a cos=%a tan=%a asin=%a acos=%a atan=%a\n sinh=%a cosh=%a tanh=%a asinh=%a cbrt=%a erf=%a erfc=%a lgamma=%a tgamma=%a\n",
           x, exp(x), log(x), log2(x), log10(x), log1p(x), expm1(x), sin(x), cos(x), tan(x), asin(x), acos(x), atan(x), sinh(x), cosh(x), tanh(x), asinh(x), cbrt(x), erf(x), erfc(x), lgamma(x), tgamma(x));
    printf(" f: exp=%a log=%a sin=%a cos=%a pow=%a\n", (double)expf((float)x), (double)logf((float)x), (double)sinf((float)x), (double)cosf((float)x), (double)powf((float)x, 1.5f));
  }
  double ys[] = {0.0, -0.0, 0.5, -0.5, 1.0, 2.0, -3.0, 1e300, INFINITY, NAN, 0.3333333333333333};
  for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; i += 2) for (unsigned j = 0; j < sizeof ys / sizeof ys[0]; j++) {
    double x = xs[i], y = ys[j];
    printf("pow(%a,%a)=%a atan2=%a hypot=%a fmod=%a\n", x, y, pow(x, y), atan2(x, y), hypot(x, y), fmod(x, y));
  }
  rng_seed(17); uint64_t h = FNV0;
  for (int i = 0; i < 3000; i++) {
    double x = (double)(int32_t)rng32() / 1e6, y = (double)(rng32() & 0xFFFF) / 1e3;
    h = mix(h, dbits(exp(x / 1000))); h = mix(h, dbits(log(fabs(x)))); h = mix(h, dbits(sin(x))); h = mix(h, dbits(cos(x))); h = mix(h, dbits(pow(fabs(x), y / 100)));
    h = mix(h, dbits(atan2(x, y))); h = mix(h, dbits(tan(x))); h = mix(h, fbits(sinf((float)x))); h = mix(h, fbits(expf((float)y / 10)));
  }
  printf("hash=%016" PRIx64 "\n", h);
  return 0;
}
