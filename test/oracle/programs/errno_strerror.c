#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <fcntl.h>
#include <unistd.h>
/* strerror strings (glibc's own table, compiled in) and errno values from real syscalls that fail. */
int main(void) {
  char buf0[4];
  for (int e = 0; e <= 40; e++) printf("%d %s\n", e, strerror(e));
  errno = 0; int fd = open("/nonexistent/dir/file", O_RDONLY); printf("open=%d errno=%d\n", fd, errno);
  errno = 0; printf("close(-1)=%d errno=%d\n", close(-1), errno);
  errno = 0; printf("read(bad)=%zd errno=%d\n", read(9999, buf0, 1), errno);
  errno = 0; printf("write(stdin ro?)=%d\n", (int)write(-5, "x", 1) == -1 && errno == EBADF);
  errno = 0; double d = strtod("1e999", NULL); printf("strtod erange=%d %g\n", errno == ERANGE, d);
  errno = 0; d = log(-1.0); printf("log(-1) edom=%d\n", errno == EDOM);
  errno = 0; d = exp(1e5); printf("exp(1e5) erange=%d\n", errno == ERANGE);
  errno = 0; long l = strtol("99999999999999999999", NULL, 10); printf("strtol erange=%d %ld\n", errno == ERANGE, l);
  char buf[64]; int rr = strerror_r(ENOENT, buf, sizeof buf); printf("strerror_r=%d %s\n", rr, buf);
  errno = EACCES; perror("perror test");
  return 0;
}
