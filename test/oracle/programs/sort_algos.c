#include "common.h"
#include <inttypes.h>
#include <stdlib.h>
#define N 4000
static int32_t base[N], a[N], tmp[N];
static void isort(int32_t *x, int n) { for (int i = 1; i < n; i++) { int32_t v = x[i]; int j = i - 1; while (j >= 0 && x[j] > v) { x[j + 1] = x[j]; j--; } x[j + 1] = v; } }
static void qs(int32_t *x, int lo, int hi) { while (hi - lo > 16) { int32_t p = x[(lo + hi) / 2]; int i = lo, j = hi; while (i <= j) { while (x[i] < p) i++; while (x[j] > p) j--; if (i <= j) { int32_t t = x[i]; x[i] = x[j]; x[j] = t; i++; j--; } } if (j - lo < hi - i) { qs(x, lo, j); lo = i; } else { qs(x, i, hi); hi = j; } } isort(x + lo, hi - lo + 1); }
static void ms(int32_t *x, int n) { if (n < 2) return; int h = n / 2; ms(x, h); ms(x + h, n - h); int i = 0, j = h, k = 0; while (i < h && j < n) tmp[k++] = x[i] <= x[j] ? x[i++] : x[j++]; while (i < h) tmp[k++] = x[i++]; while (j < n) tmp[k++] = x[j++]; memcpy(x, tmp, sizeof(int32_t) * n); }
static void sift(int32_t *x, int i, int n) { for (;;) { int l = 2 * i + 1, m = i; if (l < n && x[l] > x[m]) m = l; if (l + 1 < n && x[l + 1] > x[m]) m = l + 1; if (m == i) return; int32_t t = x[i]; x[i] = x[m]; x[m] = t; i = m; } }
static void hs(int32_t *x, int n) { for (int i = n / 2 - 1; i >= 0; i--) sift(x, i, n); for (int e = n - 1; e > 0; e--) { int32_t t = x[0]; x[0] = x[e]; x[e] = t; sift(x, 0, e); } }
static void radix(int32_t *x, int n) { uint32_t *u = (uint32_t *)x, *o = (uint32_t *)tmp; for (int sh = 0; sh < 32; sh += 8) { int cnt[257] = {0}; for (int i = 0; i < n; i++) cnt[((u[i] ^ 0x80000000u) >> sh & 255) + 1]++; for (int i = 0; i < 256; i++) cnt[i + 1] += cnt[i]; for (int i = 0; i < n; i++) o[cnt[(u[i] ^ 0x80000000u) >> sh & 255]++] = u[i]; memcpy(u, o, sizeof(uint32_t) * n); } }
static void shell(int32_t *x, int n) { for (int g = n / 2; g > 0; g /= 2) for (int i = g; i < n; i++) { int32_t v = x[i]; int j = i; while (j >= g && x[j - g] > v) { x[j] = x[j - g]; j -= g; } x[j] = v; } }
static void report(const char *name, int n) { int ok = 1; for (int i = 1; i < n; i++) if (a[i - 1] > a[i]) ok = 0; printf("%-8s n=%d ok=%d h=%016" PRIx64 " min=%d max=%d\n", name, n, ok, fnv(FNV0, a, sizeof(int32_t) * n), a[0], a[n - 1]); }
int main(void) {
  rng_seed(1);
  for (int i = 0; i < N; i++) base[i] = (int32_t)rng32() >> (i % 3 == 0 ? 20 : 0);
  memcpy(a, base, sizeof a); isort(a, 800); report("insert", 800);
  memcpy(a, base, sizeof a); qs(a, 0, N - 1); report("quick", N);
  memcpy(a, base, sizeof a); ms(a, N); report("merge", N);
  memcpy(a, base, sizeof a); hs(a, N); report("heap", N);
  memcpy(a, base, sizeof a); radix(a, N); report("radix", N);
  memcpy(a, base, sizeof a); shell(a, N); report("shell", N);
  for (int i = 0; i < N; i++) a[i] = N - i; qs(a, 0, N - 1); report("rev-q", N);
  for (int i = 0; i < N; i++) a[i] = i % 7; ms(a, N); report("dups-m", N);
  return 0;
}
