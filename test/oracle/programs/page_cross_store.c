/*
 * Stores that cross into a page not touched yet: the first part lands on a mapped page, the rest faults (the
 * runner, like Linux, maps anonymous pages on first touch) and the store is retried. STR Q, STP X and STR X at
 * 5, 9 and 3 bytes before a page's end; the sums show every byte landed once the faults were served. Run in
 * the compiler's verify mode by verify-page-cross.test.ts (a faulting store's bytes before the fault).
 */
#include <stdio.h>
#include <stdint.h>
#include <sys/mman.h>

#define PAGE 4096L
#define ROUNDS 48

static uint64_t sum_bytes(const unsigned char *p, long n) {
  uint64_t s = 0;
  for (long i = 0; i < n; i++) s = s * 31 + p[i];
  return s;
}

int main(void) {
  long span = 3 * PAGE;
  unsigned char *buf = mmap(0, ROUNDS * span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) { perror("mmap"); return 1; }
  unsigned char src[16];
  for (int i = 0; i < 16; i++) src[i] = (unsigned char)('a' + i);
  for (int r = 0; r < ROUNDS; r++) {
    unsigned char *pg = buf + r * span;
    pg[0] = 1;           /* the first page is mapped; the second is not, yet */
    pg[2 * PAGE] = 1;    /* the third too */
    uint64_t a = 0x1122334455667788ull + r, b = 0x99aabbccddeeff00ull ^ r;
    switch (r % 3) {
    case 0: {
      unsigned char *at = pg + PAGE - 5;
      __asm__ volatile("ldr q0, [%1]\n\tstr q0, [%0]" : : "r"(at), "r"(src) : "v0", "memory");
      break;
    }
    case 1: {
      unsigned char *at = pg + PAGE - 9;
      __asm__ volatile("stp %1, %2, [%0]" : : "r"(at), "r"(a), "r"(b) : "memory");
      break;
    }
    default: {
      unsigned char *at = pg + PAGE - 3;
      __asm__ volatile("str %1, [%0]" : : "r"(at), "r"(a) : "memory");
      break;
    }
    }
  }
  uint64_t s = 0;
  for (int r = 0; r < ROUNDS; r++) s ^= sum_bytes(buf + r * span + PAGE - 16, 32) + (uint64_t)r;
  printf("%016llx\n", (unsigned long long)s);
  return 0;
}
