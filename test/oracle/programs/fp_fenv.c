#include "common.h"
#include <fenv.h>
#include <math.h>
#include <float.h>
#include <stdlib.h>
static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
static const char *mname[] = {"nearest", "upward", "downward", "towardzero"};
static void flags(const char *what) {
  int f = fetestexcept(FE_ALL_EXCEPT);
  printf("  %-12s %s%s%s%s%s\n", what, f & FE_INVALID ? "I" : "-", f & FE_DIVBYZERO ? "Z" : "-", f & FE_OVERFLOW ? "O" : "-", f & FE_UNDERFLOW ? "U" : "-", f & FE_INEXACT ? "X" : "-");
  feclearexcept(FE_ALL_EXCEPT);
}
int main(void) {
  volatile double one = 1.0, three = 3.0, zero = 0.0, big = DBL_MAX, tiny = DBL_MIN, m1 = -1.0;
  volatile float fone = 1.0f, fthree = 3.0f;
  for (int m = 0; m < 4; m++) {
    fesetround(modes[m]);
    printf("%s: getround ok=%d\n", mname[m], fegetround() == modes[m]);
    volatile double r = one / three; printf("  1/3=%a -1/3=%a f=%a\n", r, -one / three, (double)(fone / fthree));
    printf("  rint(2.5)=%g rint(-2.5)=%g nearbyint(0.5)=%g lrint(-1.5)=%ld sqrt2=%a\n", rint(2.5 * one), rint(-2.5 * one), nearbyint(0.5 * one), lrint(-1.5 * one), sqrt(2.0 * one));
    printf("  big*2=%a tiny/3=%a 1+eps/2=%a (float)0.1=%a d2f=%a\n", big * 2.0, tiny / three, one + DBL_EPSILON / 2 * one, (double)(float)(0.1 * one), (double)(float)(one / three));
    printf("  int->float %a %a fma=%a\n", (double)(float)(16777217 + (int)zero), (double)(float)(-16777219 + (int)zero), fma(one / three, three, -one));
    printf("  printf %.2f %.0f strtod %a\n", 2.675 * one, 0.5 * one, strtod("0.1", NULL));
    feclearexcept(FE_ALL_EXCEPT);
  }
  fesetround(FE_TONEAREST);
  feclearexcept(FE_ALL_EXCEPT); flags("none");
  volatile double x;
  x = one / zero; flags("1/0");
  x = zero / zero; flags("0/0");
  x = big * big; flags("max*max");
  x = tiny * tiny; flags("min*min");
  x = one / three; flags("1/3");
  x = one + one; flags("1+1");
  x = sqrt(m1); flags("sqrt(-1)");
  volatile int iv = (int)(3.5 * one); flags("(int)3.5");
  x = tiny / 2.0; flags("min/2");
  x = log(zero); flags("log(0)");
  x = exp(1000.0 * one); flags("exp(1000)");
  (void)x; (void)iv;
  feraiseexcept(FE_OVERFLOW | FE_INEXACT); flags("raise O|X");
  fexcept_t fx; feraiseexcept(FE_DIVBYZERO); fegetexceptflag(&fx, FE_ALL_EXCEPT); feclearexcept(FE_ALL_EXCEPT); fesetexceptflag(&fx, FE_ALL_EXCEPT); flags("restored Z");
  fenv_t env; fesetround(FE_UPWARD); fegetenv(&env); fesetround(FE_TONEAREST); fesetenv(&env); printf("env round upward=%d\n", fegetround() == FE_UPWARD);
  fesetround(FE_TONEAREST);
  return 0;
}
