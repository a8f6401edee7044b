#include "common.h"
#include <inttypes.h>
#include <limits.h>
static const int64_t v64[] = {0, 1, -1, 2, -2, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1, 0x100000000ll, -0x100000000ll, 3037000499ll, 3037000500ll, INT32_MAX, INT32_MIN};
static const int32_t v32[] = {0, 1, -1, 2, -2, INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1, 46340, 46341, 65536, -65536};
int main(void) {
  uint64_t h = FNV0;
  unsigned n64 = sizeof v64 / sizeof v64[0], n32 = sizeof v32 / sizeof v32[0];
  for (unsigned i = 0; i < n64; i++) for (unsigned j = 0; j < n64; j++) {
    int64_t a = OPAQUE(v64[i]), b = OPAQUE(v64[j]);
    int64_t s = (int64_t)((uint64_t)a + (uint64_t)b), d = (int64_t)((uint64_t)a - (uint64_t)b), m = (int64_t)((uint64_t)a * (uint64_t)b);
    int64_t r1, r2, r3;
    int o1 = __builtin_add_overflow(a, b, &r1), o2 = __builtin_sub_overflow(a, b, &r2), o3 = __builtin_mul_overflow(a, b, &r3);
    uint64_t ur; int uo = __builtin_add_overflow((uint64_t)a, (uint64_t)b, &ur);
    int uo2 = __builtin_sub_overflow((uint64_t)a, (uint64_t)b, &ur);
    int uo3 = __builtin_mul_overflow((uint64_t)a, (uint64_t)b, &ur);
    printf("%" PRId64 " %" PRId64 ": %" PRId64 " %" PRId64 " %" PRId64 " o=%d%d%d u=%d%d%d lt=%d ult=%d\n", a, b, s, d, m, o1, o2, o3, uo, uo2, uo3, a < b, (uint64_t)a < (uint64_t)b);
    h = mix(h, (uint64_t)(r1 ^ r2 ^ r3));
  }
  for (unsigned i = 0; i < n32; i++) for (unsigned j = 0; j < n32; j++) {
    int32_t a = OPAQUE(v32[i]), b = OPAQUE(v32[j]);
    int32_t s, d, m;
    int o1 = __builtin_add_overflow(a, b, &s), o2 = __builtin_sub_overflow(a, b, &d), o3 = __builtin_mul_overflow(a, b, &m);
    uint32_t us; int uo = __builtin_add_overflow((uint32_t)a, (uint32_t)b, &us);
    printf("%d %d: %d %d %d o=%d%d%d u=%d %u neg=%d abs=%u\n", a, b, s, d, m, o1, o2, o3, uo, us, (int32_t)(0u - (uint32_t)a), a < 0 ? 0u - (uint32_t)a : (uint32_t)a);
  }
  printf("hash=%016" PRIx64 "\n", h);
  return 0;
}
