#include "common.h"
#include <stdlib.h>
#include <inttypes.h>
static char buf[1024], buf2[1024];
static void fill(char *p, size_t len, unsigned seed) { for (size_t i = 0; i < len; i++) p[i] = (char)('a' + (i * 7 + seed) % 26); p[len] = 0; }
int main(void) {
  uint64_t hl = FNV0, hc = FNV0, hr = FNV0, hs = FNV0, hn = FNV0, hp = FNV0, hx = FNV0;
  for (size_t off = 0; off < 32; off++) for (size_t len = 0; len <= 300; len += (len < 40 ? 1 : 7)) {
    memset(buf, 'Z', sizeof buf);
    char *s = buf + off; fill(s, len, (unsigned)off);
    hl = mix(hl, strlen(s));
    char *p = strchr(s, 'q'); hc = mix(hc, p ? (uint64_t)(p - s) : 999); p = strchr(s, 0); hc = mix(hc, (uint64_t)(p - s));
    p = strrchr(s, 'b'); hr = mix(hr, p ? (uint64_t)(p - s) : 999); p = strrchr(s, 'Z'); hr = mix(hr, p ? 1 : 0);
    size_t o2 = (off * 5 + 3) & 31; char *t = buf2 + o2;
    memset(buf2, 'Y', sizeof buf2);
    char *rr = strcpy(t, s); hp = mix(hp, (uint64_t)(rr == t)); hp = fnv(hp, buf2, o2 + len + 4);
    int c = strcmp(s, t); hs = mix(hs, (uint64_t)(c == 0));
    if (len) { t[len - 1]++; c = strcmp(s, t); hs = mix(hs, (uint64_t)(c < 0) | (uint64_t)(strcmp(t, s) > 0) << 1); t[len / 2] = 0; hs = mix(hs, (uint64_t)(strcmp(s, t) > 0)); }
    hn = mix(hn, (uint64_t)(strncmp(s, t, len / 2) == 0)); hn = mix(hn, (uint64_t)(strncmp(s, t, len) > 0)); hn = mix(hn, (uint64_t)(strncmp(s, t, 0) == 0));
    char needle[8]; if (len > 10) { memcpy(needle, s + len - 6, 5); needle[5] = 0; p = strstr(s, needle); hx = mix(hx, p ? (uint64_t)(p - s) : 999); }
    p = strstr(s, "zzz"); hx = mix(hx, p ? (uint64_t)(p - s) : 999); p = strstr(s, ""); hx = mix(hx, (uint64_t)(p - s));
    hx = mix(hx, strspn(s, "abcdefghij")); hx = mix(hx, strcspn(s, "xyz")); hx = mix(hx, strnlen(s, len / 3));
  }
  printf("strlen=%016" PRIx64 "\nstrchr=%016" PRIx64 "\nstrrchr=%016" PRIx64 "\nstrcmp=%016" PRIx64 "\nstrncmp=%016" PRIx64 "\nstrcpy=%016" PRIx64 "\nstrstr=%016" PRIx64 "\n", hl, hc, hr, hs, hn, hp, hx);
  char a[64] = "hello"; strcat(a, ", world"); strncat(a, "!!!!xyz" + 2, 3); printf("%s %zu\n", a, strlen(a));
  char *d = strdup(a); char *save, *tok = strtok_r(d, " ,", &save); while (tok) { printf("[%s]", tok); tok = strtok_r(NULL, " ,", &save); } printf("\n"); free(d);
  printf("%d %d %d\n", strcasecmp("HeLLo", "hello"), strncasecmp("abcD", "ABCE", 3), strcmp("a", "b") < 0);
  char big[8192]; memset(big, 'x', sizeof big - 1); big[sizeof big - 1] = 0; big[5000] = 'y'; printf("%zu %td %td\n", strlen(big), strchr(big, 'y') - big, strstr(big, "xy") - big);
  return 0;
}
