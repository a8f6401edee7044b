#include "common.h"
#include <inttypes.h>
#include <stdlib.h>
static const uint32_t K[64] = {0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2};
#define R(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
struct ctx { uint32_t h[8]; unsigned char blk[64]; size_t n; uint64_t len; };
static void comp(struct ctx *c, const unsigned char *p) {
  uint32_t w[64]; for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) w[i] = w[i - 16] + (R(w[i - 15], 7) ^ R(w[i - 15], 18) ^ (w[i - 15] >> 3)) + w[i - 7] + (R(w[i - 2], 17) ^ R(w[i - 2], 19) ^ (w[i - 2] >> 10));
  uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
  for (int i = 0; i < 64; i++) { uint32_t t1 = h + (R(e, 6) ^ R(e, 11) ^ R(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]; uint32_t t2 = (R(a, 2) ^ R(a, 13) ^ R(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc)); h = g; g = f; f = e; e = d + t1; d = cc; cc = b; b = a; a = t1 + t2; }
  c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d; c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}
static void init(struct ctx *c) { static const uint32_t iv[8] = {0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19}; memcpy(c->h, iv, 32); c->n = 0; c->len = 0; }
static void upd(struct ctx *c, const unsigned char *p, size_t n) { c->len += n; while (n) { size_t k = 64 - c->n < n ? 64 - c->n : n; memcpy(c->blk + c->n, p, k); c->n += k; p += k; n -= k; if (c->n == 64) { comp(c, c->blk); c->n = 0; } } }
static void fin(struct ctx *c, char *hex) { uint64_t bits = c->len * 8; unsigned char pad = 0x80; upd(c, &pad, 1); pad = 0; while (c->n != 56) upd(c, &pad, 1); unsigned char l[8]; for (int i = 0; i < 8; i++) l[i] = (unsigned char)(bits >> (56 - 8 * i)); upd(c, l, 8); for (int i = 0; i < 8; i++) sprintf(hex + 8 * i, "%08x", c->h[i]); }
int main(void) {
  const char *tv[] = {"", "abc", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "The quick brown fox jumps over the lazy dog"};
  char hex[65]; struct ctx c;
  for (int i = 0; i < 4; i++) { init(&c); upd(&c, (const unsigned char *)tv[i], strlen(tv[i])); fin(&c, hex); printf("%s  \"%s\"\n", hex, tv[i]); }
  init(&c); unsigned char a[1000]; memset(a, 'a', sizeof a); for (int i = 0; i < 100; i++) upd(&c, a, 1000); fin(&c, hex); printf("%s  100000 a\n", hex);
  for (size_t n = 0; n < 200; n += 13) { init(&c); for (size_t k = 0; k < n; k++) { unsigned char b = (unsigned char)(k * k); upd(&c, &b, 1); } fin(&c, hex); printf("%3zu %s\n", n, hex); }
  return 0;
}
