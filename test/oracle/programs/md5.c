#include "common.h"
#include <inttypes.h>
#include <stdlib.h>
static const uint32_t S[64] = {7,12,17,22,7,12,17,22,7,12,17,22,7,12,17,22,5,9,14,20,5,9,14,20,5,9,14,20,5,9,14,20,4,11,16,23,4,11,16,23,4,11,16,23,4,11,16,23,6,10,15,21,6,10,15,21,6,10,15,21,6,10,15,21};
static uint32_t T[64];
static void md5(const unsigned char *msg, size_t len, unsigned char out[16]) {
  uint32_t h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476;
  size_t total = ((len + 8) / 64 + 1) * 64; unsigned char *m = calloc(total, 1); memcpy(m, msg, len); m[len] = 0x80;
  uint64_t bits = (uint64_t)len * 8; memcpy(m + total - 8, &bits, 8);
  for (size_t off = 0; off < total; off += 64) {
    uint32_t w[16]; memcpy(w, m + off, 64);
    uint32_t a = h0, b = h1, c = h2, d = h3;
    for (int i = 0; i < 64; i++) {
      uint32_t f; int g;
      if (i < 16) { f = (b & c) | (~b & d); g = i; } else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; } else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; } else { f = c ^ (b | ~d); g = (7 * i) % 16; }
      uint32_t t = d; d = c; c = b; uint32_t x = a + f + T[i] + w[g]; b = b + ((x << S[i]) | (x >> (32 - S[i]))); a = t;
    }
    h0 += a; h1 += b; h2 += c; h3 += d;
  }
  memcpy(out, &h0, 4); memcpy(out + 4, &h1, 4); memcpy(out + 8, &h2, 4); memcpy(out + 12, &h3, 4); free(m);
}
int main(void) {
  /* T[i] = floor(abs(sin(i+1)) * 2^32) computed with libm, as in RFC 1321 */
  for (int i = 0; i < 64; i++) { extern double sin(double), fabs(double); T[i] = (uint32_t)(fabs(sin(i + 1.0)) * 4294967296.0); }
  const char *tv[] = {"", "a", "abc", "message digest", "abcdefghijklmnopqrstuvwxyz", "12345678901234567890123456789012345678901234567890123456789012345678901234567890"};
  unsigned char d[16];
  for (int i = 0; i < 6; i++) { md5((const unsigned char *)tv[i], strlen(tv[i]), d); for (int k = 0; k < 16; k++) printf("%02x", d[k]); printf("  %s\n", tv[i]); }
  size_t n = 40000; unsigned char *b = malloc(n); for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(i * 2654435761u >> 24);
  md5(b, n, d); for (int k = 0; k < 16; k++) printf("%02x", d[k]); printf("  40000 bytes\n"); free(b);
  return 0;
}
