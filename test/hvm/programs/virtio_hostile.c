/*
 * A hostile virtio-blk driver run as root inside an HVM guest (test/hvm/disk-boot.test.ts): it takes a virtio-pci
 * block device away from Linux's driver (sysfs unbind), maps its BAR 0 (sysfs resource0), puts a split queue in a
 * page of its own memory (physical address from /proc/self/pagemap) and sends requests a correct driver never
 * sends. Each is answered by the device, never by touching memory outside the guest's RAM:
 *   oob    a data buffer in the flash (guest-physical 0x1000)            -> VIRTIO_BLK_S_IOERR (1)
 *   huge   a data buffer of 0xfffffe00 bytes (runs past the guest's RAM) -> IOERR
 *   past   a read of sectors past the disk's end                         -> IOERR
 *   loop   a descriptor chain that loops back to its head                -> DEVICE_NEEDS_RESET (status bit 0x40)
 *   head   an available ring naming descriptor 200 of 8                  -> DEVICE_NEEDS_RESET
 *   ok     after a reset, a correct read of sector 0                     -> VIRTIO_BLK_S_OK (0), the disk's bytes
 * Prints one line: "HOSTILE oob=1 huge=1 past=1 loop=0x40 head=0x40 ok=0 byte0=0x7f" (byte0: the disk's first byte).
 * Usage: virtio_hostile 0000:00:04.0
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* virtio 1.2 section 4.1.4: the capabilities give each structure's offset in the BAR. */
static volatile uint8_t *bar, *common, *isr, *notify;
static uint32_t notify_mult;

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

#define C8(o) (*(volatile uint8_t *)(common + (o)))
#define C16(o) (*(volatile uint16_t *)(common + (o)))
#define C32(o) (*(volatile uint32_t *)(common + (o)))

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
static uint8_t *page;
static uint64_t pa;
static struct desc *d;
static volatile uint16_t *avail, *used;
static uint16_t aidx;

static void setup(void) {
  C8(0x14) = 0;                      /* reset */
  while (C8(0x14) != 0) {}
  C8(0x14) = 1; C8(0x14) = 3;        /* ACKNOWLEDGE, DRIVER */
  C32(0x08) = 0; C32(0x0c) = 0;
  C32(0x08) = 1; C32(0x0c) = 1;      /* VIRTIO_F_VERSION_1 only */
  C8(0x14) = 0xb;
  if (!(C8(0x14) & 8)) { fprintf(stderr, "FEATURES_OK refused\n"); exit(2); }
  memset(page, 0, 4096);
  C16(0x16) = 0; C16(0x18) = 8;
  C32(0x20) = (uint32_t)pa; C32(0x24) = pa >> 32;                    /* descriptors at +0 */
  C32(0x28) = (uint32_t)(pa + 0x100); C32(0x2c) = (pa + 0x100) >> 32; /* available ring at +0x100 */
  C32(0x30) = (uint32_t)(pa + 0x200); C32(0x34) = (pa + 0x200) >> 32; /* used ring at +0x200 */
  C16(0x1c) = 1;
  C8(0x14) = 0xf;                    /* DRIVER_OK */
  aidx = 0;
}

/* Publishes chain `head`, rings the doorbell, reads the ISR (lowering INTx: no handler is bound). */
static void kick(uint16_t head) {
  avail[2 + aidx % 8] = head;
  __sync_synchronize();
  avail[1] = ++aidx;
  __sync_synchronize();
  *(volatile uint16_t *)(notify + C16(0x1e) * notify_mult) = 0;
  (void)*isr;
}

/* A three-descriptor request: header at +0x400, data (addr, len) device-writable, status at +0xa00. */
static int request(uint32_t type, uint64_t sector, uint64_t addr, uint32_t len) {
  uint32_t *h = (uint32_t *)(page + 0x400);
  h[0] = type; h[1] = 0; h[2] = (uint32_t)sector; h[3] = sector >> 32;
  page[0xa00] = 0xff;
  d[0] = (struct desc){ pa + 0x400, 16, 1, 1 };
  d[1] = (struct desc){ addr, len, 3, 2 };
  d[2] = (struct desc){ pa + 0xa00, 1, 2, 0 };
  kick(0);
  return *(volatile uint8_t *)(page + 0xa00);
}

int main(int argc, char **argv) {
  char path[256];
  if (argc != 2) { fprintf(stderr, "usage: %s 0000:00:SS.0\n", argv[0]); return 2; }
  wr("/sys/bus/pci/drivers/virtio-pci/unbind", argv[1]);
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/enable", argv[1]);
  wr(path, "1");
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/config", argv[1]);
  int cfd = open(path, O_RDONLY);
  uint8_t cfg[256];
  if (cfd < 0 || pread(cfd, cfg, 256, 0) != 256) die("config");
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource0", argv[1]);
  int bfd = open(path, O_RDWR | O_SYNC);
  if (bfd < 0) die("resource0");
  bar = mmap(0, 0x4000, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
  if (bar == MAP_FAILED) die("mmap BAR");
  for (int at = cfg[0x34]; at; at = cfg[at + 1]) {
    if (cfg[at] != 0x09) continue;
    uint32_t off; memcpy(&off, cfg + at + 8, 4);
    switch (cfg[at + 3]) {
      case 1: common = bar + off; break;
      case 2: notify = bar + off; memcpy(&notify_mult, cfg + at + 16, 4); break;
      case 3: isr = bar + off; break;
    }
  }
  if (!common || !notify || !isr) { fprintf(stderr, "capabilities missing\n"); return 2; }
  page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
  if (page == MAP_FAILED) die("mmap page");
  page[0] = 1;
  pa = phys(page);
  d = (struct desc *)page;
  avail = (volatile uint16_t *)(page + 0x100);
  used = (volatile uint16_t *)(page + 0x200);

  setup();
  int oob = request(0, 0, 0x1000, 512);
  int huge = request(0, 0, pa + 0x800, 0xfffffe00u);
  int past = request(0, 1ull << 40, pa + 0x800, 512);
  /* A loop: 0 -> 1 -> 0. */
  d[0] = (struct desc){ pa + 0x400, 16, 1, 1 };
  d[1] = (struct desc){ pa + 0x800, 512, 3, 0 };
  kick(0);
  int loop = C8(0x14) & 0x40;
  setup();
  kick(200);
  int head = C8(0x14) & 0x40;
  setup();
  int ok = request(0, 0, pa + 0x800, 512);
  printf("HOSTILE oob=%d huge=%d past=%d loop=0x%x head=0x%x ok=%d byte0=0x%02x used=%u\n", oob, huge, past, loop, head, ok,
    page[0x800], used[1]);
  return 0;
}
