/*
 * A hostile NVMe driver run as root inside an HVM guest (test/hvm/nvme.test.ts): it takes an NVMe controller away
 * from Linux's nvme driver (sysfs unbind), maps its BAR 0 (sysfs resource0), enables it with an admin queue pair in
 * pages of its own memory (physical addresses from /proc/self/pagemap), creates one I/O queue pair, and sends what
 * a correct driver never sends. Each is answered by the controller with a status (printed as SCT << 8 | SC), never
 * by touching memory outside the guest's RAM:
 *   oob    a read into the flash (guest-physical 0x1000)                    -> Data Transfer Error   0x4
 *   mmio   a read into the controller's own BAR                             -> Data Transfer Error   0x4
 *   list   a PRP list whose second entry is in the variable flash          -> Data Transfer Error   0x4
 *   align  PRP1 not dword aligned                                           -> PRP Offset Invalid    0x13
 *   past   LBA 2^40                                                         -> LBA Out of Range      0x80
 *   end    the last LBA and one more                                        -> LBA Out of Range      0x80
 *   mdts   65536 blocks in one command                                      -> Invalid Field         0x2
 *   ns     namespace 7                                                      -> Invalid Namespace     0xb
 *   cqinv  an SQ on CQ 9, never created                                     -> Completion Queue Invalid 0x100
 *   qid    deleting SQ 9, never created                                     -> Invalid Queue Identifier 0x101
 *   qsize  a CQ of 65536 entries                                            -> Invalid Queue Size    0x102
 *   qram   a CQ in the flash                                                -> Invalid Field         0x2
 *   opc    I/O opcode 0x7f                                                  -> Invalid Opcode        0x1
 *   db     doorbells for SQ 7 / CQ 5 (never created), SQ 1's tail past its 16 entries, CQ 1's head past what was
 *          posted, one far past the queues: ignored (no completion appears, the queues go on: "db=ok")
 *   ok     after a controller reset (CC.EN 1 -> 0 -> 1) and new queues, a read of LBA 0 succeeds (status 0, the
 *          disk's first byte), and a write of LBA 1 reads back the same ("rw=1")
 * Prints one line starting "NVME-HOSTILE". Interrupts stay masked (INTMS): no handler is bound while unbound.
 * Usage: nvme_hostile 0000:00:03.0
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile uint8_t *bar;
static void die(const char *what) { perror(what); exit(2); }

static void wr(const char *path, const char *s) {
  int fd = open(path, O_WRONLY);
  if (fd < 0 || write(fd, s, strlen(s)) < 0) die(path);
  close(fd);
}

static uint64_t phys(void *va) {
  uint64_t e;
  int fd = open("/proc/self/pagemap", O_RDONLY);
  if (fd < 0 || pread(fd, &e, 8, ((uintptr_t)va / 4096) * 8) != 8) die("pagemap");
  close(fd);
  if (!(e >> 63) || (e & ((1ull << 55) - 1)) == 0) { fprintf(stderr, "no PFN (not root?)\n"); exit(2); }
  return (e & ((1ull << 55) - 1)) * 4096;
}

#define R32(o) (*(volatile uint32_t *)(bar + (o)))
#define W32(o, v) (*(volatile uint32_t *)(bar + (o)) = (v))

/* Pages: 0 admin SQ, 1 admin CQ, 2 I/O SQ, 3 I/O CQ, 4 and 5 data, 6 a PRP list. */
enum { ASQ, ACQ, IOSQ, IOCQ, DATA, DATA2, LIST, NPAGES };
static uint8_t *pg[NPAGES];
static uint64_t pa[NPAGES];
struct q { uint32_t *base; int size, tail, head, phase, id; };
static struct q sq[2], cq[2];
static uint16_t cid;

static void wait_csts(uint32_t mask, uint32_t want) {
  for (long i = 0; i < 100000000L; i++) if ((R32(0x1c) & mask) == want) return;
  printf("NVME-HOSTILE timeout waiting for CSTS & %x == %x (CSTS %x)\n", mask, want, R32(0x1c));
  exit(1);
}

static void queues_reset(void) {
  for (int k = 0; k < 2; k++) {
    sq[k] = (struct q){ (uint32_t *)pg[k ? IOSQ : ASQ], 16, 0, 0, 1, k };
    cq[k] = (struct q){ (uint32_t *)pg[k ? IOCQ : ACQ], 16, 0, 0, 1, k };
    memset(pg[k ? IOSQ : ASQ], 0, 4096); memset(pg[k ? IOCQ : ACQ], 0, 4096);
  }
}

/* Disable, admin queues of 16 entries, enable with 64/16-byte I/O entries, mask the interrupt. */
static void enable(void) {
  W32(0x14, 0);
  wait_csts(1, 0);
  queues_reset();
  W32(0x24, (15 << 16) | 15);
  W32(0x28, (uint32_t)pa[ASQ]); W32(0x2c, pa[ASQ] >> 32);
  W32(0x30, (uint32_t)pa[ACQ]); W32(0x34, pa[ACQ] >> 32);
  W32(0x14, (6 << 16) | (4 << 20) | 1);
  wait_csts(3, 1);
  W32(0x0c, 1); /* INTMS: vector 0 masked */
}

/* Puts a command in SQ k and rings its doorbell. */
static void submit(int k, const uint32_t *dw) {
  uint32_t *e = sq[k].base + 16 * sq[k].tail;
  memcpy(e, dw, 64);
  e[0] = (dw[0] & 0xffff) | ((uint32_t)++cid << 16);
  sq[k].tail = (sq[k].tail + 1) % sq[k].size;
  __sync_synchronize();
  W32(0x1000 + 8 * k, sq[k].tail);
}

/* The next completion on CQ k: its status (SCT << 8 | SC), or -1 when none has appeared. */
static int reap(int k) {
  volatile uint32_t *e = cq[k].base + 4 * cq[k].head;
  for (long i = 0; i < 1000000L; i++) {
    uint32_t dw3 = e[3];
    if (((dw3 >> 16) & 1) == (uint32_t)cq[k].phase) {
      if ((dw3 & 0xffff) != cid) { printf("NVME-HOSTILE wrong CID %u (want %u)\n", dw3 & 0xffff, cid); exit(1); }
      cq[k].head = (cq[k].head + 1) % cq[k].size;
      if (cq[k].head == 0) cq[k].phase ^= 1;
      W32(0x1000 + 8 * k + 4, cq[k].head);
      return (dw3 >> 17) & 0x7ff;
    }
  }
  return -1;
}

static int cmd(int k, uint32_t opc, uint32_t nsid, uint64_t prp1, uint64_t prp2, uint32_t d10, uint32_t d11, uint32_t d12) {
  uint32_t dw[16] = { opc, nsid, 0, 0, 0, 0, (uint32_t)prp1, prp1 >> 32, (uint32_t)prp2, prp2 >> 32, d10, d11, d12 };
  submit(k, dw);
  return reap(k);
}

static int io_queues(void) {
  int s = cmd(0, 0x09, 0, 0, 0, 0x07, 0x00010001, 0);                  /* Number of Queues: two pairs */
  if (s == 0) s = cmd(0, 0x05, 0, pa[IOCQ], 0, (15 << 16) | 1, 1, 0);  /* CQ 1, 16 entries, contiguous, no IRQ */
  if (s == 0) s = cmd(0, 0x01, 0, pa[IOSQ], 0, (15 << 16) | 1, (1 << 16) | 1, 0); /* SQ 1 on CQ 1 */
  return s;
}

static int rd(uint32_t nsid, uint64_t lba, uint32_t nlb, uint64_t prp1, uint64_t prp2) {
  return cmd(1, 0x02, nsid, prp1, prp2, (uint32_t)lba, lba >> 32, nlb - 1);
}

int main(int argc, char **argv) {
  char path[256];
  if (argc != 2) { fprintf(stderr, "usage: %s 0000:00:SS.0\n", argv[0]); return 2; }
  wr("/sys/bus/pci/drivers/nvme/unbind", argv[1]);
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/enable", argv[1]);
  wr(path, "1");
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/config", argv[1]);
  int cfd = open(path, O_RDWR);
  uint8_t cfg[64];
  if (cfd < 0 || pread(cfd, cfg, 64, 0) != 64) die("config");
  uint16_t command = cfg[4] | cfg[5] << 8 | 0x6; /* memory space, bus master */
  if (pwrite(cfd, &command, 2, 4) != 2) die("config command");
  uint64_t barpa = ((uint64_t)(cfg[0x10] | cfg[0x11] << 8 | cfg[0x12] << 16 | (uint32_t)cfg[0x13] << 24) & ~0xfull) |
    (uint64_t)(cfg[0x14] | cfg[0x15] << 8 | cfg[0x16] << 16 | (uint32_t)cfg[0x17] << 24) << 32;
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource0", argv[1]);
  int bfd = open(path, O_RDWR | O_SYNC);
  if (bfd < 0) die("resource0");
  bar = mmap(0, 0x4000, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
  if (bar == MAP_FAILED) die("mmap BAR");
  uint8_t *mem = mmap(0, NPAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) die("mmap pages");
  for (int i = 0; i < NPAGES; i++) { pg[i] = mem + 4096 * i; pg[i][0] = 1; pa[i] = phys(pg[i]); }

  enable();
  if (io_queues() != 0) { printf("NVME-HOSTILE queues refused\n"); return 1; }
  /* Identify namespace 1 into DATA: NSZE, the last LBA + 1. */
  if (cmd(0, 0x06, 1, pa[DATA], 0, 0, 0, 0) != 0) { printf("NVME-HOSTILE identify refused\n"); return 1; }
  uint64_t nsze; memcpy(&nsze, pg[DATA], 8);

  int oob = rd(1, 0, 1, 0x1000, 0);
  int mmio = rd(1, 0, 1, barpa, 0);
  uint64_t *list = (uint64_t *)pg[LIST];
  list[0] = pa[DATA2]; list[1] = 0x04000000;
  int lst = rd(1, 0, 24, pa[DATA], pa[LIST]);
  int align = rd(1, 0, 1, pa[DATA] + 2, 0);
  int past = rd(1, 1ull << 40, 1, pa[DATA], 0);
  int end = rd(1, nsze - 1, 2, pa[DATA], pa[DATA2]);
  int mdts = rd(1, 0, 65536, pa[DATA], pa[LIST]);
  int ns = rd(7, 0, 1, pa[DATA], 0);
  int cqinv = cmd(0, 0x01, 0, pa[DATA2], 0, (15 << 16) | 2, (9 << 16) | 1, 0);
  int qid = cmd(0, 0x00, 0, 0, 0, 9, 0, 0);
  int qsize = cmd(0, 0x05, 0, pa[DATA2], 0, (0xffffu << 16) | 2, 1, 0);
  int qram = cmd(0, 0x05, 0, 0x1000, 0, (15 << 16) | 2, 1, 0);
  int opc = cmd(1, 0x7f, 1, 0, 0, 0, 0, 0);

  /* Doorbells: none may produce a completion or move a queue. */
  W32(0x1000 + 8 * 7, 1);
  W32(0x1000 + 8 * 5 + 4, 1);
  W32(0x1000 + 8 * 1, 200);
  W32(0x1000 + 8 * 1 + 4, 9);
  W32(0x1000 + 8 * 500, 3);
  __sync_synchronize();
  volatile uint32_t *next = cq[1].base + 4 * cq[1].head;
  int db_quiet = ((next[3] >> 16) & 1) != (uint32_t)cq[1].phase;
  int db_works = rd(1, 0, 1, pa[DATA], 0) == 0;
  int cfs = (R32(0x1c) >> 1) & 1;

  /* Controller reset and a fresh start. */
  enable();
  int ok = io_queues();
  memset(pg[DATA], 0, 4096);
  if (ok == 0) ok = rd(1, 0, 1, pa[DATA], 0);
  int byte0 = pg[DATA][0];
  for (int i = 0; i < 512; i++) pg[DATA2][i] = (uint8_t)(i * 7 + 3);
  int w = cmd(1, 0x01, 1, pa[DATA2], 0, 1, 0, 0);
  memset(pg[DATA], 0, 512);
  int r = rd(1, 1, 1, pa[DATA], 0);
  int rw = w == 0 && r == 0 && memcmp(pg[DATA], pg[DATA2], 512) == 0;
  W32(0x14, 0); /* leave it disabled, for the driver to take back */
  wait_csts(1, 0);
  printf("NVME-HOSTILE oob=0x%x mmio=0x%x list=0x%x align=0x%x past=0x%x end=0x%x mdts=0x%x ns=0x%x cqinv=0x%x qid=0x%x "
    "qsize=0x%x qram=0x%x opc=0x%x db=%s cfs=%d ok=0x%x byte0=0x%02x rw=%d\n",
    oob, mmio, lst, align, past, end, mdts, ns, cqinv, qid, qsize, qram, opc, db_quiet && db_works ? "ok" : "BAD", cfs, ok, byte0, rw);
  return 0;
}
