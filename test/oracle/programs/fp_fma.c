#include "common.h"
#include <math.h>
#include <inttypes.h>
static double fnmadd(double a, double b, double c) { double r; __asm__("fnmadd %d0,%d1,%d2,%d3" : "=w"(r) : "w"(a), "w"(b), "w"(c)); return r; }
static double fmsub(double a, double b, double c) { double r; __asm__("fmsub %d0,%d1,%d2,%d3" : "=w"(r) : "w"(a), "w"(b), "w"(c)); return r; }
static double fnmsub(double a, double b, double c) { double r; __asm__("fnmsub %d0,%d1,%d2,%d3" : "=w"(r) : "w"(a), "w"(b), "w"(c)); return r; }
static double fnmul(double a, double b) { double r; __asm__("fnmul %d0,%d1,%d2" : "=w"(r) : "w"(a), "w"(b)); return r; }
static float fmsubf(float a, float b, float c) { float r; __asm__("fmsub %s0,%s1,%s2,%s3" : "=w"(r) : "w"(a), "w"(b), "w"(c)); return r; }
int main(void) {
  double a = OPAQUEF(1.0 + 0x1p-52), b = OPAQUEF(1.0 - 0x1p-53);
  printf("exact error %a %a\n", fma(a, b, -(a * b)), a * b);
  printf("fma 0*inf+nan %a; inf*0+1 %a; -0 cases %a %a\n", fma(0.0, INFINITY, NAN), fma(INFINITY, 0.0, 1.0), fma(-0.0, 1.0, 0.0), fma(-0.0, 1.0, -0.0));
  printf("overflow %a underflow %a\n", fma(0x1p1023, 2.0, -0x1p1023), fma(0x1p-1000, 0x1p-100, 0x1p-1074));
  rng_seed(11); uint64_t h = FNV0;
  for (int i = 0; i < 20000; i++) {
    double x = bitsd(rng64() & 0xBFFFFFFFFFFFFFFFull), y = bitsd(rng64() & 0xBFFFFFFFFFFFFFFFull), z = bitsd(rng64() & 0xBFFFFFFFFFFFFFFFull);
    if (i & 1) { x = (double)(int32_t)rng32() / 7.0; y = (double)(int32_t)rng32() * 1e-3; z = -x * y; }
    h = mix(h, dbits(fma(x, y, z))); h = mix(h, dbits(fnmadd(x, y, z))); h = mix(h, dbits(fmsub(x, y, z))); h = mix(h, dbits(fnmsub(x, y, z))); h = mix(h, dbits(fnmul(x, y)));
    float fx = (float)x, fy = (float)y, fz = (float)z;
    h = mix(h, fbits(fmaf(fx, fy, fz))); h = mix(h, fbits(fmsubf(fx, fy, fz)));
    if (i < 10) printf("%a %a %a -> %a %a %a\n", x, y, z, fma(x, y, z), fnmsub(x, y, z), (double)fmaf(fx, fy, fz));
  }
  printf("hash=%016" PRIx64 "\n", h);
  return 0;
}
