/*
 * For test/xen/balloon.test.ts: writes a pattern (0x5a bytes) over N MiB of its own memory and exits, so the
 * guest's free pages hold data when the balloon later takes some of them (with init_on_alloc=0 and
 * xen_scrub_pages=0 the guest does not zero them itself): the hypervisor must zero what it is given back.
 * Usage: fill-free MiB. Prints FILL-DONE=<MiB>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  long mib = argc == 2 ? atol(argv[1]) : 0;
  if (mib <= 0) { fprintf(stderr, "usage: fill-free MiB\n"); return 2; }
  for (long i = 0; i < mib; i++) {
    char *b = malloc(1 << 20); /* not freed: every MiB is a different range, all returned at exit */
    if (b == NULL) { perror("malloc"); return 3; }
    memset(b, 0x5a, 1 << 20);
  }
  printf("FILL-DONE=%ld\n", mib);
  return 0;
}
