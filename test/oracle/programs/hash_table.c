#include "common.h"
#include <stdlib.h>
#include <inttypes.h>
/* Chained hash table of strings with insert/lookup/delete and resizing. */
struct ent { char *key; int val; struct ent *next; };
static struct ent **tab; static size_t cap = 8, cnt;
static uint32_t hs(const char *s) { uint32_t h = 5381; while (*s) h = h * 33 ^ (unsigned char)*s++; return h; }
static void grow(void) { size_t nc = cap * 2; struct ent **nt = calloc(nc, sizeof *nt); for (size_t i = 0; i < cap; i++) for (struct ent *e = tab[i], *n; e; e = n) { n = e->next; size_t k = hs(e->key) & (nc - 1); e->next = nt[k]; nt[k] = e; } free(tab); tab = nt; cap = nc; }
static struct ent *find(const char *k) { for (struct ent *e = tab[hs(k) & (cap - 1)]; e; e = e->next) if (!strcmp(e->key, k)) return e; return NULL; }
static void put(const char *k, int v) { struct ent *e = find(k); if (e) { e->val += v; return; } if (cnt * 4 >= cap * 3) grow(); e = malloc(sizeof *e); e->key = strdup(k); e->val = v; size_t i = hs(k) & (cap - 1); e->next = tab[i]; tab[i] = e; cnt++; }
static int del(const char *k) { struct ent **pp = &tab[hs(k) & (cap - 1)]; for (; *pp; pp = &(*pp)->next) if (!strcmp((*pp)->key, k)) { struct ent *e = *pp; *pp = e->next; free(e->key); free(e); cnt--; return 1; } return 0; }
int main(void) {
  tab = calloc(cap, sizeof *tab); rng_seed(123); char k[32];
  for (int i = 0; i < 20000; i++) { snprintf(k, sizeof k, "k%u", rng32() % 5000); put(k, i & 15); }
  printf("count=%zu cap=%zu\n", cnt, cap);
  int dels = 0; for (int i = 0; i < 5000; i += 3) { snprintf(k, sizeof k, "k%d", i); dels += del(k); }
  long long sum = 0; size_t maxchain = 0; for (size_t i = 0; i < cap; i++) { size_t l = 0; for (struct ent *e = tab[i]; e; e = e->next) { sum += e->val; l++; } if (l > maxchain) maxchain = l; }
  printf("dels=%d count=%zu sum=%lld maxchain=%zu\n", dels, cnt, sum, maxchain);
  const char *probe[] = {"k1", "k2", "k3", "k4999", "k0", "nope"}; for (int i = 0; i < 6; i++) { struct ent *e = find(probe[i]); printf("%s=%d ", probe[i], e ? e->val : -1); } printf("\n");
  for (size_t i = 0; i < cap; i++) for (struct ent *e = tab[i], *n; e; e = n) { n = e->next; free(e->key); free(e); } free(tab);
  return 0;
}
