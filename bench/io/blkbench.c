/*
 * blkbench: the guest side of bench/io. One test per invocation, on a block device opened with O_DIRECT (so
 * every byte goes through the virtual disk, never the guest's page cache), timed with
 * clock_gettime(CLOCK_MONOTONIC) around the I/O only; prints one line:
 *
 *   BLKBENCH test=NAME bytes=B ops=N ns=T MBps=X iops=Y ok=1
 *
 *   blkbench DEV seqwrite MiB TAG   MiB at offset 0 in 1 MiB pwrites, then fsync (inside the timing)
 *   blkbench DEV seqread  MiB TAG   the same range in 1 MiB preads; every 4 KiB block's stamp checked
 *   blkbench DEV randread MiB TAG COUNT   COUNT 4 KiB preads at random 4 KiB-aligned offsets below MiB;
 *                                         stamps checked
 *
 * Each 4 KiB block written starts with a 16-byte stamp (magic ^ TAG, byte offset) so reads prove they got the
 * right block of this run's write; the rest of the block is fixed pseudo-random bytes (no zero pages for any
 * layer to short-cut). Checking only the stamp keeps the guest CPU's share of the timing small (the guest CPU
 * is emulated, slowly in Xeno's case). Built by bench/io/run.ts with aarch64-linux-gnu-gcc -static -O2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096u
#define CHUNK (1u << 20)
#define MAGIC 0x58454e4f424c4b31ull /* "XENOBLK1" */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  return *s = x;
}

static void stamp(unsigned char *blk, uint64_t tag, uint64_t off) {
  uint64_t h[2] = { MAGIC ^ tag, off };
  memcpy(blk, h, sizeof h);
}

/* 0 when the block at `blk` carries the stamp of byte offset `off` of run `tag`. */
static int check(const unsigned char *blk, uint64_t tag, uint64_t off) {
  uint64_t h[2];
  memcpy(h, blk, sizeof h);
  return h[0] == (MAGIC ^ tag) && h[1] == off ? 0 : -1;
}

static void fail(const char *test, const char *what, uint64_t off) {
  printf("BLKBENCH test=%s ok=0 error=\"%s at byte %llu: %s\"\n", test, what, (unsigned long long)off,
         errno ? strerror(errno) : "bad data");
  exit(1);
}

static void report(const char *test, uint64_t bytes, uint64_t ops, uint64_t ns) {
  double s = (double)ns / 1e9;
  printf("BLKBENCH test=%s bytes=%llu ops=%llu ns=%llu MBps=%.2f iops=%.1f ok=1\n", test, (unsigned long long)bytes,
         (unsigned long long)ops, (unsigned long long)ns, (double)bytes / 1048576.0 / s, (double)ops / s);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: blkbench DEV seqwrite|seqread|randread MiB TAG [COUNT]\n");
    return 2;
  }
  const char *dev = argv[1], *test = argv[2];
  uint64_t bytes = strtoull(argv[3], 0, 10) << 20, tag = strtoull(argv[4], 0, 10);
  uint64_t count = argc > 5 ? strtoull(argv[5], 0, 10) : 2000;
  int wr = strcmp(test, "seqwrite") == 0;
  int fd = open(dev, (wr ? O_RDWR : O_RDONLY) | O_DIRECT);
  if (fd < 0) fail(test, "open", 0);
  unsigned char *buf;
  if (posix_memalign((void **)&buf, BLOCK, CHUNK) != 0) fail(test, "posix_memalign", 0);
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (uint32_t i = 0; i < CHUNK; i += 8) { uint64_t v = xorshift(&seed); memcpy(buf + i, &v, 8); }
  errno = 0;

  if (wr) {
    uint64_t t0 = now_ns();
    for (uint64_t off = 0; off < bytes; off += CHUNK) {
      for (uint32_t b = 0; b < CHUNK; b += BLOCK) stamp(buf + b, tag, off + b);
      if (pwrite(fd, buf, CHUNK, (off_t)off) != (ssize_t)CHUNK) fail(test, "pwrite", off);
    }
    if (fsync(fd) != 0) fail(test, "fsync", bytes);
    report(test, bytes, bytes / CHUNK, now_ns() - t0);
  } else if (strcmp(test, "seqread") == 0) {
    uint64_t t0 = now_ns();
    for (uint64_t off = 0; off < bytes; off += CHUNK) {
      if (pread(fd, buf, CHUNK, (off_t)off) != (ssize_t)CHUNK) fail(test, "pread", off);
      for (uint32_t b = 0; b < CHUNK; b += BLOCK) if (check(buf + b, tag, off + b)) fail(test, "stamp mismatch", off + b);
    }
    report(test, bytes, bytes / CHUNK, now_ns() - t0);
  } else if (strcmp(test, "randread") == 0) {
    uint64_t blocks = bytes / BLOCK, s = 0x2545f4914f6cdd1dull ^ tag;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < count; i++) {
      uint64_t off = (xorshift(&s) % blocks) * BLOCK;
      if (pread(fd, buf, BLOCK, (off_t)off) != (ssize_t)BLOCK) fail(test, "pread", off);
      if (check(buf, tag, off)) fail(test, "stamp mismatch", off);
    }
    report(test, count * BLOCK, count, now_ns() - t0);
  } else {
    fprintf(stderr, "blkbench: unknown test %s\n", test);
    return 2;
  }
  close(fd);
  return 0;
}
