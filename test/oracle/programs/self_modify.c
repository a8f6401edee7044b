/* Self-modifying code: a function written into an RWX mapping, run hot (so the compiler translates it), then
 * rewritten and run again after cache maintenance; then one instruction of it rewritten before every call. */
#include "common.h"
#include <sys/mman.h>
#include <stdint.h>
#include <string.h>

typedef uint32_t (*fn_t)(uint32_t);

/* movz w0, #imm; add w0, w0, w1 ... encoded by hand: "mov w1, w0; movz w0, #imm; add w0, w0, w1; ret" */
static void emit(uint32_t *p, uint32_t imm) {
  p[0] = 0x2a0003e1;                        /* mov w1, w0 */
  p[1] = 0x52800000 | ((imm & 0xffff) << 5); /* movz w0, #imm */
  p[2] = 0x0b010000;                        /* add w0, w0, w1 */
  p[3] = 0xd65f03c0;                        /* ret */
}

int main(void) {
  uint32_t *code = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED) { printf("mmap failed\n"); return 1; }
  fn_t f = (fn_t)(void *)code;
  for (uint32_t round = 1; round <= 5; round++) {
    emit(code, round * 100);
    __builtin___clear_cache((char *)code, (char *)(code + 4));
    uint64_t sum = 0;
    for (uint32_t i = 0; i < 5000; i++) sum += f(i);
    printf("round %u: sum %llu\n", round, (unsigned long long)sum);
  }
  /* Rewritten one word at a time while hot: each store hits a page holding compiled code. */
  uint64_t total = 0;
  for (uint32_t i = 0; i < 3000; i++) {
    code[1] = 0x52800000 | (((i % 7) + 2) << 5); /* movz w0, #((i % 7) + 2) */
    __builtin___clear_cache((char *)(code + 1), (char *)(code + 2));
    total += f(0);
  }
  printf("patched: total %llu\n", (unsigned long long)total);
  return 0;
}
