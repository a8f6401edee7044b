#include "common.h"
#include <wchar.h>
#include <stdlib.h>
#include <inttypes.h>
int main(void) {
  const wchar_t *w = L"Hello, wide world";
  wchar_t buf[128]; wcscpy(buf, w); wcscat(buf, L"!!");
  printf("len=%zu cmp=%d chr=%td rchr=%td str=%td\n", wcslen(buf), wcscmp(buf, w) > 0, wcschr(buf, L'w') - buf, wcsrchr(buf, L'o') - buf, wcsstr(buf, L"world") - buf);
  swprintf(buf, 128, L"%d-%ls-%.3f-%x", 42, L"abc", 3.14159, 255u);
  char nb[256]; size_t n = wcstombs(nb, buf, sizeof nb); printf("swprintf->%zu '%s'\n", n, nb);
  wchar_t back[64]; size_t m = mbstowcs(back, "round trip", 64); printf("mbstowcs=%zu %d\n", m, wcscmp(back, L"round trip") == 0);
  printf("wcstol=%ld wcstod=%g\n", wcstol(L"  -12345xyz", NULL, 10), wcstod(L"6.25e-1", NULL));
  wmemset(back, L'x', 10); back[10] = 0; printf("wmemset %zu %d\n", wcslen(back), wmemcmp(back, L"xxxxxxxxxx", 10));
  printf("btowc=%d wctob=%d mblen=%d\n", (int)btowc('A'), wctob(L'z'), mblen("abc", 3));
  return 0;
}
