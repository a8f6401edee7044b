#include "common.h"
#include <inttypes.h>
static __attribute__((noinline)) uint32_t big(uint32_t x, uint32_t k) {
  switch (k) {
#define C(n) case n: return x * (n * 2 + 1) + (n ^ 0x5A);
  C(0) C(1) C(2) C(3) C(4) C(5) C(6) C(7) C(8) C(9) C(10) C(11) C(12) C(13) C(14) C(15) C(16) C(17) C(18) C(19) C(20) C(21) C(22) C(23) C(24) C(25) C(26) C(27) C(28) C(29) C(30) C(31)
  C(32) C(33) C(34) C(35) C(36) C(37) C(38) C(39) C(40) C(41) C(42) C(43) C(44) C(45) C(46) C(47) C(48) C(49) C(50) C(51) C(52) C(53) C(54) C(55) C(56) C(57) C(58) C(59) C(60) C(61) C(62) C(63)
  C(100) C(101) C(102) C(103) C(104) C(105) C(106) C(107) C(108) C(109) C(110) C(111) C(112) C(113) C(114) C(115) C(116) C(117) C(118) C(119) C(120) C(121) C(122) C(123) C(124) C(125) C(126) C(127)
  C(200) C(300) C(1000) C(4096) C(65535)
  default: return x ^ k;
  }
}
static __attribute__((noinline)) const char *name(int c) {
  switch (c) { case 'a': return "alpha"; case 'b': return "bravo"; case 'c': return "charlie"; case 'd': return "delta"; case 'e': return "echo"; case 'f': return "foxtrot";
  case 'g': return "golf"; case 'h': return "hotel"; case 'i': return "india"; case 'j': return "juliet"; case 'k': return "kilo"; case 'l': return "lima"; default: return "?"; }
}
/* a state machine recognising C-style comments, strings and numbers */
static void lex(const char *s, int *counts) {
  enum { NORM, SLASH, LINE, BLOCK, STAR, STR, ESC, NUM } st = NORM;
  for (; *s; s++) {
    char c = *s;
    switch (st) {
    case NORM: if (c == '/') st = SLASH; else if (c == '"') st = STR; else if (c >= '0' && c <= '9') { st = NUM; counts[3]++; } break;
    case SLASH: if (c == '/') { st = LINE; counts[0]++; } else if (c == '*') { st = BLOCK; counts[1]++; } else st = NORM; break;
    case LINE: if (c == '\n') st = NORM; break;
    case BLOCK: if (c == '*') st = STAR; break;
    case STAR: st = c == '/' ? NORM : c == '*' ? STAR : BLOCK; break;
    case STR: if (c == '\\') st = ESC; else if (c == '"') { st = NORM; counts[2]++; } break;
    case ESC: st = STR; break;
    case NUM: if (!(c >= '0' && c <= '9') && c != '.') st = NORM; break;
    }
  }
}
int main(void) {
  uint64_t h = FNV0;
  for (uint32_t k = 0; k < 70000; k += (k < 300 ? 1 : 97)) h = mix(h, big(OPAQUE(k) * 3 + 1, k));
  h = mix(h, big(5, 65535)); h = mix(h, big(5, 4096));
  printf("big=%016" PRIx64 "\n", h);
  for (int c = '`'; c <= 'm'; c++) printf("%s ", name(c)); printf("\n");
  int counts[4] = {0};
  const char *src = "int x = 42; // answer\n/* block ** comment */ char *s = \"str\\\"ing\"; /*/ tricky */ float f = 3.14; // end\n\"a\" \"b\" 7 8 9";
  for (int i = 0; i < 200; i++) lex(src, counts);
  printf("line=%d block=%d str=%d num=%d\n", counts[0], counts[1], counts[2], counts[3]);
  return 0;
}
