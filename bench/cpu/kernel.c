/* CPU benchmark kernel (a CoreMark-like mix: linked-list find/reverse/merge sort, integer matrix multiply, a
 * number-recognising state machine, CRC16). argv[1] = iterations. Same code as test/oracle/programs/coremark_like.c. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
static uint16_t crcu8(uint8_t data, uint16_t crc) { for (int i = 0; i < 8; i++) { uint8_t x16 = (uint8_t)((data & 1) ^ ((uint8_t)crc & 1)); data >>= 1; if (x16 == 1) { crc ^= 0x4002; crc = (uint16_t)((crc >> 1) | 0x8000); } else crc >>= 1; } return crc; }
static uint16_t crc16(int16_t v, uint16_t crc) { crc = crcu8((uint8_t)v, crc); return crcu8((uint8_t)((uint16_t)v >> 8), crc); }
static uint16_t crc32v(int32_t v, uint16_t crc) { crc = crc16((int16_t)v, crc); return crc16((int16_t)(v >> 16), crc); }
struct node { struct node *next; int16_t data, idx; };
#define NL 200
static struct node pool[NL];
static struct node *list_init(uint32_t seed) { for (int i = 0; i < NL; i++) { seed = seed * 1103515245u + 12345u; pool[i].data = (int16_t)(seed >> 16); pool[i].idx = (int16_t)i; pool[i].next = i + 1 < NL ? &pool[i + 1] : NULL; } return &pool[0]; }
static struct node *reverse(struct node *l) { struct node *p = NULL; while (l) { struct node *n = l->next; l->next = p; p = l; l = n; } return p; }
static struct node *find(struct node *l, int16_t d) { while (l && (l->data & 0xFF) != d) l = l->next; return l; }
static struct node *msort(struct node *l, int by_idx) { /* bottom-up merge sort as in CoreMark */
  int insize = 1; if (!l) return NULL;
  for (;;) { struct node *p = l, *tail = NULL; l = NULL; int merges = 0;
    while (p) { merges++; struct node *q = p; int psize = 0; for (int i = 0; i < insize && q; i++) { psize++; q = q->next; } int qsize = insize;
      while (psize > 0 || (qsize > 0 && q)) { struct node *e;
        if (psize == 0) { e = q; q = q->next; qsize--; } else if (qsize == 0 || !q) { e = p; p = p->next; psize--; }
        else if ((by_idx ? p->idx - q->idx : p->data - q->data) <= 0) { e = p; p = p->next; psize--; } else { e = q; q = q->next; qsize--; }
        if (tail) tail->next = e; else l = e; tail = e; }
      p = q; }
    tail->next = NULL; if (merges <= 1) return l; insize *= 2; }
}
#define MN 24
static int16_t A[MN * MN], B[MN * MN]; static int32_t C[MN * MN];
static uint16_t matrix(uint16_t crc, int16_t val) {
  for (int i = 0; i < MN; i++) for (int j = 0; j < MN; j++) { int32_t s = 0; for (int k = 0; k < MN; k++) s += (int32_t)A[i * MN + k] * B[k * MN + j]; C[i * MN + j] = s; }
  int32_t tot = 0; for (int i = 0; i < MN * MN; i++) tot += C[i] > val ? 1 : C[i] & 7; crc = crc32v(tot, crc);
  for (int i = 0; i < MN * MN; i++) A[i] = (int16_t)(A[i] + val); for (int i = 0; i < MN * MN; i++) crc = crc16((int16_t)C[i], crc);
  for (int i = 0; i < MN * MN; i++) A[i] = (int16_t)(A[i] - val); return crc;
}
enum st { START, INT, S1, S2, FLOAT, EXP, SCI, INVALID, NST };
static enum st next_state(const char **pp, uint32_t *cnt) {
  const char *p = *pp; enum st s = START;
  for (; *p && *p != ','; p++) { char c = *p; cnt[s]++;
    switch (s) {
    case START: s = (c >= '0' && c <= '9') ? INT : (c == '+' || c == '-') ? S1 : c == '.' ? FLOAT : INVALID; break;
    case S1: s = (c >= '0' && c <= '9') ? INT : c == '.' ? FLOAT : INVALID; break;
    case INT: s = c == '.' ? FLOAT : (c >= '0' && c <= '9') ? INT : INVALID; break;
    case FLOAT: s = (c == 'e' || c == 'E') ? S2 : (c >= '0' && c <= '9') ? FLOAT : INVALID; break;
    case S2: s = (c == '+' || c == '-') ? EXP : INVALID; break;
    case EXP: s = (c >= '0' && c <= '9') ? SCI : INVALID; break;
    case SCI: s = (c >= '0' && c <= '9') ? SCI : INVALID; break;
    default: break; } }
  *pp = *p ? p + 1 : p; return s;
}
int main(int argc, char **argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 10;
  for (int i = 0; i < MN * MN; i++) { A[i] = (int16_t)((i * 37 + 11) % 201 - 100); B[i] = (int16_t)((i * 53 + 7) % 151 - 75); }
  static const char *inputs = "5012,1234,-874,+122,35.54,.1234,-.12,3.14e+5,1.2E-3,0x12,$123,7,-1e+2,++1,12.3.4,,99999,0.0e+0,-,";
  uint16_t crc = 0;
  for (int it = 0; it < iters; it++) {
    struct node *l = list_init((uint32_t)it * 7919u + 1);
    for (int k = 0; k < 20; k++) { struct node *f = find(l, (int16_t)((k * 13 + it) & 0xFF)); crc = crc16(f ? f->data : -1, crc); l = reverse(l); }
    l = msort(l, 0); for (struct node *p = l; p; p = p->next) crc = crc16(p->data, crc);
    l = msort(l, 1); crc = crc16(l->data, crc);
    crc = matrix(crc, (int16_t)(it & 0x7F));
    uint32_t cnt[NST] = {0}, finals[NST] = {0};
    for (int r = 0; r < 8; r++) { const char *p = inputs; while (*p) finals[next_state(&p, cnt)]++; }
    for (int s = 0; s < NST; s++) { crc = crc32v((int32_t)cnt[s], crc); crc = crc32v((int32_t)finals[s], crc); }
  }
  printf("coremark-like iterations=%d crc=0x%04x\n", iters, crc);
  return 0;
}
