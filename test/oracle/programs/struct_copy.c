#include "common.h"
#include <inttypes.h>
struct hfa { double a, b, c, d; };
struct hfaf { float x, y, z; };
struct mix { char c; long long l; short s; double d; int arr[7]; };
struct huge { uint64_t w[40]; };
struct small { uint8_t a; uint16_t b; };
static __attribute__((noinline)) struct hfa add_hfa(struct hfa p, struct hfa q) { struct hfa r = {p.a + q.a, p.b * q.b, p.c - q.c, p.d / q.d}; return r; }
static __attribute__((noinline)) struct hfaf scale(struct hfaf v, float k) { v.x *= k; v.y *= k; v.z *= k; return v; }
static __attribute__((noinline)) struct mix tweak(struct mix m, int k) { m.c += (char)k; m.l *= k; m.s = (short)(m.s - k); m.d += k; for (int i = 0; i < 7; i++) m.arr[i] += i * k; return m; }
static __attribute__((noinline)) struct huge rot(struct huge h) { struct huge r; for (int i = 0; i < 40; i++) r.w[i] = h.w[(i + 1) % 40] ^ (uint64_t)i; return r; }
static __attribute__((noinline)) struct small mk(int i) { struct small s = {(uint8_t)i, (uint16_t)(i * 300)}; return s; }
static __attribute__((noinline)) double many(double a, float b, int c, double d, float e, long f, double g, double h, double i, double j, double k, int l, float m, double n) {
  return a + b + c + d + e + (double)f + g + h + i + j + k + l + m + n; }
int main(void) {
  struct hfa p = {1.5, 2.5, 3.5, 4.5}, q = {0.25, 4, 1, 3};
  for (int i = 0; i < 3; i++) p = add_hfa(p, q);
  printf("hfa %a %a %a %a\n", p.a, p.b, p.c, p.d);
  struct hfaf v = {1, 2, 3}; v = scale(scale(v, 1.5f), -0.25f); printf("hfaf %a %a %a\n", (double)v.x, (double)v.y, (double)v.z);
  struct mix m; memset(&m, 0, sizeof m); m.c = 'A'; m.l = 1ll << 33; m.s = 100; m.d = 0.5; for (int i = 0; i < 7; i++) m.arr[i] = i;
  struct mix m2 = tweak(m, 3); struct mix m3 = m2; m3 = tweak(m3, -1);
  printf("mix %c %lld %d %g %d %d | %c %lld %d size=%zu\n", m2.c, m2.l, m2.s, m2.d, m2.arr[0], m2.arr[6], m3.c, m3.l, m3.s, sizeof m);
  struct huge h; for (int i = 0; i < 40; i++) h.w[i] = (uint64_t)i * 0x0101010101010101ull;
  for (int k = 0; k < 100; k++) h = rot(h);
  printf("huge %016" PRIx64 " %016" PRIx64 "\n", h.w[0], fnv(FNV0, &h, sizeof h));
  struct small arr[10]; for (int i = 0; i < 10; i++) arr[i] = mk(i * 7); struct small c2[10]; memcpy(c2, arr, sizeof arr);
  printf("small %zu %u %u %016" PRIx64 "\n", sizeof(struct small), c2[9].a, c2[9].b, fnv(FNV0, c2, sizeof c2));
  printf("many %.17g\n", many(1.1, 2.2f, 3, 4.4, 5.5f, 6, 7.7, 8.8, 9.9, 10.1, 11.11, 12, 13.13f, 14.14));
  struct hfa arr2[4] = {{1, 2, 3, 4}}; arr2[3] = arr2[0]; arr2[2] = add_hfa(arr2[3], arr2[0]); printf("arr %g %g\n", arr2[2].a, arr2[2].d);
  return 0;
}
