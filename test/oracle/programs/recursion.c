#include "common.h"
#include <inttypes.h>
#include <stdlib.h>
static unsigned ack(unsigned m, unsigned n) { return m == 0 ? n + 1 : n == 0 ? ack(m - 1, 1) : ack(m - 1, ack(m, n - 1)); }
static uint64_t fib(unsigned n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
/* deep recursion with a frame of ~100 bytes: about 2 MiB of stack at depth 20000 */
static __attribute__((noinline)) uint64_t deep(unsigned n, uint64_t acc) {
  volatile uint64_t frame[8]; frame[n & 7] = acc;
  if (n == 0) return acc;
  uint64_t r = deep(n - 1, acc * 31 + n);
  return r ^ frame[n & 7];
}
static int hanoi_moves; static void hanoi(int n, int a, int b, int c) { if (!n) return; hanoi(n - 1, a, c, b); hanoi_moves++; hanoi(n - 1, c, b, a); }
static int queens(int n, int row, unsigned cols, unsigned d1, unsigned d2) {
  if (row == n) return 1; int c = 0;
  for (int i = 0; i < n; i++) if (!(cols >> i & 1) && !(d1 >> (row + i) & 1) && !(d2 >> (row - i + n) & 1)) c += queens(n, row + 1, cols | 1u << i, d1 | 1u << (row + i), d2 | 1u << (row - i + n));
  return c;
}
int main(void) {
  printf("ack(2,3)=%u ack(3,5)=%u\n", ack(2, 3), ack(3, 5));
  printf("fib(24)=%" PRIu64 "\n", fib(24));
  printf("deep(20000)=%016" PRIx64 "\n", deep(20000, 1));
  hanoi(14, 1, 2, 3); printf("hanoi=%d\n", hanoi_moves);
  for (int n = 1; n <= 9; n++) printf("queens(%d)=%d\n", n, queens(n, 0, 0, 0, 0));
  /* alloca-like VLA growth */
  uint64_t s = 0; for (int k = 1; k <= 64; k++) { volatile unsigned char vla[k * 1024]; vla[k * 1024 - 1] = (unsigned char)k; vla[0] = 1; s += vla[k * 1024 - 1] + vla[0]; } printf("vla=%" PRIu64 "\n", s);
  return 0;
}
