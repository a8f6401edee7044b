/*
 * Hostile device drivers run as root inside an HVM guest (test/hvm/disk-boot.test.ts, test/hvm/hvm-net.test.ts).
 * For a virtio-pci device it takes the device away from Linux's driver (sysfs unbind), maps its BAR 0 (sysfs
 * resource0), masks its INTx (command register bit 10, as a user-space driver without an interrupt handler
 * should: otherwise what it raises on a line shared with a bound driver reaches that driver's handler unclaimed),
 * puts split queues in pages of its own memory (physical addresses from /proc/self/pagemap) and sends requests a
 * correct driver never sends. For fw_cfg it maps the registers at the address in the device
 * tree through /dev/mem and sends DMA descriptors no firmware sends. Each is answered by the device, never by
 * touching memory outside the guest's RAM (flash=same: the firmware's bytes at 0x1000, which the requests name as a
 * buffer, read the same through /dev/mem before and after); the domain and the guest stay up (the test checks the
 * shell after it).
 *
 *   virtio_hostile blk BDF     (a virtio-blk disk)
 *     oob   a data buffer in the flash (guest-physical 0x1000)            -> VIRTIO_BLK_S_IOERR (1)
 *     huge  a data buffer of 0xfffffe00 bytes (runs past the guest's RAM) -> IOERR
 *     past  a read of sectors past the disk's end                         -> IOERR
 *     loop  a descriptor chain that loops back to its head                -> DEVICE_NEEDS_RESET (status bit 0x40)
 *     head  an available ring naming descriptor 200 of 8                  -> DEVICE_NEEDS_RESET
 *     ok    after a reset, a correct read of sector 0                     -> VIRTIO_BLK_S_OK (0), the disk's bytes
 *     prints "HOSTILE oob=1 huge=1 past=1 loop=0x40 head=0x40 ok=0 byte0=0x.. used=1 flash=same"
 *
 *   virtio_hostile rng BDF     (virtio-rng: each bad chain comes back with 0 bytes used)
 *     oob/huge/ro  a buffer in the flash, a 0xfffffe00-byte buffer, a device-readable buffer -> used length 0
 *     loop/head    as for blk                                                               -> DEVICE_NEEDS_RESET
 *     ok           after a reset, 256 bytes asked for -> 256 used; distinct: how many byte values they hold
 *     prints "RNG oob=0 huge=0 ro=0 loop=0x40 head=0x40 ok=256 distinct=N flash=same"
 *
 *   virtio_hostile net BDF     (virtio-net, queue 0 receive, 1 transmit; on a bridge whose gateway 10.0.2.2
 *                               answers ARP)
 *     tx   transmit chains with the frame in the flash, 0xfffffe00 bytes long, 2000 bytes (over the MTU), in a
 *          device-writable buffer -> each returned (used) unsent, the device live: the count of such
 *     rxoob/rxro/rxsmall  a receive buffer in the flash, device-readable, 20 bytes; an ARP request for the
 *          gateway sent -> the reply lands nowhere: the receive chain comes back with 0 bytes used
 *     rxloop/txloop/txhead  descriptor loops on either queue, a transmit head past the queue -> DEVICE_NEEDS_RESET
 *     after  after a reset, an ARP request sent and the gateway's reply received -> "arp-reply"
 *     prints "NET tx=4 rxoob=0 rxro=0 rxsmall=0 rxloop=0x40 txloop=0x40 txhead=0x40 after=arp-reply flash=same"
 *
 *   virtio_hostile fwcfg       (QEMU's fw_cfg, MMIO with DMA: docs/specs/fw_cfg.txt)
 *     sig     the data register after selecting key 0, and the DMA register's signature -> "QEMU", "QEMU CFG";
 *             the data register after selecting key 0x7fff (no such item) -> 0"
 *     ok      a DMA read of the signature -> control 0, "QEMU" in the buffer
 *     flash/far/huge  a DMA read into the flash, to 2 GiB past RAM's start, of 0xfffff000 bytes -> control 1 (ERROR)
 *     write   a DMA write (every item is read-only)                       -> ERROR
 *     bits    a control word with only undefined bits (0xe0)              -> 0 (nothing to do, as QEMU)
 *     nokey   a DMA read of key 0x7fff (no such item) into 0xaa bytes     -> 0 and zeros (as QEMU); zeros=1
 *     desc    descriptors in the flash and at 2^64-16 (nowhere to write the answer): ignored; then
 *     after   a DMA read of the file directory's count and the signature again -> control 0, "QEMU"
 *     prints "FWCFG sig=QEMU dmasig=QEMU-CFG datanokey=0 ok=0 buf=QEMU flash=1 far=1 huge=1 write=1 bits=0 nokey=0 zeros=1
 *             after=0 again=QEMU flashbytes=same"
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

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

/* A locked page of our own and its guest-physical address. */
struct page { uint8_t *va; uint64_t pa; };
static struct page new_page(void) {
  struct page p;
  p.va = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
  if (p.va == MAP_FAILED) die("mmap page");
  memset(p.va, 0, 4096);
  p.pa = phys(p.va);
  return p;
}

static void pause_ms(int ms) { struct timespec t = { 0, ms * 1000000L }; nanosleep(&t, 0); }

/* The 64 bytes of flash at guest-physical 0x1000 (the firmware's code), read through /dev/mem: the buffers the
 * hostile requests name there must leave them as they were. */
static void flash_peek(uint8_t out[64]) {
  static volatile uint8_t *flash;
  if (!flash) {
    int fd = open("/dev/mem", O_RDONLY | O_SYNC);
    if (fd < 0) die("/dev/mem");
    void *m = mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0x1000);
    if (m == MAP_FAILED) die("mmap flash");
    flash = m;
  }
  for (int i = 0; i < 64; i++) out[i] = flash[i];
}

/* ---- virtio-pci (virtio 1.2 section 4.1) ---- */

/* The capabilities give each structure's offset in BAR 0 (4.1.4). */
static volatile uint8_t *bar, *common, *isr, *notify, *devcfg;
static uint32_t notify_mult;
static char cfgpath[256];
static uint16_t cmd0;

#define C8(o) (*(volatile uint8_t *)(common + (o)))
#define C16(o) (*(volatile uint16_t *)(common + (o)))
#define C32(o) (*(volatile uint32_t *)(common + (o)))
#define QSIZE 8

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
/* Queue q's rings in a page of their own: descriptors at +0, available ring at +0x100, used ring at +0x200. */
struct queue { struct page p; struct desc *d; volatile uint16_t *avail, *used; uint16_t aidx; };
static struct queue q[2];

static void set_command(uint16_t cmd) {
  int fd = open(cfgpath, O_WRONLY);
  if (fd < 0 || pwrite(fd, &cmd, 2, 4) != 2) die("config command");
  close(fd);
}

/* Unbinds Linux's driver, enables the function with INTx masked, maps BAR 0, finds the structures. */
static void open_virtio(const char *bdf) {
  char path[256];
  wr("/sys/bus/pci/drivers/virtio-pci/unbind", bdf);
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/enable", bdf);
  wr(path, "1");
  snprintf(cfgpath, sizeof cfgpath, "/sys/bus/pci/devices/%s/config", bdf);
  int cfd = open(cfgpath, O_RDONLY);
  uint8_t cfg[256];
  if (cfd < 0 || pread(cfd, cfg, 256, 0) != 256) die("config");
  close(cfd);
  memcpy(&cmd0, cfg + 4, 2);
  set_command(cmd0 | 0x2 | 0x4 | 0x400); /* memory, bus master, INTx disable */
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource0", bdf);
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
      case 4: devcfg = bar + off; break;
    }
  }
  if (!common || !notify || !isr) { fprintf(stderr, "capabilities missing\n"); exit(2); }
  for (int k = 0; k < 2; k++) {
    q[k].p = new_page();
    q[k].d = (struct desc *)q[k].p.va;
    q[k].avail = (volatile uint16_t *)(q[k].p.va + 0x100);
    q[k].used = (volatile uint16_t *)(q[k].p.va + 0x200);
  }
}

/* Gives the device back as it was found (INTx unmasked, disabled), so Linux's driver can be bound again. */
static void close_virtio(const char *bdf) {
  char path[256];
  C8(0x14) = 0;
  set_command(cmd0 & ~0x400);
  snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/enable", bdf);
  wr(path, "0");
}

static uint8_t status(void) { return C8(0x14); }

/* Reset, VERSION_1 only, queues 0..nq-1 of QSIZE entries, DRIVER_OK. */
static void setup(int nq) {
  C8(0x14) = 0;
  while (C8(0x14) != 0) {}
  C8(0x14) = 1; C8(0x14) = 3;        /* ACKNOWLEDGE, DRIVER */
  C32(0x08) = 0; C32(0x0c) = 0;
  C32(0x08) = 1; C32(0x0c) = 1;      /* VIRTIO_F_VERSION_1 only */
  C8(0x14) = 0xb;
  if (!(C8(0x14) & 8)) { fprintf(stderr, "FEATURES_OK refused\n"); exit(2); }
  for (int k = 0; k < nq; k++) {
    uint64_t pa = q[k].p.pa;
    memset(q[k].p.va, 0, 0x400);
    q[k].aidx = 0;
    C16(0x16) = k; C16(0x18) = QSIZE;
    C32(0x20) = (uint32_t)pa; C32(0x24) = pa >> 32;
    C32(0x28) = (uint32_t)(pa + 0x100); C32(0x2c) = (pa + 0x100) >> 32;
    C32(0x30) = (uint32_t)(pa + 0x200); C32(0x34) = (pa + 0x200) >> 32;
    C16(0x1c) = 1;
  }
  C8(0x14) = 0xf;                    /* DRIVER_OK */
}

/* Publishes chain `head` on queue k and rings its doorbell; reads the ISR (clearing it: INTx is masked anyway). */
static void kick(int k, uint16_t head) {
  q[k].avail[2 + q[k].aidx % QSIZE] = head;
  __sync_synchronize();
  q[k].avail[1] = ++q[k].aidx;
  __sync_synchronize();
  C16(0x16) = k;
  *(volatile uint16_t *)(notify + C16(0x1e) * notify_mult) = k;
  (void)*isr;
}

/* Waits up to `ms` for queue k's used index to reach `idx`; returns the last used element's length, or -1. */
static int wait_used(int k, uint16_t idx, int ms) {
  for (int t = 0; t < ms; t++) {
    __sync_synchronize();
    if (q[k].used[1] == idx) {
      uint32_t *e = (uint32_t *)(q[k].p.va + 0x204 + 8 * ((idx - 1) % QSIZE));
      return (int)e[1];
    }
    if (status() & 0x40) return -1;
    pause_ms(1);
  }
  return -1;
}

/* Waits up to `ms` for DEVICE_NEEDS_RESET; returns the status bit (0x40) or 0. */
static int wait_reset(int ms) {
  for (int t = 0; t < ms && !(status() & 0x40); t++) pause_ms(1);
  return status() & 0x40;
}

/* ---- blk ---- */

/* A three-descriptor request on queue 0: header at +0x400, data (addr, len) device-writable, status at +0xa00. */
static int blk_request(uint32_t type, uint64_t sector, uint64_t addr, uint32_t len) {
  uint8_t *page = q[0].p.va;
  uint64_t pa = q[0].p.pa;
  uint32_t *h = (uint32_t *)(page + 0x400);
  h[0] = type; h[1] = 0; h[2] = (uint32_t)sector; h[3] = sector >> 32;
  page[0xa00] = 0xff;
  q[0].d[0] = (struct desc){ pa + 0x400, 16, 1, 1 };
  q[0].d[1] = (struct desc){ addr, len, 3, 2 };
  q[0].d[2] = (struct desc){ pa + 0xa00, 1, 2, 0 };
  kick(0, 0);
  return *(volatile uint8_t *)(page + 0xa00);
}

static int blk(void) {
  uint64_t pa = q[0].p.pa;
  uint8_t before[64], after[64];
  flash_peek(before);
  setup(1);
  int oob = blk_request(0, 0, 0x1000, 512);
  int huge = blk_request(0, 0, pa + 0x800, 0xfffffe00u);
  int past = blk_request(0, 1ull << 40, pa + 0x800, 512);
  /* A loop: 0 -> 1 -> 0. */
  q[0].d[0] = (struct desc){ pa + 0x400, 16, 1, 1 };
  q[0].d[1] = (struct desc){ pa + 0x800, 512, 3, 0 };
  kick(0, 0);
  int loop = status() & 0x40;
  setup(1);
  kick(0, 200);
  int head = status() & 0x40;
  setup(1);
  int ok = blk_request(0, 0, pa + 0x800, 512);
  flash_peek(after);
  printf("HOSTILE oob=%d huge=%d past=%d loop=0x%x head=0x%x ok=%d byte0=0x%02x used=%u flash=%s\n", oob, huge, past, loop, head, ok,
    q[0].p.va[0x800], q[0].used[1], memcmp(before, after, 64) == 0 ? "same" : "CHANGED");
  return 0;
}

/* ---- rng ---- */

/* One buffer (addr, len, flags) as chain 0 on queue 0; returns the used length. */
static int rng_request(uint64_t addr, uint32_t len, uint16_t flags) {
  q[0].d[0] = (struct desc){ addr, len, flags, 0 };
  kick(0, 0);
  return wait_used(0, q[0].aidx, 1000);
}

static int rng(void) {
  uint64_t pa = q[0].p.pa;
  uint8_t *buf = q[0].p.va + 0x800;
  uint8_t before[64], after[64];
  flash_peek(before);
  setup(1);
  int oob = rng_request(0x1000, 64, 2);
  int huge = rng_request(pa + 0x800, 0xfffffe00u, 2);
  int ro = rng_request(pa + 0x800, 64, 0);
  q[0].d[0] = (struct desc){ pa + 0x800, 64, 3, 1 };
  q[0].d[1] = (struct desc){ pa + 0x900, 64, 3, 0 };
  kick(0, 0);
  int loop = status() & 0x40;
  setup(1);
  kick(0, 200);
  int head = status() & 0x40;
  setup(1);
  memset(buf, 0, 256);
  int ok = rng_request(pa + 0x800, 256, 2);
  int seen[256] = { 0 }, distinct = 0;
  for (int i = 0; i < 256; i++) if (!seen[buf[i]]++) distinct++;
  flash_peek(after);
  printf("RNG oob=%d huge=%d ro=%d loop=0x%x head=0x%x ok=%d distinct=%d flash=%s\n", oob, huge, ro, loop, head, ok, distinct,
    memcmp(before, after, 64) == 0 ? "same" : "CHANGED");
  return 0;
}

/* ---- net ---- */

/* Buffers in a page of their own: the transmit header at +0, the frame at +0x40, receive buffers from +0x800. */
static struct page nb;
static uint8_t mac[6];

/* An ARP request from us (10.0.2.15) for the gateway (10.0.2.2) in the transmit page: 12-byte header + 42. */
static void arp_frame(void) {
  uint8_t *h = nb.va, *f = nb.va + 0x40;
  static const uint8_t ip_us[4] = { 10, 0, 2, 15 }, ip_gw[4] = { 10, 0, 2, 2 };
  memset(h, 0, 12);
  memset(f, 0xff, 6); memcpy(f + 6, mac, 6); f[12] = 0x08; f[13] = 0x06;
  f[14] = 0; f[15] = 1; f[16] = 0x08; f[17] = 0; f[18] = 6; f[19] = 4; f[20] = 0; f[21] = 1;
  memcpy(f + 22, mac, 6); memcpy(f + 28, ip_us, 4); memset(f + 32, 0, 6); memcpy(f + 38, ip_gw, 4);
}

/* A transmit chain: the header, then the frame's buffer (addr, len, flags); returns whether it was used. */
static int tx(uint64_t addr, uint32_t len, uint16_t flags) {
  q[1].d[0] = (struct desc){ nb.pa, 12, 1, 1 };
  q[1].d[1] = (struct desc){ addr, len, flags, 0 };
  kick(1, 0);
  return wait_used(1, q[1].aidx, 1000) >= 0 && !(status() & 0x40);
}

/* Posts one receive buffer (addr, len, flags) as chain 2, sends an ARP request for the gateway, waits for the
 * receive chain to come back; returns its used length (-1: none within 20 s). */
static int rx_once(uint64_t addr, uint32_t len, uint16_t flags) {
  q[0].d[2] = (struct desc){ addr, len, flags, 0 };
  kick(0, 2);
  arp_frame();
  tx(nb.pa + 0x40, 42, 0);
  return wait_used(0, q[0].aidx, 20000);
}

/* Receives until the gateway's ARP reply comes (other frames are posted again); "arp-reply" or "none". */
static const char *rx_reply(void) {
  for (int tries = 0; tries < 10; tries++) {
    memset(nb.va + 0x800, 0, 2048);
    int n = rx_once(nb.pa + 0x800, 2048, 2);
    const uint8_t *f = nb.va + 0x800 + 12;
    if (n >= 12 + 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 && f[28] == 10 && f[29] == 0 && f[30] == 2 && f[31] == 2 &&
        memcmp(f, mac, 6) == 0)
      return "arp-reply";
    if (status() & 0x40) break;
  }
  return "none";
}

static int net(void) {
  if (!devcfg) { fprintf(stderr, "no device configuration\n"); return 2; }
  for (int i = 0; i < 6; i++) mac[i] = devcfg[i];
  uint8_t before[64], after_flash[64];
  flash_peek(before);
  nb = new_page();
  setup(2);
  arp_frame();
  /* Transmit chains a correct driver never sends: each comes back unsent, the device stays live. */
  int txn = tx(0x1000, 42, 0) + tx(nb.pa + 0x40, 0xfffffe00u, 0) + tx(nb.pa + 0x40, 2000, 0) + tx(nb.pa + 0x40, 42, 2);
  int rxoob = rx_once(0x1000, 2048, 2);
  int rxro = rx_once(nb.pa + 0x800, 2048, 0);
  int rxsmall = rx_once(nb.pa + 0x800, 20, 2);
  /* A receive loop: found when the next frame comes. */
  q[0].d[3] = (struct desc){ nb.pa + 0x800, 1024, 3, 4 };
  q[0].d[4] = (struct desc){ nb.pa + 0xc00, 1024, 3, 3 };
  kick(0, 3);
  arp_frame();
  tx(nb.pa + 0x40, 42, 0);
  int rxloop = wait_reset(20000);
  setup(2);
  q[1].d[0] = (struct desc){ nb.pa, 12, 1, 1 };
  q[1].d[1] = (struct desc){ nb.pa + 0x40, 42, 1, 0 };
  kick(1, 0);
  int txloop = status() & 0x40;
  setup(2);
  kick(1, 200);
  int txhead = status() & 0x40;
  setup(2);
  const char *after = rx_reply();
  flash_peek(after_flash);
  printf("NET tx=%d rxoob=%d rxro=%d rxsmall=%d rxloop=0x%x txloop=0x%x txhead=0x%x after=%s flash=%s\n", txn, rxoob, rxro, rxsmall,
    rxloop, txloop, txhead, after, memcmp(before, after_flash, 64) == 0 ? "same" : "CHANGED");
  return 0;
}

/* ---- fw_cfg ---- */

static volatile uint8_t *fw;
static struct page fp;

/* The fw_cfg node's base from the device tree (/proc/device-tree/fw-cfg@…/reg: two cells address, two size). */
static uint64_t fwcfg_base(void) {
  DIR *dir = opendir("/proc/device-tree");
  struct dirent *e;
  char path[300];
  if (!dir) die("/proc/device-tree");
  while ((e = readdir(dir)) != 0) {
    if (strncmp(e->d_name, "fw-cfg@", 7) != 0) continue;
    snprintf(path, sizeof path, "/proc/device-tree/%s/reg", e->d_name);
    uint8_t r[16];
    int fd = open(path, O_RDONLY);
    if (fd < 0 || read(fd, r, 16) != 16) die(path);
    close(fd);
    closedir(dir);
    uint64_t a = 0;
    for (int i = 0; i < 8; i++) a = (a << 8) | r[i];
    return a;
  }
  fprintf(stderr, "no fw-cfg node in the device tree\n");
  exit(2);
}

/* Starts the DMA transfer whose descriptor is at `desc` (big-endian halves; the low half's write starts it). */
static void fw_dma_at(uint64_t desc) {
  *(volatile uint32_t *)(fw + 0x10) = __builtin_bswap32((uint32_t)(desc >> 32));
  __sync_synchronize();
  *(volatile uint32_t *)(fw + 0x14) = __builtin_bswap32((uint32_t)desc);
  __sync_synchronize();
}

/* A DMA transfer described in our page (descriptor at +0: be32 control, be32 length, be64 address); returns the
 * control word the device wrote back. */
static uint32_t fw_dma(uint32_t control, uint32_t length, uint64_t address) {
  uint32_t *d = (uint32_t *)fp.va;
  d[0] = __builtin_bswap32(control); d[1] = __builtin_bswap32(length);
  d[2] = __builtin_bswap32((uint32_t)(address >> 32)); d[3] = __builtin_bswap32((uint32_t)address);
  __sync_synchronize();
  fw_dma_at(fp.pa);
  return __builtin_bswap32(*(volatile uint32_t *)fp.va);
}

static int fwcfg(void) {
  uint64_t base = fwcfg_base();
  int mfd = open("/dev/mem", O_RDWR | O_SYNC);
  if (mfd < 0) die("/dev/mem");
  uint8_t *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, base & ~4095ull);
  if (m == MAP_FAILED) die("mmap fw_cfg");
  fw = m + (base & 4095);
  fp = new_page();
  char *buf = (char *)fp.va + 0x800;
  /* The traditional interface: select key 0 (big-endian selector), read the data register byte by byte. */
  char sig[5] = { 0 }, dmasig[9] = { 0 };
  *(volatile uint16_t *)(fw + 8) = __builtin_bswap16(0);
  for (int i = 0; i < 4; i++) sig[i] = *(volatile char *)fw;
  /* A key with no item through the data register reads zeros. */
  *(volatile uint16_t *)(fw + 8) = __builtin_bswap16(0x7fff);
  uint32_t datanokey = *(volatile uint32_t *)fw;
  uint64_t s = *(volatile uint64_t *)(fw + 0x10);
  memcpy(dmasig, &s, 8);
  for (int i = 0; i < 8; i++) if (dmasig[i] == ' ') dmasig[i] = '-';
  /* DMA: SELECT (key in bits 31-16) 0x08, READ 0x02, SKIP 0x04, WRITE 0x10; ERROR 0x01 comes back. */
  uint8_t before[64], after_flash[64];
  flash_peek(before);
  memset(buf, 0, 16);
  uint32_t ok = fw_dma(0x0a, 4, fp.pa + 0x800);
  char okbuf[5] = { 0 };
  memcpy(okbuf, buf, 4);
  uint32_t flash = fw_dma(0x0a, 4, 0x1000);
  uint32_t far = fw_dma(0x0a, 4096, 0x40000000ull + 0x80000000ull);
  uint32_t huge = fw_dma(0x0a, 0xfffff000u, fp.pa + 0x800);
  uint32_t wrt = fw_dma(0x18, 4, fp.pa + 0x800);
  uint32_t bits = fw_dma(0xe0, 4, fp.pa + 0x800);
  memset(buf, 0xaa, 16);
  uint32_t nokey = fw_dma(0x7fff0000u | 0x0a, 16, fp.pa + 0x800);
  int zeros = 1;
  for (int i = 0; i < 16; i++) if (buf[i] != 0) zeros = 0;
  /* Descriptors the device cannot answer: in the flash, and at the top of the address space. */
  fw_dma_at(0x1000);
  fw_dma_at(0xfffffffffffffff0ull);
  /* It serves again: the file directory's count, then the signature. */
  uint32_t after = fw_dma(0x19 << 16 | 0x0a, 4, fp.pa + 0x800);
  memset(buf, 0, 16);
  after |= fw_dma(0x0a, 4, fp.pa + 0x800);
  char again[5] = { 0 };
  memcpy(again, buf, 4);
  flash_peek(after_flash);
  printf("FWCFG sig=%s dmasig=%s datanokey=%u ok=%u buf=%s flash=%u far=%u huge=%u write=%u bits=%u nokey=%u zeros=%d after=%u again=%s flashbytes=%s\n",
    sig, dmasig, datanokey, ok, okbuf, flash, far, huge, wrt, bits, nokey, zeros, after, again,
    memcmp(before, after_flash, 64) == 0 ? "same" : "CHANGED");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "fwcfg") == 0) return fwcfg();
  if (argc != 3) { fprintf(stderr, "usage: %s blk|rng|net 0000:00:SS.0 | fwcfg\n", argv[0]); return 2; }
  int r;
  open_virtio(argv[2]);
  if (strcmp(argv[1], "blk") == 0) r = blk();
  else if (strcmp(argv[1], "rng") == 0) r = rng();
  else if (strcmp(argv[1], "net") == 0) r = net();
  else { fprintf(stderr, "unknown device %s\n", argv[1]); return 2; }
  close_virtio(argv[2]);
  fflush(stdout);
  return r;
}
