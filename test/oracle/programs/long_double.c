#include "common.h"
#include <math.h>
#include <stdlib.h>
#include <inttypes.h>
/* long double is IEEE binary128 on AArch64 Linux, implemented in software (libgcc soft-fp): heavy integer work. */
int main(void) {
  long double a = 1.0L / 3, b = 2.0L / 7, c = 1e4000L, d = 1e-4000L;
  printf("%.36Lg %.36Lg\n%.36Lg\n%La %La\n", a, b, a * b + a / b, a, c);
  printf("%Lg %Lg %Lg %Lg\n", c * c, d * d, c * d, -c / d);
  printf("sqrtl(2)=%.36Lg\n", sqrtl(2.0L));
  long double s = 0; for (int i = 1; i <= 2000; i++) s += 1.0L / ((long double)i * i); printf("zeta2~%.36Lg\n", s);
  long double f = 1; for (int i = 1; i <= 60; i++) f *= i; printf("60!=%.36Lg\n", f);
  printf("conv %lld %llu %.20g %Lg\n", (long long)(a * 1e18L), (unsigned long long)(c > 0 ? 1.8e19L : 0), (double)b, (long double)(int64_t)-9007199254740993ll);
  printf("strtold %.36Lg %La\n", strtold("3.14159265358979323846264338327950288419716939937510", NULL), strtold("0x1.123456789abcdef0123456789abcp+100", NULL));
  printf("cmp %d %d %d\n", a < b, a > b, a == a);
  printf("floorl %Lg ceill %Lg fmodl %.30Lg\n", floorl(-2.5L), ceill(2.0000000000000000000000000001L), fmodl(1e30L, 7.0L));
  long double x = 0.5L; for (int i = 0; i < 50; i++) x = 3.7L * x * (1 - x); printf("logistic %.30Lg\n", x);
  return 0;
}
