#include "common.h"
#include <inttypes.h>
#include <limits.h>
static const int64_t v[] = {0, 1, -1, 2, INT64_MAX, INT64_MIN, INT32_MAX, INT32_MIN, 0xFFFFFFFFll, 0x80000000ll, -0x80000001ll};
/* Each comparison compiled as CMP + CSET/CSEL; also CCMP chains and CSINC/CSINV/CSNEG via asm */
int main(void) {
  unsigned n = sizeof v / sizeof v[0];
  for (unsigned i = 0; i < n; i++) for (unsigned j = 0; j < n; j++) {
    int64_t a = OPAQUE(v[i]), b = OPAQUE(v[j]); uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    int32_t a32 = (int32_t)a, b32 = (int32_t)b; uint32_t ua32 = (uint32_t)a, ub32 = (uint32_t)b;
    unsigned m = (a < b) | (a <= b) << 1 | (a > b) << 2 | (a >= b) << 3 | (a == b) << 4 | (a != b) << 5 |
      (ua < ub) << 6 | (ua <= ub) << 7 | (ua > ub) << 8 | (ua >= ub) << 9 |
      (a32 < b32) << 10 | (a32 > b32) << 11 | (ua32 < ub32) << 12 | (ua32 > ub32) << 13 | ((a < 0 && b > 0) || a == b) << 14 | (a > 5 && b < -5) << 15;
    uint64_t r1, r2, r3, nzcv, nzcv2;
    __asm__("cmp %3, %4\n\tcsinc %0, %3, %4, lt\n\tcsinv %1, %3, %4, hi\n\tcsneg %2, %3, %4, vs" : "=&r"(r1), "=&r"(r2), "=&r"(r3) : "r"(a), "r"(b) : "cc");
    __asm__("adds xzr, %1, %2\n\tmrs %0, nzcv" : "=r"(nzcv) : "r"(a), "r"(b) : "cc");
    __asm__("subs wzr, %w1, %w2\n\tccmp %1, %2, #5, ge\n\tmrs %0, nzcv" : "=r"(nzcv2) : "r"(a), "r"(b) : "cc");
    uint64_t adc; __asm__("adds xzr, %1, %1\n\tadcs %0, %1, %2\n\t" : "=r"(adc) : "r"(a), "r"(b) : "cc");
    uint64_t sbc; __asm__("subs xzr, %1, %2\n\tsbc %0, %2, %1" : "=r"(sbc) : "r"(a), "r"(b) : "cc");
    printf("%" PRId64 ",%" PRId64 " m=%04x %" PRIx64 " %" PRIx64 " %" PRIx64 " nzcv=%x %x adc=%" PRIx64 " sbc=%" PRIx64 " min=%" PRId64 " umax=%" PRIu64 "\n",
           a, b, m, r1, r2, r3, (unsigned)(nzcv >> 28), (unsigned)(nzcv2 >> 28), adc, sbc, a < b ? a : b, ua > ub ? ua : ub);
  }
  return 0;
}
