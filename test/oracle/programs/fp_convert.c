#include "common.h"
#include <math.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#define CV(name, insn, rt, ft, rr, fr) static rt name(ft x) { rt r; __asm__(insn " %" rr "0, %" fr "1" : "=r"(r) : "w"(x)); return r; }
CV(zs64, "fcvtzs", int64_t, double, "x", "d") CV(zu64, "fcvtzu", uint64_t, double, "x", "d") CV(zs32, "fcvtzs", int32_t, double, "w", "d") CV(zu32, "fcvtzu", uint32_t, double, "w", "d")
CV(as64, "fcvtas", int64_t, double, "x", "d") CV(ns64, "fcvtns", int64_t, double, "x", "d") CV(ms64, "fcvtms", int64_t, double, "x", "d") CV(ps64, "fcvtps", int64_t, double, "x", "d")
CV(au32, "fcvtau", uint32_t, double, "w", "d") CV(nu64, "fcvtnu", uint64_t, double, "x", "d")
CV(fzs64, "fcvtzs", int64_t, float, "x", "s") CV(fzu32, "fcvtzu", uint32_t, float, "w", "s") CV(fns32, "fcvtns", int32_t, float, "w", "s")
static double fixcvt(int64_t x) { double r; __asm__("scvtf %d0, %1, #16" : "=w"(r) : "r"(x)); return r; }
static int64_t tofix(double x) { int64_t r; __asm__("fcvtzs %0, %d1, #8" : "=r"(r) : "w"(x)); return r; }
int main(void) {
  double v[] = {0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, 1e10, -1e10, 2147483647.0, 2147483647.5, 2147483648.0, -2147483648.0, -2147483649.0,
    4294967295.0, 4294967296.0, 9.2233720368547758e18, -9.2233720368547758e18, 1.8446744073709552e19, 1e20, -1e20, INFINITY, -INFINITY, NAN, 3.7, -3.7, 1e-300, 4503599627370497.5};
  for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++) {
    double d = OPAQUEF(v[i]); float f = (float)d;
    printf("%.17g: zs64=%" PRId64 " zu64=%" PRIu64 " zs32=%d zu32=%u as=%" PRId64 " ns=%" PRId64 " ms=%" PRId64 " ps=%" PRId64 " au32=%u nu64=%" PRIu64 " | f zs64=%" PRId64 " zu32=%u ns32=%d fix=%" PRId64 "\n",
           d, zs64(d), zu64(d), zs32(d), zu32(d), as64(d), ns64(d), ms64(d), ps64(d), au32(d), nu64(d), fzs64(f), fzu32(f), fns32(f), tofix(d));
  }
  int64_t iv[] = {0, 1, -1, INT64_MAX, INT64_MIN, (1ll << 53) + 1, (1ll << 24) + 1, -((1ll << 53) + 3), 0x7FFFFFFFFFFFFDFFll, 123456789012345678ll};
  for (unsigned i = 0; i < sizeof iv / sizeof iv[0]; i++) {
    int64_t x = OPAQUE(iv[i]);
    printf("%" PRId64 ": d=%a ud=%a f=%a uf=%a i32f=%a fix=%a\n", x, (double)x, (double)(uint64_t)x, (double)(float)x, (double)(float)(uint64_t)x, (double)(float)(int32_t)x, fixcvt(x));
  }
  /* double<->float rounding and half precision */
  rng_seed(99); uint64_t h = FNV0;
  for (int i = 0; i < 5000; i++) {
    uint64_t b = rng64(); double d = bitsd(b);
    if (isnan(d)) continue;
    float f = (float)OPAQUEF(d); __fp16 hf = (__fp16)OPAQUEF(f); double back = (double)f;
    uint16_t hb; memcpy(&hb, &hf, 2);
    h = mix(h, fbits(f)); h = mix(h, hb); h = mix(h, dbits(back)); h = mix(h, (uint64_t)zs64(d * 1e-290)); h = mix(h, (uint64_t)(int64_t)(float)(int64_t)(b >> (i & 63)));
    h = mix(h, dbits((double)(uint64_t)(b >> (i & 31))));
  }
  printf("hash=%016" PRIx64 "\n", h);
  __fp16 hv[] = {1.0, 65504.0, 6.1e-5, 5.96e-8, 0.1, -2.5};
  for (int i = 0; i < 6; i++) { uint16_t hb; memcpy(&hb, &hv[i], 2); printf("half %04x %a\n", hb, (double)hv[i]); }
  return 0;
}
