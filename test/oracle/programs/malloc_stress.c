#define _GNU_SOURCE
#include "common.h"
#include <stdlib.h>
#include <inttypes.h>
#define _GNU_SOURCE
#include <sys/mman.h>
/* malloc/realloc/free churn including large blocks (> 128 KiB: glibc uses mmap, realloc uses mremap) */
#define SLOTS 256
static unsigned char *p[SLOTS]; static size_t sz[SLOTS];
static void fillp(int i) { for (size_t k = 0; k < sz[i]; k += 61) p[i][k] = (unsigned char)(i + k); if (sz[i]) p[i][sz[i] - 1] = (unsigned char)i; }
static int check(int i) { for (size_t k = 0; k < sz[i]; k += 61) if (p[i][k] != (unsigned char)(i + k) && k != sz[i] - 1) return 0; return !sz[i] || p[i][sz[i] - 1] == (unsigned char)i; }
int main(void) {
  rng_seed(555); int bad = 0; uint64_t total = 0; unsigned nbig = 0;
  for (int it = 0; it < 4000; it++) {
    int i = (int)(rng32() % SLOTS); uint32_t r = rng32();
    if (p[i] && !check(i)) bad++;
    size_t n = (r & 31) == 0 ? 128 * 1024 + (r >> 8) % (384 * 1024) : (r >> 16) % 2000;
    if (n > 128 * 1024) nbig++;
    switch ((r >> 3) & 3) {
    case 0: free(p[i]); p[i] = NULL; sz[i] = 0; break;
    case 1: case 2: {
      unsigned char *q = realloc(p[i], n ? n : 1); if (!q) { bad++; break; }
      size_t keep = sz[i] < n ? sz[i] : n; p[i] = q; sz[i] = n;
      /* preserved prefix must be intact (check before refill) */
      for (size_t k = 0; k + 1 < keep; k += 61) if (q[k] != (unsigned char)(i + k)) { bad++; break; }
      fillp(i); break; }
    default: free(p[i]); p[i] = (r & 16) ? calloc(1, n) : malloc(n); sz[i] = n;
      if ((r & 16) && p[i]) for (size_t k = 0; k < n; k += 97) if (p[i][k]) { bad++; break; }
      fillp(i);
    }
    total += n;
  }
  for (int i = 0; i < SLOTS; i++) { if (p[i] && !check(i)) bad++; free(p[i]); }
  printf("bad=%d total=%" PRIu64 " big=%u\n", bad, total, nbig);
  /* one big realloc ladder */
  unsigned char *b = NULL; size_t cur = 0;
  for (size_t n = 1000; n < 6u * 1024 * 1024; n = n * 3 / 2) { b = realloc(b, n); for (size_t k = cur; k < n; k += 4096) b[k] = (unsigned char)(k >> 12); cur = n; }
  uint64_t h = FNV0; for (size_t k = 0; k < cur; k += 4096) h = mix(h, b[k]); printf("ladder %zu %016" PRIx64 "\n", cur, h); free(b);
  /* posix_memalign and aligned_alloc */
  for (size_t al = 16; al <= 65536; al *= 4) { void *q = NULL; int rc = posix_memalign(&q, al, 1000); printf("align %zu rc=%d ok=%d\n", al, rc, ((uintptr_t)q & (al - 1)) == 0); free(q); }
  /* direct mmap/munmap/mremap/mprotect */
  size_t len = 5 * 4096; unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) { printf("mmap failed\n"); return 1; }
  int zero = 1; for (size_t k = 0; k < len; k++) if (m[k]) zero = 0; memset(m, 0x5A, len);
  m = mremap(m, len, 40 * 4096, MREMAP_MAYMOVE); printf("mmap zero=%d after mremap: %d %d\n", zero, m != MAP_FAILED && m[len - 1] == 0x5A, m != MAP_FAILED && m[len] == 0);
  printf("mprotect=%d munmap=%d\n", mprotect(m, 4096, PROT_READ), munmap(m, 40 * 4096));
  return 0;
}
