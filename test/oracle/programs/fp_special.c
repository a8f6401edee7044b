#include "common.h"
#include <math.h>
#include <float.h>
#include <inttypes.h>
static double fminnm_(double a, double b) { double r; __asm__("fminnm %d0,%d1,%d2" : "=w"(r) : "w"(a), "w"(b)); return r; }
static double fmaxnm_(double a, double b) { double r; __asm__("fmaxnm %d0,%d1,%d2" : "=w"(r) : "w"(a), "w"(b)); return r; }
static double fmin_(double a, double b) { double r; __asm__("fmin %d0,%d1,%d2" : "=w"(r) : "w"(a), "w"(b)); return r; }
static double fmax_(double a, double b) { double r; __asm__("fmax %d0,%d1,%d2" : "=w"(r) : "w"(a), "w"(b)); return r; }
static float fadds(float a, float b) { float r; __asm__("fadd %s0,%s1,%s2" : "=w"(r) : "w"(a), "w"(b)); return r; }
int main(void) {
  double qnan = bitsd(0x7FF8000000000001ull), snan = bitsd(0x7FF0000000000005ull), nnan = bitsd(0xFFF8000000000123ull);
  double inf = OPAQUEF(INFINITY), z = OPAQUEF(0.0), nz = OPAQUEF(-0.0);
  double vals[] = {qnan, snan, nnan, inf, -inf, z, nz, 1.0, -1.0, DBL_MIN, -DBL_MAX, 5e-324};
  unsigned n = sizeof vals / sizeof vals[0];
  for (unsigned i = 0; i < n; i++) for (unsigned j = 0; j < n; j++) {
    double a = OPAQUEF(vals[i]), b = OPAQUEF(vals[j]);
    printf("%016" PRIx64 " %016" PRIx64 ": + %016" PRIx64 " - %016" PRIx64 " * %016" PRIx64 " / %016" PRIx64 " minnm %016" PRIx64 " maxnm %016" PRIx64 " min %016" PRIx64 " max %016" PRIx64 " cmp %d%d%d%d%d%d\n",
           dbits(a), dbits(b), dbits(a + b), dbits(a - b), dbits(a * b), dbits(a / b), dbits(fminnm_(a, b)), dbits(fmaxnm_(a, b)),
           dbits(fmin_(a, b)), dbits(fmax_(a, b)), a < b, a <= b, a == b, a != b, a > b, isunordered(a, b));
  }
  printf("copysign %g %g %g\n", copysign(1.0, nz), copysign(inf, -1.0), copysign(0.0, qnan));
  printf("classify:");
  for (unsigned i = 0; i < n; i++) printf(" %d/%d/%d/%d/%d", fpclassify(vals[i]), isnan(vals[i]) != 0, isinf(vals[i]), signbit(vals[i]) != 0, isnormal(vals[i]));
  printf("\n");
  printf("%f %f %f %F %e %g %a\n", qnan, -qnan, inf, -inf, nz, nz, nz);
  printf("sqrt(-1) %016" PRIx64 " 0*inf %016" PRIx64 " inf-inf %016" PRIx64 " fabs(nnan) %016" PRIx64 " -nnan %016" PRIx64 "\n", dbits(sqrt(OPAQUEF(-1.0))), dbits(z * inf), dbits(inf - inf), dbits(fabs(nnan)), dbits(-nnan));
  float fs = bitsf(0x7F800001u), fq = bitsf(0xFFC00042u);
  printf("float nan: %08x %08x %08x\n", fbits(fadds(fs, 1.0f)), fbits(fadds(1.0f, fq)), fbits(fadds(fs, fq)));
  printf("double->float nan: %08x %08x  float->double: %016" PRIx64 "\n", fbits((float)OPAQUEF(nnan)), fbits((float)OPAQUEF(snan)), dbits((double)OPAQUEF(fq)));
  return 0;
}
