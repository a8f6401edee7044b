/**
 * When a domain thread (vm-worker.ts) collects its isolate's garbage: once its domains have all been idle for
 * QUIET_MS after at least BUSY_MS of work, or after a domain came or went (a create, a move in or out, a restore,
 * a destroy) — at most every GAP_MS. The thread never returns to its event loop, so V8's idle-time and
 * memory-reducer GCs never run there: the garbage of a boot (decoded pages, compile buffers) and of a domain that
 * moved in (its restore) or out stays on the heap until a decode-cache sweep's GC (board.ts collectGarbage), which
 * an idle guest may not cause for a long time (docs/memory.md, "Threads"). An idle Debian DomU wakes ~100 times a
 * second for a few microseconds each, so it is "idle" here and costs no GC; a GC is two full collections (tens of
 * ms for a thread's heap), so at most one per GAP_MS keeps it far below the idle domain's own CPU.
 */
export const IDLE_GC_QUIET_MS = 5000, IDLE_GC_BUSY_MS = 1000, IDLE_GC_GAP_MS = 30_000;

export class IdleGc {
  private busyMs = 0;
  private lastBusy: number;
  private lastGc = -Infinity;
  private changed = false;

  constructor(now: number) { this.lastBusy = now; }

  /**
   * One round of the thread's loop that began at `t0` and ended at `now`: `idle` when every domain's step said it
   * waits (on a timer or an interrupt, not on the scheduler's permit); `changed` when a domain came or went.
   * Returns whether to collect now (then the caller does, and the counts start again).
   */
  round(t0: number, now: number, idle: boolean, changed: boolean): boolean {
    if (changed) this.changed = true;
    if (!idle) { this.busyMs += now - t0; this.lastBusy = now; return false; }
    if ((this.busyMs < IDLE_GC_BUSY_MS && !this.changed) || now - this.lastBusy < IDLE_GC_QUIET_MS || now - this.lastGc < IDLE_GC_GAP_MS) return false;
    this.lastGc = now;
    this.busyMs = 0;
    this.changed = false;
    return true;
  }
}
