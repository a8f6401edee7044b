#include "common.h"
#include <stdlib.h>
#include <inttypes.h>
struct rec { int key; char name[12]; double w; };
static int cmpi(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static int cmpr(const void *a, const void *b) { const struct rec *x = a, *y = b; if (x->key != y->key) return x->key - y->key; return strcmp(x->name, y->name); }
static int cmps(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
int main(void) {
  rng_seed(31);
  for (int n = 0; n <= 2000; n += (n < 20 ? 1 : 397)) {
    int *a = malloc(sizeof(int) * (n + 1));
    for (int i = 0; i < n; i++) a[i] = (int)(rng32() % 1000) - 500;
    qsort(a, n, sizeof(int), cmpi);
    int ok = 1; for (int i = 1; i < n; i++) if (a[i - 1] > a[i]) ok = 0;
    int found = 0; for (int k = -510; k <= 510; k += 3) if (bsearch(&k, a, n, sizeof(int), cmpi)) found++;
    printf("n=%d sorted=%d found=%d h=%016" PRIx64 "\n", n, ok, found, fnv(FNV0, a, sizeof(int) * n));
    free(a);
  }
  double d[500]; for (int i = 0; i < 500; i++) d[i] = (double)(int32_t)rng32() / 1e5; qsort(d, 500, sizeof(double), cmpd);
  printf("doubles %g %g %g\n", d[0], d[250], d[499]);
  struct rec r[300]; for (int i = 0; i < 300; i++) { r[i].key = (int)(rng32() % 20); snprintf(r[i].name, sizeof r[i].name, "n%u", rng32() % 1000); r[i].w = i; }
  qsort(r, 300, sizeof r[0], cmpr); uint64_t h = FNV0; for (int i = 0; i < 300; i++) h = fnv(h, r[i].name, strlen(r[i].name)) ^ (uint64_t)r[i].key; printf("recs %016" PRIx64 " first=%d/%s last=%d/%s\n", h, r[0].key, r[0].name, r[299].key, r[299].name);
  const char *words[] = {"pear", "apple", "fig", "banana", "kiwi", "cherry", "date", "grape", "lemon", "mango", "apple", "Zebra", ""};
  qsort(words, 13, sizeof(char *), cmps); for (int i = 0; i < 13; i++) printf("%s,", words[i]); printf("\n");
  const char *key = "kiwi"; const char **w = bsearch(&key, words, 13, sizeof(char *), cmps); printf("kiwi at %td\n", w ? w - words : -1);
  return 0;
}
