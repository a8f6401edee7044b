#include "common.h"
#include <setjmp.h>
#include <stdlib.h>
static jmp_buf env, env2;
static int depth_reached;
static void dive(int n) { volatile char pad[64]; pad[0] = (char)n; depth_reached = n; if (n >= 500) longjmp(env, n + pad[0]); dive(n + 1); pad[1] = 0; }
static double fpwork(jmp_buf *e) { volatile double x = 1.5; for (int i = 0; i < 5; i++) x *= 1.25; longjmp(*e, (int)x); }
int main(void) {
  volatile int count = 0;
  int r = setjmp(env);
  printf("setjmp returned %d (count=%d)\n", r, count);
  if (count++ < 3) longjmp(env, count * 10);
  r = setjmp(env);
  if (r == 0) dive(0);
  printf("from depth: %d reached=%d\n", r, depth_reached);
  if (setjmp(env) == 0) longjmp(env, 0); else printf("longjmp(0) gives 1\n");
  register double callee_saved = 3.25; volatile long keep = 77;
  if ((r = setjmp(env2)) == 0) fpwork(&env2);
  printf("fp longjmp %d %.2f %ld\n", r, callee_saved, keep);
  sigjmp_buf sj; volatile int n = 0;
  if (sigsetjmp(sj, 1) < 5) { n++; siglongjmp(sj, n); }
  printf("sigsetjmp loops=%d\n", n);
  /* nested jmp_bufs */
  jmp_buf *stack = malloc(sizeof(jmp_buf) * 10); volatile int level = 0; volatile int total = 0;
  for (level = 0; level < 10; level++) { if (setjmp(stack[level]) == 0) total += level; else total += 1000; }
  for (int i = 9; i >= 0; i -= 3) { volatile int hit = 0; if (setjmp(stack[i]) == 0) longjmp(stack[i], 1); else hit = 1; total += hit; }
  printf("total=%d\n", total);
  free(stack);
  return 0;
}
