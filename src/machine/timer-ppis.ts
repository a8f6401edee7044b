/**
 * The generic timers' outputs as GIC PPIs (level-sensitive, Arm ARM D11.2.4), for a vCPU of the board wherever
 * it runs: its home thread (board.ts) or a thread of its own (remote-vcpu.ts).
 */
import type { Cpu } from "../cpu/arm64/cpu.js";
import type { Gicv2 } from "../devices/gic/gicv2.js";
import { CNTFRQ_HZ, TIMER_PHYS, TIMER_VIRT, timerDeadline, timerFiring } from "../cpu/arm64/sys-timer.js";
import { PPI_PHYS_TIMER, PPI_VIRT_TIMER } from "./layout.js";

/** Drives vCPU k's timer PPIs from its timer registers. */
export function driveTimerPpis(gic: Gicv2, k: number, c: Cpu): void {
  gic.setPpi(k, PPI_VIRT_TIMER, timerFiring(c, TIMER_VIRT));
  gic.setPpi(k, PPI_PHYS_TIMER, timerFiring(c, TIMER_PHYS));
}

/**
 * After a timer register write (STOP_TIMER, c.exitTimers): drops the PPI of each written timer that no longer
 * fires, at once (a handler that moved CVAL forward would otherwise be re-interrupted by the stale level).
 * Raising stays with driveTimerPpis at slice boundaries.
 */
export function dropWrittenTimerPpis(gic: Gicv2, k: number, c: Cpu): void {
  const t = c.exitTimers;
  c.exitTimers = 0;
  if ((t & (1 << TIMER_VIRT)) !== 0 && !timerFiring(c, TIMER_VIRT)) gic.setPpi(k, PPI_VIRT_TIMER, false);
  if ((t & (1 << TIMER_PHYS)) !== 0 && !timerFiring(c, TIMER_PHYS)) gic.setPpi(k, PPI_PHYS_TIMER, false);
}

/** Milliseconds until vCPU c's earliest enabled timer fires, at most `cap`. */
export function msToTimer(c: Cpu, cap: number): number {
  let ms = cap;
  const dv = timerDeadline(c, TIMER_VIRT), dp = timerDeadline(c, TIMER_PHYS);
  if (dv >= 0) ms = Math.min(ms, (dv - c.counter()) / (CNTFRQ_HZ / 1000));
  if (dp >= 0) ms = Math.min(ms, (dp - c.counter()) / (CNTFRQ_HZ / 1000));
  return ms;
}
