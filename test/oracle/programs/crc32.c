#include "common.h"
#include <inttypes.h>
#include <stdlib.h>
static uint32_t table[256];
static void mk(void) { for (uint32_t i = 0; i < 256; i++) { uint32_t c = i; for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1; table[i] = c; } }
static uint32_t crc_tab(uint32_t c, const unsigned char *p, size_t n) { c = ~c; while (n--) c = table[(c ^ *p++) & 0xFF] ^ (c >> 8); return ~c; }
static uint32_t crc_bit(uint32_t c, const unsigned char *p, size_t n) { c = ~c; while (n--) { c ^= *p++; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1))); } return ~c; } /* CRC32C */
static uint16_t crc16(const unsigned char *p, size_t n) { uint16_t c = 0xFFFF; while (n--) { c ^= (uint16_t)(*p++ << 8); for (int k = 0; k < 8; k++) c = c & 0x8000 ? (uint16_t)(c << 1 ^ 0x1021) : (uint16_t)(c << 1); } return c; }
static uint32_t adler(const unsigned char *p, size_t n) { uint32_t a = 1, b = 0; while (n--) { a = (a + *p++) % 65521; b = (b + a) % 65521; } return b << 16 | a; }
int main(void) {
  mk();
  const char *s = "The quick brown fox jumps over the lazy dog";
  printf("crc32=%08x crc32c=%08x crc16=%04x adler=%08x\n", crc_tab(0, (const unsigned char *)s, strlen(s)), crc_bit(0, (const unsigned char *)s, strlen(s)), crc16((const unsigned char *)"123456789", 9), adler((const unsigned char *)s, strlen(s)));
  size_t n = 1 << 17; unsigned char *buf = malloc(n); rng_seed(4); for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)rng32();
  uint32_t c = 0; for (size_t off = 0; off < n; off += 8192) c = crc_tab(c, buf + off, 8192);
  printf("128KiB crc32=%08x whole=%08x crc32c(16K)=%08x adler=%08x\n", c, crc_tab(0, buf, n), crc_bit(0, buf, 16384), adler(buf, n));
  free(buf);
  return 0;
}
