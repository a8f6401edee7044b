#include "common.h"
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <setjmp.h>
/* Signal delivery in user mode: handlers, masks, sigaction flags, SA_SIGINFO, and a fault caught via siglongjmp. */
static volatile sig_atomic_t got[65]; static volatile int last_code, last_signo;
static sigjmp_buf jb;
static void h(int s) { got[s]++; }
static void hinfo(int s, siginfo_t *si, void *uc) { (void)uc; got[s]++; last_signo = si->si_signo; last_code = si->si_code; }
static void segv(int s, siginfo_t *si, void *uc) { (void)uc; (void)si; got[s]++; siglongjmp(jb, 1); }
static void fpe_div(int s) { got[s]++; siglongjmp(jb, 2); }
int main(void) {
  signal(SIGUSR1, h); raise(SIGUSR1); raise(SIGUSR1); printf("usr1=%d\n", got[SIGUSR1]);
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = hinfo; sa.sa_flags = SA_SIGINFO; sigaction(SIGUSR2, &sa, NULL);
  raise(SIGUSR2); printf("usr2=%d signo=%d code=%d\n", got[SIGUSR2], last_signo, last_code);
  sigset_t set, old; sigemptyset(&set); sigaddset(&set, SIGUSR1); sigprocmask(SIG_BLOCK, &set, &old);
  raise(SIGUSR1); printf("blocked: usr1=%d\n", got[SIGUSR1]);
  sigset_t pend; sigpending(&pend); printf("pending=%d\n", sigismember(&pend, SIGUSR1));
  sigprocmask(SIG_SETMASK, &old, NULL); printf("unblocked: usr1=%d\n", got[SIGUSR1]);
  signal(SIGUSR1, SIG_IGN); raise(SIGUSR1); printf("ignored: usr1=%d\n", got[SIGUSR1]);
  memset(&sa, 0, sizeof sa); sa.sa_sigaction = segv; sa.sa_flags = SA_SIGINFO | SA_NODEFER; sigaction(SIGSEGV, &sa, NULL);
  for (int i = 0; i < 3; i++) if (sigsetjmp(jb, 1) == 0) { volatile int *p = (int *)(uintptr_t)(16 + i * 8); *p = 1; printf("no fault?\n"); }
  printf("segv caught=%d\n", got[SIGSEGV]);
  signal(SIGFPE, fpe_div); if (sigsetjmp(jb, 1) == 0) { raise(SIGFPE); } printf("fpe=%d\n", got[SIGFPE]);
  signal(SIGALRM, h); kill(getpid(), SIGALRM); printf("alrm via kill=%d\n", got[SIGALRM]);
  return 0;
}
