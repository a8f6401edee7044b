#include "common.h"
#include <stdlib.h>
#include <inttypes.h>
typedef unsigned __int128 u128;
static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m) { return (uint64_t)((u128)a * b % m); }
static uint64_t powmod(uint64_t b, uint64_t e, uint64_t m) { uint64_t r = 1; b %= m; while (e) { if (e & 1) r = mulmod(r, b, m); b = mulmod(b, b, m); e >>= 1; } return r; }
static int mr(uint64_t n) { if (n < 2) return 0; static const uint64_t bs[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37}; for (int i = 0; i < 12; i++) { if (n % bs[i] == 0) return n == bs[i]; }
  uint64_t d = n - 1; int s = 0; while (!(d & 1)) { d >>= 1; s++; }
  for (int i = 0; i < 12; i++) { uint64_t x = powmod(bs[i], d, n); if (x == 1 || x == n - 1) continue; int comp = 1; for (int r = 1; r < s; r++) { x = mulmod(x, x, n); if (x == n - 1) { comp = 0; break; } } if (comp) return 0; } return 1; }
static uint64_t gcd(uint64_t a, uint64_t b) { while (b) { uint64_t t = a % b; a = b; b = t; } return a; }
int main(void) {
  int n = 300000; unsigned char *s = calloc((size_t)n + 1, 1); int cnt = 0; uint64_t sum = 0;
  for (int i = 2; i <= n; i++) if (!s[i]) { cnt++; sum += (uint64_t)i; for (long long j = (long long)i * i; j <= n; j += i) s[j] = 1; }
  printf("primes<=%d: %d sum=%" PRIu64 "\n", n, cnt, sum); free(s);
  uint64_t cand[] = {18446744073709551557ull, 18446744073709551615ull, 9223372036854775783ull, 1000000007ull, 561ull, 3215031751ull, 4294967291ull, 4294967297ull, 999999999999999989ull, 2305843009213693951ull};
  for (int i = 0; i < 10; i++) printf("%" PRIu64 " %s\n", cand[i], mr(cand[i]) ? "prime" : "composite");
  uint64_t next = 1000000000000ull; int found = 0; while (found < 5) { if (mr(next)) { printf("p=%" PRIu64 "\n", next); found++; } next++; }
  printf("gcd %" PRIu64 " %" PRIu64 " powmod %" PRIu64 "\n", gcd(1071, 462), gcd(18446744073709551614ull, 12345678901234567890ull), powmod(2, 1000000, 1000000007));
  return 0;
}
