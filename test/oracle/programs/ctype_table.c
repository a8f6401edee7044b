#include "common.h"
#include <ctype.h>
#include <stdlib.h>
#include <locale.h>
int main(void) {
  setlocale(LC_ALL, "C");
  for (int c = -1; c < 256; c++) {
    unsigned m = !!isalnum(c) | !!isalpha(c) << 1 | !!iscntrl(c) << 2 | !!isdigit(c) << 3 | !!isgraph(c) << 4 | !!islower(c) << 5 | !!isprint(c) << 6 | !!ispunct(c) << 7 | !!isspace(c) << 8 | !!isupper(c) << 9 | !!isxdigit(c) << 10 | !!isblank(c) << 11;
    printf("%d:%03x:%d:%d%c", c, m, toupper(c), tolower(c), (c & 7) == 7 ? '\n' : ' ');
  }
  printf("\n");
  return 0;
}
