#include "common.h"
#include <arm_neon.h>
#include <math.h>
#include <inttypes.h>
static void pf(const char *t, float32x4_t v) { float f[4]; vst1q_f32(f, v); printf("%s", t); for (int i = 0; i < 4; i++) printf(" %08x", fbits(f[i])); printf("\n"); }
static void pd(const char *t, float64x2_t v) { double d[2]; vst1q_f64(d, v); printf("%s %016" PRIx64 " %016" PRIx64 "\n", t, dbits(d[0]), dbits(d[1])); }
static void pi(const char *t, int32x4_t v) { int32_t d[4]; vst1q_s32(d, v); printf("%s %d %d %d %d\n", t, d[0], d[1], d[2], d[3]); }
int main(void) {
  float fa[] = {1.5f, -2.25f, 3e38f, 1e-40f, 0.1f, -0.0f, INFINITY, 2.5f}, fb[] = {0.5f, 4.0f, 10.0f, 1e-3f, NAN, 0.0f, -INFINITY, -1.5f};
  float32x4_t a = vld1q_f32(fa), b = vld1q_f32(fb), a2 = vld1q_f32(fa + 4), b2 = vld1q_f32(fb + 4);
  pf("add", vaddq_f32(a, b)); pf("mul", vmulq_f32(a, b)); pf("div", vdivq_f32(a, b)); pf("sub2", vsubq_f32(a2, b2)); pf("fma", vfmaq_f32(a, b, a2)); pf("fms", vfmsq_f32(a2, b, a));
  pf("max", vmaxq_f32(a2, b2)); pf("maxnm", vmaxnmq_f32(a2, b2)); pf("min", vminq_f32(a, b)); pf("abs", vabsq_f32(a2)); pf("neg", vnegq_f32(b2)); pf("sqrt", vsqrtq_f32(a));
  pf("recpe", vrecpeq_f32(a)); pf("rsqrte", vrsqrteq_f32(a)); pf("recps", vrecpsq_f32(a, b)); pf("rsqrts", vrsqrtsq_f32(a, b));
  pf("rndn", vrndnq_f32(vmulq_n_f32(a, 3.3f))); pf("rndm", vrndmq_f32(b)); pf("rndp", vrndpq_f32(vmulq_n_f32(a, 0.7f))); pf("rnda", vrndaq_f32(vld1q_f32((float[]){0.5f, -0.5f, 1.5f, -2.5f})));
  pi("cvtz", vcvtq_s32_f32(a)); pi("cvtn", vcvtnq_s32_f32(vmulq_n_f32(a2, 1e9f))); pi("cvtu", vreinterpretq_s32_u32(vcvtq_u32_f32(b))); pf("scvtf", vcvtq_f32_s32(vld1q_s32((int32_t[]){-1, 16777217, INT32_MIN, 7})));
  pf("fixed", vcvtq_n_f32_s32(vld1q_s32((int32_t[]){256, -1024, 3, 65536}), 8)); pi("tofixed", vcvtq_n_s32_f32(a, 4));
  pi("cmeq", vreinterpretq_s32_u32(vceqq_f32(a2, b2))); pi("cmge", vreinterpretq_s32_u32(vcgeq_f32(a, b))); pi("cmlt0", vreinterpretq_s32_u32(vcltzq_f32(b2))); pi("facgt", vreinterpretq_s32_u32(vcagtq_f32(a, b)));
  pf("padd", vpaddq_f32(a, b)); printf("maxv %08x minnmv %08x addv %08x\n", fbits(vmaxvq_f32(a)), fbits(vminnmvq_f32(b2)), fbits(vaddvq_f32(a)));
  float64x2_t d1 = vld1q_f64((double[]){1.0 / 3, -1e308}), d2 = vld1q_f64((double[]){3.0, 10.0});
  pd("dmul", vmulq_f64(d1, d2)); pd("dfma", vfmaq_f64(d1, d1, d2)); pd("ddiv", vdivq_f64(d1, d2)); pd("dsqrt", vsqrtq_f64(d2)); pd("cvtl", vcvt_f64_f32(vget_low_f32(a))); pf("cvtn", vcombine_f32(vcvt_f32_f64(d1), vcvt_f32_f64(d2)));
  pf("cvtxn", vcombine_f32(vcvtx_f32_f64(vld1q_f64((double[]){1.0000000596046448, -3.0000001192092896})), vget_low_f32(b)));
  /* auto-vectorised float loops */
  static float x[4096], y[4096]; static double z[2048]; rng_seed(88);
  for (int i = 0; i < 4096; i++) { x[i] = (float)(int32_t)rng32() / 65536.0f; y[i] = (float)(rng32() & 0xFFFF) / 1024.0f; }
  for (int i = 0; i < 2048; i++) z[i] = (double)(int32_t)rng32() / 3.0;
  float s = 0; for (int i = 0; i < 4096; i++) s += x[i] * y[i];
  for (int i = 0; i < 4096; i++) x[i] = x[i] * 0.75f + y[i] / 3.0f;
  double dz = 0; for (int i = 0; i < 2048; i++) dz += z[i] * z[i];
  printf("dot=%a sumsq=%a hash=%016" PRIx64 "\n", (double)s, dz, fnv(FNV0, x, sizeof x));
  return 0;
}
