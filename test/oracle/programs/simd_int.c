#include "common.h"
#include <arm_neon.h>
#include <inttypes.h>
static void p8(const char *t, uint8x16_t v) { uint8_t b[16]; vst1q_u8(b, v); printf("%s", t); for (int i = 0; i < 16; i++) printf(" %02x", b[i]); printf("\n"); }
static uint64_t hv(uint64_t h, uint8x16_t v) { uint8_t b[16]; vst1q_u8(b, v); return fnv(h, b, 16); }
int main(void) {
  uint8_t in[64]; for (int i = 0; i < 64; i++) in[i] = (uint8_t)(i * 29 + 250);
  uint8x16_t a = vld1q_u8(in), b = vld1q_u8(in + 16), c = vld1q_u8(in + 32);
  p8("add", vaddq_u8(a, b)); p8("qadd_u", vqaddq_u8(a, b)); p8("qadd_s", vreinterpretq_u8_s8(vqaddq_s8(vreinterpretq_s8_u8(a), vreinterpretq_s8_u8(b))));
  p8("qsub_u", vqsubq_u8(a, b)); p8("hadd", vhaddq_u8(a, b)); p8("rhadd", vrhaddq_u8(a, b)); p8("abd", vabdq_u8(a, b));
  p8("max", vmaxq_u8(a, b)); p8("min_s", vreinterpretq_u8_s8(vminq_s8(vreinterpretq_s8_u8(a), vreinterpretq_s8_u8(b))));
  p8("cnt", vcntq_u8(a)); p8("clz", vclzq_u8(a)); p8("rbit", vrbitq_u8(a)); p8("rev64", vrev64q_u8(a)); p8("rev16", vrev16q_u8(a));
  p8("zip1", vzip1q_u8(a, b)); p8("uzp2", vuzp2q_u8(a, b)); p8("trn1", vtrn1q_u8(a, b)); p8("ext5", vextq_u8(a, b, 5));
  p8("tbl", vqtbl1q_u8(a, vandq_u8(c, vdupq_n_u8(0x1F)))); p8("tbx", vqtbx1q_u8(b, a, c));
  p8("cmgt", vreinterpretq_u8_s8(vreinterpretq_s8_u8(vcgtq_s8(vreinterpretq_s8_u8(a), vreinterpretq_s8_u8(b))))); p8("cmhi", vcgtq_u8(a, b)); p8("tst", vtstq_u8(a, b));
  p8("bsl", vbslq_u8(c, a, b)); p8("shl3", vshlq_n_u8(a, 3)); p8("sshr", vreinterpretq_u8_s8(vshrq_n_s8(vreinterpretq_s8_u8(a), 2))); p8("ushl-var", vshlq_u8(a, vreinterpretq_s8_u8(vandq_u8(c, vdupq_n_u8(0x8F)))));
  p8("sri", vsriq_n_u8(a, b, 3)); p8("sli", vsliq_n_u8(a, b, 5)); p8("rshr", vrshrq_n_u8(a, 3)); p8("qshl", vqshlq_n_u8(a, 2)); p8("mul", vmulq_u8(a, b)); p8("pmul", vreinterpretq_u8_p8(vmulq_p8(vreinterpretq_p8_u8(a), vreinterpretq_p8_u8(b))));
  uint16x8_t w = vmull_u8(vget_low_u8(a), vget_low_u8(b)); p8("umull", vreinterpretq_u8_u16(w)); p8("umlal2", vreinterpretq_u8_u16(vmlal_high_u8(w, a, b)));
  int16x8_t s16 = vreinterpretq_s16_u8(a); p8("sqdmulh", vreinterpretq_u8_s16(vqdmulhq_s16(s16, vreinterpretq_s16_u8(b)))); p8("sqrdmulh", vreinterpretq_u8_s16(vqrdmulhq_s16(s16, vreinterpretq_s16_u8(b))));
  p8("xtn", vcombine_u8(vmovn_u16(vreinterpretq_u16_u8(a)), vqmovn_u16(vreinterpretq_u16_u8(b)))); p8("sqxtun", vcombine_u8(vqmovun_s16(s16), vqmovun_s16(vreinterpretq_s16_u8(c))));
  p8("addp", vpaddq_u8(a, b)); p8("uaddlp", vreinterpretq_u8_u16(vpaddlq_u8(a)));
  printf("addv=%u maxv=%u minv_s=%d uaddlv=%u saddlv32=%" PRId64 "\n", vaddvq_u8(a), vmaxvq_u8(a), vminvq_s8(vreinterpretq_s8_u8(a)), vaddlvq_u8(a), vaddlvq_s32(vreinterpretq_s32_u8(b)));
  int32x4_t s32 = vreinterpretq_s32_u8(c); p8("abs", vreinterpretq_u8_s32(vabsq_s32(s32))); p8("qneg", vreinterpretq_u8_s32(vqnegq_s32(s32))); p8("mla32", vreinterpretq_u8_s32(vmlaq_s32(s32, s32, vreinterpretq_s32_u8(a))));
  p8("dup", vdupq_laneq_u8(a, 7)); p8("ins", vreinterpretq_u8_u32(vsetq_lane_u32(0xDEADBEEF, vreinterpretq_u32_u8(a), 2)));
  uint8x16x3_t ld3 = vld3q_u8(in); p8("ld3.0", ld3.val[0]); p8("ld3.2", ld3.val[2]); uint8_t out[64]; uint8x16x4_t q4 = {{a, b, c, a}}; vst4q_u8(out, q4); printf("st4 %016" PRIx64 "\n", fnv(FNV0, out, 64));
  /* auto-vectorisable loops */
  static int32_t x[4096], y[4096]; static uint8_t bytes[8192]; rng_seed(66);
  for (int i = 0; i < 4096; i++) { x[i] = (int32_t)rng32() >> 8; y[i] = (int32_t)rng32() >> 12; } for (int i = 0; i < 8192; i++) bytes[i] = (uint8_t)rng32();
  int64_t dot = 0; for (int i = 0; i < 4096; i++) dot += (int64_t)x[i] * y[i];
  int32_t mx = INT32_MIN; for (int i = 0; i < 4096; i++) mx = x[i] > mx ? x[i] : mx;
  uint32_t bs = 0; for (int i = 0; i < 8192; i++) bs += bytes[i]; for (int i = 0; i < 4096; i++) x[i] = (x[i] * 3 + y[i]) >> 2;
  uint64_t h = FNV0; h = fnv(h, x, sizeof x); for (int i = 0; i < 8192; i += 16) h = hv(h, vqsubq_u8(vld1q_u8(bytes + i), a));
  printf("dot=%" PRId64 " max=%d bytesum=%u hash=%016" PRIx64 "\n", dot, mx, bs, h);
  return 0;
}
