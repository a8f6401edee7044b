#include "common.h"
#include <stdlib.h>
#include <inttypes.h>
#include <math.h>
int main(void) {
  int a, b, n; unsigned u; long long ll; double d; float f; char s[32], c, set[32]; short h; unsigned char hh;
  printf("%d: %d %d\n", sscanf("12 -34", "%d %d", &a, &b), a, b);
  printf("%d: %x %o %lld\n", sscanf("ff 777 -9223372036854775808", "%x %o %lld", &u, (unsigned *)&a, &ll), u, (unsigned)a, ll);
  printf("%d: %g %g\n", sscanf("3.25e2 -inf", "%lf %f", &d, &f), d, (double)f);
  printf("%d: %s %c\n", sscanf("  hello   X", "%31s %c", s, &c), s, c);
  printf("%d: [%s]\n", sscanf("abc123def", "%31[a-z]", set), set);
  printf("%d: [%s] n=%d\n", sscanf("key=value;rest", "key=%31[^;]%n", set, &n), set, n);
  printf("%d: %hd %hhu\n", sscanf("40000 300", "%hd %hhu", &h, &hh), h, hh);
  printf("%d: %d\n", sscanf("0x1A", "%i", &a), a);
  printf("%d: %d\n", sscanf("010", "%i", &a), a);
  printf("%d\n", sscanf("", "%d", &a));
  printf("%d\n", sscanf("abc", "%d", &a));
  printf("%d: %d %d\n", sscanf("1,2", "%d,%d", &a, &b), a, b);
  printf("%d: %d\n", sscanf("12345", "%3d", &a), a);
  printf("%d: %a\n", sscanf("0x1.8p-3", "%lf", &d), d);
  printf("%d: %s\n", sscanf("nan", "%lf", &d), isnan(d) ? "nan" : "num");
  char *dyn = NULL; printf("%d: %s\n", sscanf("allocated-string more", "%ms", &dyn), dyn); free(dyn);
  uint64_t hsh = FNV0; char buf[64]; rng_seed(10);
  for (int i = 0; i < 2000; i++) {
    long long x = (long long)rng64() >> (i & 63); double y = bitsd(rng64() & 0x7FEFFFFFFFFFFFFFull) * ((i & 1) ? 1 : -1);
    snprintf(buf, sizeof buf, "%lld|%.17g|%llx", x, y, (unsigned long long)x);
    long long rx; double ry; unsigned long long rh; int k = sscanf(buf, "%lld|%lf|%llx", &rx, &ry, &rh);
    hsh = mix(hsh, (uint64_t)k); hsh = mix(hsh, (uint64_t)(rx == x)); hsh = mix(hsh, dbits(ry)); hsh = mix(hsh, rh);
  }
  printf("hash=%016" PRIx64 "\n", hsh);
  return 0;
}
