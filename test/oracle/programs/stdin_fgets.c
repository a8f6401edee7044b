#include "common.h"
#include <stdlib.h>
#include <ctype.h>
#include <inttypes.h>
/* Reads stdin (piped) with fgets: counts, reverses each line, word frequency of the first letters. */
int main(void) {
  char line[4096]; int lines = 0; size_t bytes = 0, words = 0; uint64_t h = FNV0; int first[26] = {0}; long sum = 0;
  while (fgets(line, sizeof line, stdin)) {
    size_t n = strlen(line); bytes += n; lines++; h = fnv(h, line, n);
    int inw = 0; for (size_t i = 0; i < n; i++) { if (isspace((unsigned char)line[i])) inw = 0; else { if (!inw) { words++; if (isalpha((unsigned char)line[i])) first[tolower((unsigned char)line[i]) - 'a']++; } inw = 1; } }
    sum += strtol(line, NULL, 10);
    if (n && line[n - 1] == '\n') line[--n] = 0;
    if (lines <= 20) { for (size_t i = 0; i < n / 2; i++) { char t = line[i]; line[i] = line[n - 1 - i]; line[n - 1 - i] = t; } printf("%3d|%s|\n", lines, line); }
  }
  printf("lines=%d bytes=%zu words=%zu sum=%ld hash=%016" PRIx64 " eof=%d\n", lines, bytes, words, sum, h, feof(stdin) != 0);
  for (int i = 0; i < 26; i++) if (first[i]) printf("%c=%d ", 'a' + i, first[i]); printf("\n");
  int c = getchar(); printf("after eof getchar=%d\n", c);
  return 0;
}
