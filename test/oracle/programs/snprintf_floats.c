#include "common.h"
#include <math.h>
#include <float.h>
#include <inttypes.h>
int main(void) {
  double vals[] = {0.0, -0.0, 1.0, -1.5, 0.1, 123.456, 1e-5, 1e21, 123456789.0, 0.000999999, 9.9999999, 99.5, 0.05, 1.0 / 7, DBL_MAX, DBL_MIN, 5e-324, INFINITY, -INFINITY, NAN, 1e100, 0.5e-6};
  const char *fmts[] = {"%f", "%.0f", "%.1f", "%.15f", "%10.3f", "%-10.2f|", "%+f", "% f", "%010.2f", "%e", "%.0e", "%.10e", "%E", "%g", "%.0g", "%.1g", "%.15g", "%#g", "%G", "%a", "%.3a", "%A", "%#.0f", "%#.0e", "%12.4g|", "%-+12.3e|"};
  char buf[512];
  for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    printf("%a:", vals[i]);
    for (unsigned f = 0; f < sizeof fmts / sizeof fmts[0]; f++) { int n = snprintf(buf, sizeof buf, fmts[f], vals[i]); printf(" %s(%d)", n < 60 ? buf : "long", n); }
    printf("\n");
  }
  printf("%Lf %Le %Lg %La\n", 1.0L / 3, 2.0L / 3, 1e4000L, 0.1L);
  printf("%.60f\n%.30e\n%.99g\n", 0.1, 1.0 / 3, 2.0 / 3);
  printf("%f\n%.0f\n", 1e300, DBL_MAX);
  uint64_t h = FNV0; rng_seed(77);
  for (int i = 0; i < 2000; i++) {
    double d = bitsd(rng64()); if (i & 1) d = (double)(int32_t)rng32() / (double)(1 + (rng32() & 0xFFF));
    int n = snprintf(buf, sizeof buf, "%.3f|%.8e|%g|%a|%.12g", fabs(d) < 1e30 ? d : 1.0, d, d, d, d); h = fnv(h, buf, (size_t)n);
    float f = (float)d; n = snprintf(buf, sizeof buf, "%f %e", (double)f, (double)f); h = fnv(h, buf, (size_t)n);
  }
  printf("hash=%016" PRIx64 "\n", h);
  return 0;
}
