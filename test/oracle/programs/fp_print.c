#include "common.h"
#include <math.h>
#include <float.h>
static const double v[] = {0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 1.0/3, 2.0/3, 1e-300, 1e300, 123456789.123456789, 5e-324, 2.2250738585072014e-308,
  2.2250738585072009e-308, DBL_MAX, DBL_EPSILON, 0.5, 1.5, 2.5, 9.999999999999999e22, 1e23, 1e22, 4.35, 0.045, 1234.5, 1e-7, 123e18, 3.14159265358979323846,
  2.718281828459045, 299792458.0, 6.02214076e23, 1.602176634e-19, 9007199254740993.0, 9007199254740992.0, 0.000123, 1e15, 1e16, 1e17, 65504.0, 3.4028234663852886e38};
int main(void) {
  for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++) {
    double d = OPAQUEF(v[i]);
    float f = (float)d;
    printf("%.17g|%a|%e|%.3e|%.0e|%g|%.10g|%f|%.2f|%.0f|%#.0f|%G|%E\n", d, d, d, d, d, d, d, d, d, d, d, d, d);
    printf("  f: %.9g|%a|%.20e\n", (double)f, (double)f, (double)f);
    if (fabs(d) < 1e20) printf("  %.40f\n", d);
  }
  /* halfway-rounding cases in printf */
  for (int i = 0; i < 40; i++) { double d = i + 0.5; printf("%.0f %.1f %.2f ", d, d / 10, d / 100); }
  printf("\n");
  for (int e = -330; e <= 310; e += 7) printf("%.17g %a\n", pow(10.0, e) * 1.2345, ldexp(1.0, e));
  return 0;
}
