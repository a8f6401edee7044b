#include "common.h"
#include <stdlib.h>
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
int main(void) {
  const char *in[] = {"0", "-0", "42", "  -42abc", "+17", "0x1F", "0X1f", "017", "08", "0b101", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "-1", "2147483647", "2147483648", "-2147483649", "zz", "ZZ", "", "   ", "-", "0x", "1e5", "\t\n 12", "999999999999999999999999999", "0xffffffffffffffff", "-0x8000000000000000"};
  int bases[] = {0, 10, 16, 8, 2, 36};
  for (unsigned i = 0; i < sizeof in / sizeof in[0]; i++) {
    printf("'%s': atoi=%d atol=%ld", in[i], (int)strtol(in[i], NULL, 10) == atoi(in[i]) ? atoi(in[i]) : -999, atol(in[i]));
    for (unsigned b = 0; b < sizeof bases / sizeof bases[0]; b++) {
      char *end; errno = 0; long v = strtol(in[i], &end, bases[b]); int e1 = errno;
      errno = 0; unsigned long u = strtoul(in[i], NULL, bases[b]); int e2 = errno;
      errno = 0; long long ll = strtoll(in[i], NULL, bases[b]); unsigned long long ull = strtoull(in[i], NULL, bases[b]); int e3 = errno;
      printf(" b%d:%ld/%lu/%lld/%llu/%d%d%d/%td", bases[b], v, u, ll, ull, e1 == ERANGE, e2 == ERANGE, e3 == ERANGE, end - in[i]);
    }
    printf("\n");
  }
  errno = 0; long v = strtol("12", NULL, 1); printf("base1 %ld einval=%d\n", v, errno == EINVAL);
  errno = 0; v = strtol("12", NULL, 37); printf("base37 %ld einval=%d\n", v, errno == EINVAL);
  printf("intmax %" PRIdMAX " %" PRIuMAX "\n", strtoimax("-123456789012", NULL, 0), strtoumax("0777", NULL, 0));
  return 0;
}
