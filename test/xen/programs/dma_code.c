/*
 * Code loaded by DMA (test/xen/dma-code.test.ts): runs a function from an executable page HOT times, so the
 * emulator has decoded and compiled it, then reads new code into the same page from a block device with
 * O_DIRECT — the disk's back-end writes the page, the guest CPU never stores to it and does no cache
 * maintenance — and runs it again. Under QEMU TCG (and with Xeno's host-write invalidation) the new code runs.
 *
 *   dma_code DEVICE OFFSET      prints "first=N second=M" (sums of the function's results over HOT calls each)
 *
 * The first version is `mov w0, #1; ret`; the device holds, at OFFSET, a page starting with `mov w0, #2; ret`.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HOT 5000

typedef int (*fn_t)(void);

static long run(volatile fn_t f) {
  long sum = 0;
  for (int i = 0; i < HOT; i++) sum += f();
  return sum;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: dma_code DEVICE OFFSET\n"); return 2; }
  uint32_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) { perror("mmap"); return 1; }
  page[0] = 0x52800020; /* mov w0, #1 */
  page[1] = 0xd65f03c0; /* ret */
  __builtin___clear_cache((char *)page, (char *)page + 8);
  long first = run((fn_t)page);
  int fd = open(argv[1], O_RDONLY | O_DIRECT);
  if (fd < 0) { perror("open"); return 1; }
  ssize_t n = pread(fd, page, 4096, strtol(argv[2], NULL, 0));
  if (n != 4096) { perror("pread"); return 1; }
  /* No __builtin___clear_cache here: the page changed by DMA only. */
  long second = run((fn_t)page);
  printf("first=%ld second=%ld word=%08x\n", first, second, page[0]);
  return 0;
}
