/* The README's run-user example: a static arm64 program built with aarch64-linux-gnu-gcc, run on Xeno's CPU. */
#include <stdio.h>

int main(void) {
  printf("hello from an arm64 program\n");
  return 0;
}
