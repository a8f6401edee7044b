#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void bye(void) { printf("atexit handler ran\n"); }
/* argv[1]: exit code; argv[2]: how ("exit", "return", "_exit", "stderr") */
int main(int argc, char **argv) {
  int code = argc > 1 ? atoi(argv[1]) : 0; const char *how = argc > 2 ? argv[2] : "exit";
  atexit(bye);
  printf("argc=%d", argc); for (int i = 0; i < argc; i++) printf(" [%s]", i == 0 ? "prog" : argv[i]); printf("\n");
  fprintf(stderr, "stderr line for code %d\n", code);
  if (!strcmp(how, "_exit")) { fflush(stdout); _exit(code); }
  if (!strcmp(how, "return")) return code;
  if (!strcmp(how, "stderr")) { for (int i = 0; i < 100; i++) fprintf(stderr, "err %d\n", i); }
  exit(code);
}
