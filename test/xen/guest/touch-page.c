/*
 * For test/xen/balloon.test.ts: writes one page of its own, prints the page's guest-physical frame number
 * (from /proc/self/pagemap, Documentation/admin-guide/mm/pagemap.rst: bit 63 present, bits 0-54 PFN), waits
 * for a line on stdin, then reads the page again. The host takes the frame out of the P2M in between.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
  volatile uint64_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 2; }
  p[0] = 0x5afe5afe5afe5afeULL;
  mlock((void *)p, 4096);
  int fd = open("/proc/self/pagemap", O_RDONLY);
  uint64_t e = 0;
  if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)p / 4096) * 8) != 8) { perror("pagemap"); return 3; }
  if (!(e >> 63)) { puts("TOUCH-NOT-PRESENT"); return 4; }
  printf("TOUCH-PFN=%llx\n", (unsigned long long)(e & ((1ULL << 55) - 1)));
  fflush(stdout);
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return 5;
  printf("TOUCH-READ=%llx\n", (unsigned long long)p[0]);
  return 0;
}
