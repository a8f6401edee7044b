#include "common.h"
#include <stdlib.h>
#include <inttypes.h>
/* Arbitrary precision in base 1e9: factorials, powers, Fibonacci, and pi digits by a spigot. */
typedef struct { uint32_t d[800]; int n; } big;
static void set(big *a, uint32_t v) { a->n = 1; a->d[0] = v; }
static void mulsmall(big *a, uint32_t m) { uint64_t c = 0; for (int i = 0; i < a->n; i++) { uint64_t t = (uint64_t)a->d[i] * m + c; a->d[i] = (uint32_t)(t % 1000000000); c = t / 1000000000; } while (c) { a->d[a->n++] = (uint32_t)(c % 1000000000); c /= 1000000000; } }
static void add(big *r, const big *a, const big *b) { uint32_t c = 0; int n = a->n > b->n ? a->n : b->n; for (int i = 0; i < n; i++) { uint32_t t = (i < a->n ? a->d[i] : 0) + (i < b->n ? b->d[i] : 0) + c; c = t >= 1000000000; r->d[i] = c ? t - 1000000000 : t; } r->n = n; if (c) r->d[r->n++] = 1; }
static void mul(big *r, const big *a, const big *b) { static uint64_t t[1600]; memset(t, 0, sizeof(uint64_t) * (size_t)(a->n + b->n)); for (int i = 0; i < a->n; i++) { uint64_t c = 0; for (int j = 0; j < b->n; j++) { uint64_t x = t[i + j] + (uint64_t)a->d[i] * b->d[j] + c; t[i + j] = x % 1000000000; c = x / 1000000000; } t[i + b->n] += c; } r->n = a->n + b->n; for (int i = 0; i < r->n; i++) r->d[i] = (uint32_t)t[i]; while (r->n > 1 && !r->d[r->n - 1]) r->n--; }
static void print(const char *tag, const big *a) { char buf[8000]; int p = sprintf(buf, "%u", a->d[a->n - 1]); for (int i = a->n - 2; i >= 0; i--) p += sprintf(buf + p, "%09u", a->d[i]); printf("%s (%d digits): %.60s...%s\n", tag, p, buf, buf + (p > 40 ? p - 40 : 0)); }
int main(void) {
  static big a, b, c;
  set(&a, 1); for (uint32_t i = 2; i <= 500; i++) mulsmall(&a, i); print("500!", &a);
  set(&a, 1); for (int i = 0; i < 1000; i++) mulsmall(&a, 2); print("2^1000", &a);
  set(&a, 0); set(&b, 1); for (int i = 0; i < 2000; i++) { add(&c, &a, &b); a = b; b = c; } print("fib(2001)", &b);
  set(&a, 3); set(&b, 1); for (int i = 0; i < 7; i++) { mul(&c, &a, &a); a = c; } print("3^128", &a);
  mul(&c, &a, &a); mul(&b, &c, &a); print("3^384", &b);
  /* pi spigot (Rabinowitz-Wagon), 400 digits */
  enum { N = 400, L = N * 10 / 3 + 1 }; static int r[L]; for (int i = 0; i < L; i++) r[i] = 2;
  int pre = 0, nines = 0; printf("pi=");
  for (int j = 0; j < N; j++) { int q = 0; for (int i = L - 1; i >= 0; i--) { int x = 10 * r[i] + q * (i + 1); r[i] = x % (2 * i + 1); q = x / (2 * i + 1); } r[0] = q % 10; q /= 10;
    if (q == 9) nines++; else if (q == 10) { printf("%d", pre + 1); for (; nines; nines--) printf("0"); pre = 0; } else { if (j) printf("%d", pre); pre = q; for (; nines; nines--) printf("9"); } }
  printf("%d\n", pre);
  return 0;
}
