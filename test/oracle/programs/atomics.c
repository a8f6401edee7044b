#include "common.h"
#include <stdatomic.h>
#include <inttypes.h>
/* Single-threaded use of atomics: LDXR/STXR/LDAXR/STLXR loops (ARMv8.0 has no LSE), barriers, CAS failure paths. */
static _Atomic uint64_t a64; static _Atomic uint32_t a32; static _Atomic uint8_t a8; static _Atomic uint16_t a16;
int main(void) {
  uint64_t h = FNV0;
  for (int i = 0; i < 3000; i++) {
    h = mix(h, atomic_fetch_add(&a64, (uint64_t)i * 0x9E3779B9u)); h = mix(h, atomic_fetch_xor(&a32, (uint32_t)i * 2654435761u));
    h = mix(h, atomic_fetch_or(&a8, (uint8_t)i)); h = mix(h, atomic_fetch_and(&a8, (uint8_t)~(i >> 2))); h = mix(h, atomic_fetch_sub(&a16, (uint16_t)(i * 3)));
    uint64_t exp = atomic_load(&a64); int ok = atomic_compare_exchange_strong(&a64, &exp, exp + 1); h = mix(h, (uint64_t)ok);
    uint64_t wrong = exp + 12345; ok = atomic_compare_exchange_strong(&a64, &wrong, 0); h = mix(h, (uint64_t)ok ^ wrong);
    uint32_t e32 = atomic_load_explicit(&a32, memory_order_acquire); while (!atomic_compare_exchange_weak_explicit(&a32, &e32, e32 * 3 + 1, memory_order_acq_rel, memory_order_relaxed)) {}
    h = mix(h, atomic_exchange(&a16, (uint16_t)(i ^ 0x5555)));
    atomic_thread_fence(memory_order_seq_cst);
    atomic_store_explicit(&a8, (uint8_t)(atomic_load(&a8) + 1), memory_order_release);
  }
  printf("a64=%016" PRIx64 " a32=%08x a8=%02x a16=%04x hash=%016" PRIx64 "\n", (uint64_t)a64, (unsigned)a32, (unsigned)a8, (unsigned)a16, h);
  /* 128-bit CAS via LDXP/STXP (gcc emits __atomic_compare_exchange_16 through libatomic or inline); use inline asm */
  static __attribute__((aligned(16))) uint64_t pair[2] = {1, 2};
  uint64_t lo, hi; int fail;
  do { __asm__ volatile("ldaxp %0, %1, [%3]\n\tadd %0, %0, #5\n\tadd %1, %1, %0\n\tstlxp %w2, %0, %1, [%3]" : "=&r"(lo), "=&r"(hi), "=&r"(fail) : "r"(pair) : "memory"); } while (fail);
  printf("pair %" PRIu64 " %" PRIu64 "\n", pair[0], pair[1]);
  /* a store-exclusive without a matching monitor must fail after CLREX */
  uint64_t tmp; int st;
  __asm__ volatile("ldxr %0, [%2]\n\tclrex\n\tstxr %w1, %0, [%2]" : "=&r"(tmp), "=&r"(st) : "r"(&pair[0]) : "memory");
  printf("stxr after clrex status=%d\n", st);
  __asm__ volatile("dmb ish\n\tdsb sy\n\tisb" ::: "memory");
  uint32_t v32; uint16_t v16; __asm__ volatile("ldarh %w0, [%1]" : "=r"(v16) : "r"(&a16)); __asm__ volatile("ldar %w0, [%1]" : "=r"(v32) : "r"(&a32)); __asm__ volatile("stlrb %w0, [%1]" :: "r"(0x77), "r"(&a8) : "memory");
  printf("ldar %04x %08x stlrb %02x\n", v16, v32, (unsigned)a8);
  return 0;
}
