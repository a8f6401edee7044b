#include "common.h"
#include <inttypes.h>
#include <stdlib.h>
/* Thread-local storage in the main thread (TPIDR_EL0-relative access), constructors/destructors, static init order. */
static __thread int tcount = 5; static __thread uint64_t tarr[64]; static __thread char tname[16] = "tls-init";
static int ctor_ran; __attribute__((constructor(101))) static void c1(void) { ctor_ran = ctor_ran * 10 + 1; } __attribute__((constructor(102))) static void c2(void) { ctor_ran = ctor_ran * 10 + 2; }
__attribute__((destructor)) static void d1(void) { printf("destructor tcount=%d\n", tcount); }
static __attribute__((noinline)) void bump(int k) { tcount += k; for (int i = 0; i < 64; i++) tarr[i] += (uint64_t)(i * k); }
int main(void) {
  printf("ctor=%d tcount=%d tname=%s tarr0=%" PRIu64 "\n", ctor_ran, tcount, tname, tarr[0]);
  for (int k = 1; k <= 100; k++) bump(k);
  uint64_t s = 0; for (int i = 0; i < 64; i++) s += tarr[i];
  uint64_t tp; __asm__("mrs %0, tpidr_el0" : "=r"(tp)); int aligned = (tp & 7) == 0;
  uintptr_t off = (uintptr_t)&tcount - (uintptr_t)tp;
  printf("tcount=%d sum=%" PRIu64 " tp aligned=%d tcount within 64K of tp=%d\n", tcount, s, aligned, off < 65536 || (uintptr_t)tp - (uintptr_t)&tcount < 65536);
  strcpy(tname, "changed"); printf("%s\n", tname);
  uint64_t ctr; __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr)); printf("ctr_el0 readable=%d\n", ctr != 0);
  uint64_t dczid; __asm__ volatile("mrs %0, dczid_el0" : "=r"(dczid)); unsigned bs = 4u << (dczid & 15);
  static __attribute__((aligned(256))) unsigned char z[512]; memset(z, 0xAB, sizeof z);
  if (!(dczid & 16)) { __asm__ volatile("dc zva, %0" :: "r"(z + 128) : "memory"); }
  int zeros = 0; for (int i = 0; i < 512; i++) zeros += z[i] == 0;
  printf("dc zva zeroed=%d (block=%u, prohibited=%d) -> consistent=%d\n", zeros == (int)bs || (dczid & 16), bs <= 2048, (int)(dczid >> 4 & 1), zeros == ((dczid & 16) ? 0 : (int)bs));
  return 0;
}
