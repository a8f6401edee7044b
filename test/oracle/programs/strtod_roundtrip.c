#include "common.h"
#include <stdlib.h>
#include <math.h>
#include <inttypes.h>
#include <errno.h>
int main(void) {
  static const char *strs[] = {"0", "-0", "1e-400", "1e400", "-1e400", "2.2250738585072011e-308", "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
    "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "0x1.fffffffffffffp1023", "0x1p-1074", "0x1.8p1", "inf", "-Infinity", "nan", "NAN(123)",
    "9007199254740993", "9007199254740993.0000000001", "123456789012345678901234567890", ".5", "5.", "1e", "  +3.25xyz", "0.1e-5", "1_000", "", "-", "0x", "7.038531e-26", "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124", "8.98846567431158e307", "3.4028235e38", "1.17549435e-38"};
  for (unsigned i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    char *end; errno = 0; double d = strtod(strs[i], &end); int e1 = errno; errno = 0; float f = strtof(strs[i], NULL); int e2 = errno;
    printf("'%s' -> %a (%.17g) consumed=%d erange=%d f=%a erange=%d\n", strs[i], d, d, (int)(end - strs[i]), e1 == ERANGE, (double)f, e2 == ERANGE);
  }
  rng_seed(2024); uint64_t h = FNV0; int bad = 0; char buf[64];
  for (int i = 0; i < 1500; i++) {
    uint64_t b = rng64(); double d = bitsd(b);
    if (i % 3 == 1) d = (double)(rng32() % 100000) / (double)(1 + rng32() % 1000);
    if (i % 3 == 2) d = ldexp((double)(rng64() >> 11), (int)(rng32() % 200) - 100);
    if (isnan(d)) continue;
    snprintf(buf, sizeof buf, "%.17g", d); double back = strtod(buf, NULL);
    if (dbits(back) != dbits(d)) bad++;
    h = fnv(h, buf, strlen(buf));
    snprintf(buf, sizeof buf, "%.6e|%g", d, d); h = fnv(h, buf, strlen(buf));
    h = mix(h, dbits(strtod(buf, NULL)));
    float f = (float)d; snprintf(buf, sizeof buf, "%.9g", (double)f); if (fbits(strtof(buf, NULL)) != fbits(f)) bad++;
    h = fnv(h, buf, strlen(buf));
    if (i < 12) printf("%s\n", buf);
  }
  printf("roundtrip failures=%d hash=%016" PRIx64 "\n", bad, h);
  return 0;
}
