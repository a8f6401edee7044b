#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
int main(int argc, char **argv) {
  static struct option lo[] = {{"verbose", no_argument, 0, 'v'}, {"name", required_argument, 0, 'n'}, {"level", optional_argument, 0, 'l'}, {0, 0, 0, 0}};
  int c, idx; opterr = 0;
  while ((c = getopt_long(argc, argv, "vn:l::x", lo, &idx)) != -1) {
    switch (c) { case 'v': printf("verbose\n"); break; case 'n': printf("name=%s\n", optarg); break; case 'l': printf("level=%s\n", optarg ? optarg : "(none)"); break; case 'x': printf("x\n"); break; default: printf("unknown option %c\n", optopt ? optopt : '?'); }
  }
  for (int i = optind; i < argc; i++) printf("arg[%d]=%s (%zu)\n", i - optind, argv[i], strlen(argv[i]));
  long total = 0; for (int i = optind; i < argc; i++) total += strtol(argv[i], NULL, 0); printf("total=%ld\n", total);
  return 0;
}
