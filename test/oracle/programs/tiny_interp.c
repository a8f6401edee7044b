#include "common.h"
#include <inttypes.h>
#include <stdlib.h>
/* A stack-machine bytecode interpreter (switch dispatch) running programs built with labels,
 * plus a recursive-descent arithmetic evaluator. */
enum { PUSH, LOAD, STORE, ADD, SUB, MUL, DIV, MOD, LT, EQ, JZ, JMP, PRINT, HALT };
static int64_t code[512]; static int pc_emit; static int labels[32]; static int fix[64][2]; static int nfix;
static void e(int64_t x) { code[pc_emit++] = x; }
static void lab(int l) { labels[l] = pc_emit; }
static void jmp(int op, int l) { e(op); fix[nfix][0] = pc_emit; fix[nfix][1] = l; nfix++; e(0); }
static void link(void) { for (int i = 0; i < nfix; i++) code[fix[i][0]] = labels[fix[i][1]]; nfix = 0; }
static int64_t run(int64_t *vars, int64_t *out) {
  int64_t st[64]; int sp = 0; int64_t pc = 0, steps = 0;
  for (;;) {
    int64_t op = code[pc++]; steps++;
    switch (op) {
    case PUSH: st[sp++] = code[pc++]; break;
    case LOAD: st[sp++] = vars[code[pc++]]; break;
    case STORE: vars[code[pc++]] = st[--sp]; break;
    case ADD: sp--; st[sp - 1] += st[sp]; break;
    case SUB: sp--; st[sp - 1] -= st[sp]; break;
    case MUL: sp--; st[sp - 1] *= st[sp]; break;
    case DIV: sp--; st[sp - 1] = st[sp] ? st[sp - 1] / st[sp] : 0; break;
    case MOD: sp--; st[sp - 1] = st[sp] ? st[sp - 1] % st[sp] : 0; break;
    case LT: sp--; st[sp - 1] = st[sp - 1] < st[sp]; break;
    case EQ: sp--; st[sp - 1] = st[sp - 1] == st[sp]; break;
    case JZ: { int64_t t = code[pc++]; if (!st[--sp]) pc = t; break; }
    case JMP: pc = code[pc]; break;
    case PRINT: *out = st[--sp]; break;
    case HALT: return steps;
    default: printf("bad op %" PRId64 "\n", op); exit(3);
    }
  }
}
/* vars: 0=n 1=i 2=sum 3=limit */
static void build_primes(void) {
  pc_emit = 0;
  e(PUSH); e(2); e(STORE); e(0); e(PUSH); e(0); e(STORE); e(2);
  lab(0); e(LOAD); e(0); e(LOAD); e(3); e(LT); jmp(JZ, 9);          /* while n < limit */
  e(PUSH); e(2); e(STORE); e(1);
  lab(1); e(LOAD); e(0); e(LOAD); e(1); e(LOAD); e(1); e(MUL); e(LT); jmp(JZ, 2); jmp(JMP, 4); /* if n < i*i: prime */
  lab(2); e(LOAD); e(0); e(LOAD); e(1); e(MOD); jmp(JZ, 5);          /* divisible: not prime */
  e(LOAD); e(1); e(PUSH); e(1); e(ADD); e(STORE); e(1); jmp(JMP, 1);
  lab(4); e(LOAD); e(2); e(LOAD); e(0); e(ADD); e(STORE); e(2);
  lab(5); e(LOAD); e(0); e(PUSH); e(1); e(ADD); e(STORE); e(0); jmp(JMP, 0);
  lab(9); e(LOAD); e(2); e(PRINT); e(HALT);
  link();
}
/* vars: 0=x 1=steps */
static void build_collatz(void) {
  pc_emit = 0;
  e(PUSH); e(0); e(STORE); e(1);
  lab(0); e(LOAD); e(0); e(PUSH); e(1); e(EQ); e(PUSH); e(0); e(EQ); jmp(JZ, 9);
  e(LOAD); e(0); e(PUSH); e(2); e(MOD); jmp(JZ, 1);
  e(LOAD); e(0); e(PUSH); e(3); e(MUL); e(PUSH); e(1); e(ADD); e(STORE); e(0); jmp(JMP, 2);
  lab(1); e(LOAD); e(0); e(PUSH); e(2); e(DIV); e(STORE); e(0);
  lab(2); e(LOAD); e(1); e(PUSH); e(1); e(ADD); e(STORE); e(1); jmp(JMP, 0);
  lab(9); e(LOAD); e(1); e(PRINT); e(HALT);
  link();
}
static const char *ep;
static int64_t expr(void);
static void ws(void) { while (*ep == ' ') ep++; }
static int64_t atom(void) { ws(); if (*ep == '(') { ep++; int64_t v = expr(); ws(); ep++; return v; } if (*ep == '-') { ep++; return -atom(); } int64_t v = 0; while (*ep >= '0' && *ep <= '9') v = v * 10 + (*ep++ - '0'); return v; }
static int64_t term(void) { int64_t v = atom(); for (;;) { ws(); char c = *ep; if (c != '*' && c != '/' && c != '%') return v; ep++; int64_t r = atom(); v = c == '*' ? (int64_t)((uint64_t)v * (uint64_t)r) : r ? (c == '/' ? v / r : v % r) : 0; } }
static int64_t expr(void) { int64_t v = term(); for (;;) { ws(); char c = *ep; if (c != '+' && c != '-') return v; ep++; int64_t r = term(); v = c == '+' ? v + r : v - r; } }
int main(void) {
  int64_t vars[8] = {0}, out = 0;
  build_primes(); vars[3] = 5000; int64_t steps = run(vars, &out);
  printf("primes<5000 sum=%" PRId64 " steps=%" PRId64 "\n", out, steps);
  build_collatz(); int64_t best = 0, bestx = 0, total = 0;
  for (int64_t x = 1; x < 600; x++) { vars[0] = x; total += run(vars, &out); if (out > best) { best = out; bestx = x; } }
  printf("collatz best x=%" PRId64 " steps=%" PRId64 " total=%" PRId64 "\n", bestx, best, total);
  const char *exprs[] = {"1+2*3", "(1+2)*3", "100/7%3", "-(4-10)*-(2+3)", "2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2*2", "((((((7))))))+((3*(2+(1*(0-5)))))", "123456789*987654321", "7/0+5%0"};
  for (unsigned i = 0; i < sizeof exprs / sizeof exprs[0]; i++) { ep = exprs[i]; printf("%s = %" PRId64 "\n", exprs[i], expr()); }
  return 0;
}
