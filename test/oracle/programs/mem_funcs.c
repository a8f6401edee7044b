#include "common.h"
#include <stdlib.h>
#include <inttypes.h>
/* memcpy/memmove/memset/memcmp/memchr over every offset 0..31 and many lengths 0..300 */
static unsigned char src[1024], dst[1024];
static uint64_t region(uint64_t h, const unsigned char *p, size_t n) { return fnv(h, p, n); }
int main(int argc, char **argv) {
  (void)argv;
  uint64_t hc = FNV0, hm = FNV0, hs = FNV0, hp = FNV0, hx = FNV0;
  for (int i = 0; i < 1024; i++) src[i] = (unsigned char)(i * 37 + 11);
  size_t step = argc > 1 ? 1 : 3; /* lengths sampled */
  for (size_t off = 0; off < 32; off++) for (size_t len = 0; len <= 300; len += (len < 70 ? 1 : step)) {
    size_t doff = (off * 7 + len) & 31;
    memset(dst, 0xEE, 400);
    memcpy(dst + doff, src + off, len);
    hc = region(hc, dst, doff + len + 8);
    /* overlapping moves both ways */
    memcpy(dst, src, 400);
    memmove(dst + off, dst + doff, len); hm = region(hm, dst, 340 + 32);
    memmove(dst + doff, dst + off + 1, len); hm = region(hm, dst, 340 + 32);
    memset(dst + off, (int)(len & 0xFF), len); hs = region(hs, dst, 340 + 32);
    memset(dst + doff, 0, len); hs = region(hs, dst, 340 + 32);
    /* compare: equal, and with a difference at every 13th position */
    memcpy(dst + doff, src + off, len);
    int c0 = memcmp(dst + doff, src + off, len);
    int c1 = 0, c2 = 0;
    if (len) { size_t k = (len * 13) % len; dst[doff + k] ^= 0x80; c1 = memcmp(dst + doff, src + off, len); c2 = memcmp(src + off, dst + doff, len); }
    hp = mix(hp, (uint64_t)(c0 == 0) | (uint64_t)(c1 > 0) << 1 | (uint64_t)(c1 < 0) << 2 | (uint64_t)(c2 > 0) << 3);
    unsigned char want = src[off + len / 2];
    const unsigned char *r = memchr(src + off, want, len);
    hx = mix(hx, r ? (uint64_t)(r - (src + off)) : 9999);
    r = memchr(src + off, 0x100 + 3, len); hx = mix(hx, r ? (uint64_t)(r - (src + off)) : 9999);
  }
  printf("memcpy=%016" PRIx64 "\nmemmove=%016" PRIx64 "\nmemset=%016" PRIx64 "\nmemcmp=%016" PRIx64 "\nmemchr=%016" PRIx64 "\n", hc, hm, hs, hp, hx);
  /* big copies crossing pages */
  size_t big = 3 * 65536 + 123; unsigned char *a = malloc(big + 64), *b = malloc(big + 64);
  for (size_t i = 0; i < big + 64; i++) a[i] = (unsigned char)(i ^ (i >> 8));
  for (int o = 0; o < 16; o += 5) { memcpy(b + o, a + (15 - o), big); memmove(b + 1, b + o, big - 64); printf("big %d %016" PRIx64 " %d\n", o, fnv(FNV0, b, big), memcmp(a, b, big) > 0); }
  free(a); free(b);
  return 0;
}
