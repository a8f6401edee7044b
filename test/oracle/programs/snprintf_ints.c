#include "common.h"
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stddef.h>
#include <wchar.h>
int main(void) {
  long long vals[] = {0, 1, -1, 42, -42, 255, 65535, INT_MAX, INT_MIN, LLONG_MAX, LLONG_MIN, 1000000, 0x7F, 0xDEADBEEF, -1234567890123ll};
  const char *fmts[] = {"%d", "%i", "%u", "%x", "%X", "%o", "%#x", "%#o", "%+d", "% d", "%-8d|", "%08d", "%.5d", "%8.3d", "%hhd", "%hd", "%hhu", "%hx", "%-+6i|", "%#X", "%#.0o", "%.0d"};
  char buf[128];
  for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    int v = (int)vals[i];
    printf("%lld:", vals[i]);
    for (unsigned f = 0; f < sizeof fmts / sizeof fmts[0]; f++) { int n = snprintf(buf, sizeof buf, fmts[f], v); printf(" %s(%d)", buf, n); }
    printf(" | %lld %llx %llo %lu %jd %zx %20lld|%-20llu|\n", vals[i], vals[i], vals[i], (unsigned long)vals[i], (intmax_t)vals[i], (size_t)vals[i], vals[i], (unsigned long long)vals[i]);
  }
  printf("%c%c%c %5c|%-3c| %s %.3s %10.4s| %-10s| %*d %-*d| %.*d\n", 'a', 66, '~', 'x', 'y', "string", "truncate", "precision", "left", 6, 42, 6, 42, 4, 7);
  printf("%%literal %%|\n");
  int n1, n2; printf("abc%nxyz%n\n", &n1, &n2); printf("n=%d,%d\n", n1, n2);
  printf("%p %p\n", (void *)0, (void *)0x1234);
  /* truncation and return values */
  for (size_t sz = 0; sz < 12; sz++) { memset(buf, '#', 20); int n = snprintf(buf, sz, "%d-%s", 123456, "abc"); printf("sz=%zu n=%d buf=%.20s\n", sz, n, sz ? buf : "(untouched)"); }
  printf("%" PRId8 " %" PRIu16 " %" PRIx32 " %" PRIo64 " %" PRIdPTR " %" PRIiLEAST32 "\n", (int8_t)-5, (uint16_t)65535, (uint32_t)0xABCDEF01u, (uint64_t)01234567, (intptr_t)-77, (int_least32_t)12);
  printf("%ls|%lc|%5ls|\n", L"wide", (wint_t)L'W', L"ab");
  uint64_t h = FNV0; rng_seed(8);
  for (int i = 0; i < 3000; i++) { long long x = (long long)rng64() >> (i % 64); int n = snprintf(buf, sizeof buf, "%lld %llx %llo %+.20lld %#llX", x, (unsigned long long)x, (unsigned long long)x, x, (unsigned long long)x); h = fnv(h, buf, (size_t)n); }
  printf("hash=%016" PRIx64 "\n", h);
  return 0;
}
