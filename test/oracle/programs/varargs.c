#include "common.h"
#include <stdarg.h>
#include <inttypes.h>
static long long sum_ints(int n, ...) { va_list ap; va_start(ap, n); long long s = 0; for (int i = 0; i < n; i++) s += va_arg(ap, int) * (i + 1); va_end(ap); return s; }
static double sum_mixed(const char *fmt, ...) {
  va_list ap, ap2; va_start(ap, fmt); va_copy(ap2, ap); double s = 0;
  for (const char *p = fmt; *p; p++) switch (*p) { case 'i': s += va_arg(ap, int); break; case 'l': s += (double)va_arg(ap, long long); break; case 'd': s += va_arg(ap, double); break; case 's': s += (double)strlen(va_arg(ap, const char *)); break; }
  double s2 = 0; for (const char *p = fmt; *p; p++) switch (*p) { case 'i': s2 += va_arg(ap2, int) * 2; break; case 'l': s2 += (double)va_arg(ap2, long long) * 2; break; case 'd': s2 += va_arg(ap2, double) * 2; break; case 's': s2 += 2.0 * (double)strlen(va_arg(ap2, const char *)); break; }
  va_end(ap2); va_end(ap); return s * 1000 + s2;
}
struct big { int a[5]; double d; };
static void vout(char *buf, size_t n, const char *fmt, va_list ap) { vsnprintf(buf, n, fmt, ap); }
static void out(const char *fmt, ...) { char buf[256]; va_list ap; va_start(ap, fmt); vout(buf, sizeof buf, fmt, ap); va_end(ap); printf("[%s]\n", buf); }
static int structs(int n, ...) { va_list ap; va_start(ap, n); int s = 0; for (int i = 0; i < n; i++) { struct big b = va_arg(ap, struct big); s += b.a[0] + b.a[4] + (int)b.d; } va_end(ap); return s; }
static long double ld(int n, ...) { va_list ap; va_start(ap, n); long double s = 0; for (int i = 0; i < n; i++) s += va_arg(ap, long double); va_end(ap); return s; }
int main(void) {
  printf("%lld\n", sum_ints(0));
  printf("%lld\n", sum_ints(3, 1, 2, 3));
  printf("%lld\n", sum_ints(20, 1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -16, 17, -18, 19, -20));
  printf("%.17g\n", sum_mixed("idldsid", 1, 2.5, 3ll, 4.25, "hello", -7, 1e10));
  printf("%.17g\n", sum_mixed("dddddddddddi", 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12));
  printf("%.17g\n", sum_mixed("iiiiiiiiiiil", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -1ll));
  out("%d %s %f %c %lld %x %e", -5, "str", 2.5, 'Q', 1ll << 40, 0xBEEFu, 6.02e23);
  out("%5.2f|%-6d|%+.3e|%s", 3.14159, 42, -0.000123, "");
  struct big b1 = {{1, 2, 3, 4, 5}, 6.5}, b2 = {{10, 20, 30, 40, 50}, 60.5};
  printf("structs %d\n", structs(3, b1, b2, b1));
  printf("ld %.20Lg\n", ld(3, 1.0L / 3, 2.0L / 3, 1e-30L));
  return 0;
}
