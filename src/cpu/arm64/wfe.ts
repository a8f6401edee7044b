/**
 * What wakes a vCPU that WFE suspended (Arm ARM D1.16.1 "Wait for Event"), for the platforms that let it sleep
 * (src/machine/remote-vcpu.ts, src/machine/board.ts): besides an interrupt (taken or not: PSTATE masks do not
 * matter), SEV from another PE and a timer, these two events the CPU cannot see from inside its own run loop:
 *
 *  - the global exclusive monitor of the PE cleared by another observer's store (Arm ARM B2.9.4: "an event is
 *    generated when the global monitor for the PE changes from Exclusive Access to Open Access"). Linux's
 *    spin-waits rely on it: __cmpwait (arch/arm64/include/asm/cmpxchg.h, behind smp_cond_load_acquire and so
 *    the queued spinlock) is `sevl; wfe; ldxr; eor; cbnz; wfe`. Exclusives here are compare-and-swaps on the
 *    value LDXR read (ldst.ts: exclLo/exclHi), so "cleared" is "the reserved bytes no longer hold that value"
 *    — a store of the same value is missed, which only makes the waiter look again at its next bounded poll.
 *  - the generic timer's event stream (CNTKCTL_EL1.EVNTEN, Arm ARM D11.2.3): an event each time counter bit
 *    EVNTI makes the transition EVNTDIR selects. Linux's __delay() waits with WFE when the stream is on.
 */
import type { Cpu } from "./cpu.js";
import { CNTKCTL_EL1 } from "./sysregs.js";

/**
 * How a platform waits in WFE: first WFE_SPIN_MS looking at the reserved bytes without sleeping (a lock held
 * for a few microseconds is taken without a futex round trip), then sleeps of at most WFE_POLL_MIN_MS, doubling
 * up to WFE_POLL_MAX_MS, while the exclusive monitor is armed: a plain store by another thread that clears it
 * rings no bell, so these bound how late the waiter notices.
 */
export const WFE_SPIN_MS = 0.02, WFE_POLL_MIN_MS = 0.05, WFE_POLL_MAX_MS = 1;

/** CNTKCTL_EL1 event-stream fields (Arm ARM D17.10.x): enable, direction (1: 1→0), bit index 7:4. */
const EVNTEN = 1 << 2, EVNTDIR = 1 << 3;

/** True when c's exclusive monitor is armed and its reserved bytes no longer hold what LDXR read. */
export function monitorCleared(c: Cpu): boolean {
  const off = c.exclOff;
  if (off < 0) return false;
  const m = c.mmu;
  switch (c.exclSize) {
    case 1: return Atomics.load(m.u8, off) !== (c.exclLo & 0xff);
    case 2: return (Atomics.load(m.u8, off) | (Atomics.load(m.u8, off + 1) << 8)) !== (c.exclLo & 0xffff);
    case 4: return Atomics.load(m.i32, off >> 2) !== c.exclLo;
    // 8 and the pairs (LDXP keeps its first doubleword): each half alone. A torn read can only say "changed",
    // a spurious wake-up, which WFE allows.
    default: return Atomics.load(m.i32, off >> 2) !== c.exclLo || Atomics.load(m.i32, (off >> 2) + 1) !== c.exclHi;
  }
}

/**
 * The counter value (ticks, as c.counter() reads it) of the first event-stream event after `now`, or -1 when
 * the stream is off. The stream watches the virtual count; CNTVOFF is not applied here (the guest's kernel
 * runs at EL1 with the offset the platform gives every vCPU alike, and only the spacing of events matters).
 */
export function nextStreamEvent(c: Cpu, now: number): number {
  const k = c.sys[CNTKCTL_EL1]!;
  if ((k & EVNTEN) === 0) return -1;
  const n = (k >>> 4) & 15, half = 2 ** n, period = 2 * half;
  // EVNTDIR 0: bit n goes 0 → 1 at counts ≡ half (mod period); 1: 1 → 0 at counts ≡ 0.
  const phase = (k & EVNTDIR) === 0 ? half : 0;
  let t = now - (now % period) + phase;
  if (t <= now) t += period;
  return t;
}
