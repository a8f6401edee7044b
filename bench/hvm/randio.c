/*
 * Random 4 KiB I/O on a block device, run inside an HVM guest by bench/hvm/disk.ts (Xeno and QEMU alike): busybox
 * has no fio, and a dd per block would time process creation, not the disk.
 *
 *   randio DEVICE read|write COUNT SPAN_MIB
 *
 * COUNT requests of 4 KiB at offsets drawn from [0, SPAN_MIB MiB) (4 KiB aligned; a fixed xorshift seed, so both
 * sides do the same requests in the same order), one at a time, with O_DIRECT (the guest's page cache out of
 * the way: every request reaches the device); writes end with fdatasync. Prints one line:
 *   RANDIO read 2000 4096 elapsed_us=1234567
 * timed with CLOCK_MONOTONIC (the guest's counter).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096

static void die(const char *what) { perror(what); exit(2); }

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: randio DEVICE read|write COUNT SPAN_MIB\n"); return 2; }
  int writing = strcmp(argv[2], "write") == 0;
  if (!writing && strcmp(argv[2], "read") != 0) { fprintf(stderr, "randio: read or write, not %s\n", argv[2]); return 2; }
  long count = atol(argv[3]), span = atol(argv[4]) * 1024L * 1024L / BLOCK;
  if (count <= 0 || span <= 0) { fprintf(stderr, "randio: COUNT and SPAN_MIB must be positive\n"); return 2; }
  int fd = open(argv[1], (writing ? O_RDWR : O_RDONLY) | O_DIRECT);
  if (fd < 0) die(argv[1]);
  void *buf;
  if (posix_memalign(&buf, BLOCK, BLOCK) != 0) die("posix_memalign");
  memset(buf, 0xa5, BLOCK);
  uint64_t x = 0x9e3779b97f4a7c15ull; /* xorshift64: the same sequence on every run and side */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < count; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    off_t off = (off_t)(x % (uint64_t)span) * BLOCK;
    ssize_t n = writing ? pwrite(fd, buf, BLOCK, off) : pread(fd, buf, BLOCK, off);
    if (n != BLOCK) die(writing ? "pwrite" : "pread");
  }
  if (writing && fdatasync(fd) != 0) die("fdatasync");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long long us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
  printf("RANDIO %s %ld %d elapsed_us=%lld\n", argv[2], count, BLOCK, us);
  return 0;
}
