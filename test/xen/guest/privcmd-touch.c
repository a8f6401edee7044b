/*
 * For test/xen/balloon.test.ts: reaches a frame the guest's balloon gave back, with nothing but the stock
 * kernel's privcmd driver (drivers/xen/privcmd.c, xlate_mmu.c). On an auto-translated guest (Arm),
 * IOCTL_PRIVCMD_MMAPBATCH_V2 takes a page out of the balloon (xen_alloc_unpopulated_pages →
 * xen_alloc_ballooned_pages when CONFIG_XEN_UNPOPULATED_ALLOC is off, as in Debian's arm64 kernel), asks Xen
 * to put another domain's frame there (XENMEM_add_to_physmap_range, XENMAPSPACE_gmfn_foreign) and, when the
 * hypercall itself succeeds, points the user's PTE at that page even if the entry failed ("userspace may
 * decide to continue"). A DomU may not map Domain-0's frames, so the entry fails and this program holds a
 * mapping of a frame that is not in its domain's physical address space. (In a DomU, Debian's privcmd serves
 * only the domain in its XenStore "target" node unless the module is loaded with unrestricted=1, as the test does.)
 *
 * Usage: privcmd-touch read|write. Prints PRIVCMD-IOCTL (rc, errno, the entry's error) and PRIVCMD-VA, then
 * reads (or writes) the page; on Xen the access is a stage-2 fault, Xen injects a data abort and Linux kills
 * the program, so PRIVCMD-READ / PRIVCMD-WROTE must never be printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* include/uapi/xen/privcmd.h */
struct privcmd_mmapbatch_v2 {
  unsigned int num;
  uint16_t dom;
  uint64_t addr;
  const uint64_t *arr;
  int *err;
};
#define IOCTL_PRIVCMD_MMAPBATCH_V2 _IOC(_IOC_NONE, 'P', 4, sizeof(struct privcmd_mmapbatch_v2))

int main(int argc, char **argv) {
  if (argc != 2 || (strcmp(argv[1], "read") != 0 && strcmp(argv[1], "write") != 0)) {
    fprintf(stderr, "usage: privcmd-touch read|write\n");
    return 2;
  }
  int fd = open("/dev/xen/privcmd", O_RDWR);
  if (fd < 0) { perror("open /dev/xen/privcmd"); return 3; }
  volatile uint64_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 4; }
  uint64_t gfn = 1; /* any frame of Domain-0 */
  int err = 0x5555;
  struct privcmd_mmapbatch_v2 m = { 1, 0, (uint64_t)(uintptr_t)p, &gfn, &err };
  int rc = ioctl(fd, IOCTL_PRIVCMD_MMAPBATCH_V2, &m);
  printf("PRIVCMD-IOCTL rc=%d errno=%d err=%d\n", rc, rc < 0 ? errno : 0, err);
  printf("PRIVCMD-VA=%llx\n", (unsigned long long)(uintptr_t)p);
  fflush(stdout);
  if (argv[1][0] == 'r') {
    printf("PRIVCMD-READ=%llx\n", (unsigned long long)p[0]);
  } else {
    p[0] = 0x0bad0bad0bad0badULL;
    printf("PRIVCMD-WROTE\n");
  }
  return 0;
}
