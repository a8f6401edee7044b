#include "common.h"
#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <errno.h>
#include <inttypes.h>
/* argv[1] is an empty temporary directory. Never print its path. */
int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: stdio_file DIR\n"); return 2; }
  if (chdir(argv[1]) != 0) { perror("chdir"); return 2; }
  FILE *f = fopen("data.bin", "wb+");
  if (!f) { perror("fopen"); return 1; }
  unsigned char buf[10000]; for (int i = 0; i < 10000; i++) buf[i] = (unsigned char)(i * 31 + (i >> 7));
  printf("fwrite=%zu\n", fwrite(buf, 1, sizeof buf, f));
  printf("ftell=%ld\n", ftell(f));
  printf("fseek=%d ftell=%ld\n", fseek(f, 1234, SEEK_SET), ftell(f));
  unsigned char rd[100]; printf("fread=%zu match=%d\n", fread(rd, 1, 100, f), memcmp(rd, buf + 1234, 100) == 0);
  fseek(f, -10, SEEK_END); printf("end-10 ftell=%ld fread=%zu eof=%d\n", ftell(f), fread(rd, 1, 100, f), feof(f) != 0);
  clearerr(f); fseek(f, 5000, SEEK_SET); fputs("HELLO", f); fseek(f, 20000, SEEK_SET); fputc('Z', f);
  rewind(f); size_t tot = 0; uint64_t h = FNV0; int n; while ((n = (int)fread(rd, 1, 77, f)) > 0) { tot += (size_t)n; h = fnv(h, rd, (size_t)n); }
  printf("total=%zu hash=%016" PRIx64 "\n", tot, h);
  fclose(f);
  struct stat st; printf("stat=%d size=%lld reg=%d\n", stat("data.bin", &st), (long long)st.st_size, S_ISREG(st.st_mode));
  f = fopen("text.txt", "w"); for (int i = 0; i < 50; i++) fprintf(f, "line %d: %s %.3f\n", i, i % 3 ? "foo" : "barbaz", i / 7.0); fclose(f);
  f = fopen("text.txt", "a"); fputs("appended\n", f); fclose(f);
  f = fopen("text.txt", "r"); char line[128]; int lines = 0; size_t chars = 0; while (fgets(line, sizeof line, f)) { lines++; chars += strlen(line); if (lines % 10 == 1) printf("> %s", line); } fclose(f);
  printf("lines=%d chars=%zu\n", lines, chars);
  f = fopen("text.txt", "r"); int a; char w[16]; float x; int got = fscanf(f, "line %d: %15s %f", &a, w, &x); printf("fscanf=%d %d %s %.3f\n", got, a, w, (double)x); fclose(f);
  int fd = open("raw.dat", O_CREAT | O_RDWR | O_TRUNC, 0644); printf("write=%zd ", write(fd, "abcdefghij", 10)); printf("lseek=%lld ", (long long)lseek(fd, 3, SEEK_SET));
  char r3[4] = {0}; printf("read=%zd %s ", read(fd, r3, 3), r3); printf("pread=%zd ", pread(fd, r3, 2, 8)); printf("%c%c ftruncate=%d ", r3[0], r3[1], ftruncate(fd, 4));
  fstat(fd, &st); printf("size=%lld close=%d\n", (long long)st.st_size, close(fd));
  printf("rename=%d ", rename("raw.dat", "raw2.dat")); printf("access=%d/%d ", access("raw2.dat", F_OK), access("raw.dat", F_OK) == -1 && errno == ENOENT);
  printf("unlink=%d mkdir=%d rmdir=%d\n", unlink("raw2.dat"), mkdir("sub", 0755), rmdir("sub"));
  f = fopen("missing/x", "r"); printf("missing=%d errno=%d\n", f == NULL, errno);
  unlink("data.bin"); unlink("text.txt");
  FILE *m = tmpfile(); fprintf(m, "%d", 12345); rewind(m); int y = 0; fscanf(m, "%d", &y); fclose(m); printf("tmpfile %d\n", y);
  setvbuf(stdout, NULL, _IONBF, 0); printf("unbuffered "); fflush(stdout); fprintf(stderr, "to stderr\n"); printf("done\n");
  return 0;
}
