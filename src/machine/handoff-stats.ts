/**
 * Counters of the hand-offs between a domain's threads (the home and its vCPU threads: vcpu-link.ts), for
 * measuring where a threaded SMP guest waits. Off unless XENO_HANDOFF_STATS=DIR is set; then every thread that
 * runs vCPUs keeps one HandoffStats and writes it as JSON to DIR/handoff-PID-NAME.json at most once a second
 * (and when asked: flush()), so a run killed at any moment leaves counts at most a second old.
 * `node dist/bench/boot/handoff.js DIR` sums and prints them.
 *
 * Each event kind (E_*) keeps a count, a total and a largest duration (ms, the host clock: host-clock.ts, the
 * same origin in every thread, so a time stamped by one thread and read by another is a latency). When off,
 * callers test HANDOFF (a module constant) and do nothing else: no clock reads, no allocation.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { hostNowMs } from "../common/host-clock.js";
import type { JitStats } from "../cpu/arm64/jit/engine.js";
import { jitProfile } from "../cpu/arm64/cpu.js";

const DIR = process.env.XENO_HANDOFF_STATS ?? "";
/** Whether hand-offs are counted (XENO_HANDOFF_STATS=DIR). */
export const HANDOFF = DIR !== "";

/** Event kinds. Requests (E_REQ_*): the vCPU thread's round trip, from writing the request to reading the answer. */
export const E_SLICE = 0, E_REQ_PSCI = 1, E_REQ_HCALL = 2, E_REQ_UART = 3, E_REQ_RTC = 4, E_REQ_EOI = 5, E_REQ_STAGE2 = 6,
  /** The home: from a request's posting (the link's stamp) to the start of its service; and the service itself. */
  E_SERVE_WAIT = 7, E_SERVE = 8,
  /** A broadcast issued, by kind: the issuer's wait for the acknowledgements (lock included). */
  E_BC_TLBI = 9, E_BC_IC = 10, E_BC_SEV = 11, E_BC_CODE = 12, E_BC_STAGE2 = 13,
  /** Broadcasts of others applied by this thread (count only). */
  E_BC_APPLIED = 14,
  /** Sleeps: a vCPU thread in WFI (Atomics.wait on its bell), in WFE, waiting for its scheduler permit; the home's
   * loop asleep on its doorbell (every vCPU it runs waits). */
  E_WFI_SLEEP = 15, E_WFE_SLEEP = 16, E_PERMIT_WAIT = 17, E_HOME_SLEEP = 18,
  /**
   * An interrupt line raised for a vCPU of another thread, to the moment that vCPU's thread set the line in its
   * vCPU (it takes the interrupt at its next instruction boundary): raised while the target ran guest code, or
   * while it slept in WFI/WFE (the target's wake-up latency).
   */
  E_IRQ_RUNNING = 19, E_IRQ_SLEEPING = 20,
  /** WFE sleeps ended by a ring (another thread's release, SEV, an interrupt) rather than a poll's timeout. */
  E_WFE_RUNG = 21,
  /** The home's slices of its own vCPUs (runVcpu). */
  E_HOME_SLICE = 22,
  /** The home's doorbell rung while it slept, to the moment it woke (its wake-up latency). */
  E_HOME_WAKE = 23,
  /**
   * Broadcasts taken all at once: the thread had fallen so far behind that the ring no longer held them
   * (vcpu-link.ts takeBroadcasts), so it dropped every TLB entry and every decoded and compiled block (count only).
   */
  E_BC_ALL = 24;
const KINDS = 25;
const NAMES = ["slice", "req-psci", "req-hypercall", "req-uart", "req-rtc", "req-eoi", "req-stage2", "serve-wait", "serve",
  "bc-tlbi", "bc-ic", "bc-sev", "bc-code-page", "bc-stage2", "bc-applied", "wfi-sleep", "wfe-sleep", "permit-wait",
  "home-sleep", "irq-to-running", "irq-to-sleeping", "wfe-rung", "home-slice", "home-wake", "bc-all-at-once"];

/** What one thread counted, as written to its file. */
export interface HandoffDump {
  thread: string;
  /** Per event kind: count, total ms, largest ms. */
  events: Record<string, { n: number; ms: number; maxMs: number }>;
  /** Hypercalls sent to the home by number (x16): count and round-trip ms. */
  hypercalls: Record<string, { n: number; ms: number }>;
  instructions: number;
  /**
   * From /proc/thread-self/schedstat (Linux): this thread's CPU seconds, and the seconds it was runnable but
   * waited for a host CPU (other load, or this process's other threads).
   */
  cpuS: number;
  runqueueS: number;
  /** This thread's compiling engine's counters (engine.ts JitStats), when it has one. */
  jit: JitStats | null;
  /** With XENO_JIT_PROFILE=1: guest instructions this thread ran compiled and interpreted (cpu.ts jitProfile). */
  ran?: { compiled: number; interpreted: number };
}

export class HandoffStats {
  private readonly n = new Float64Array(KINDS);
  private readonly ms = new Float64Array(KINDS);
  private readonly max = new Float64Array(KINDS);
  private readonly hcalls = new Map<number, { n: number; ms: number }>();
  private lastWrite = 0;
  /** Guest instructions this thread retired. */
  instructions = 0;
  /** The thread's compiling engine's counters, for the dump. */
  jitStats: () => JitStats | null = () => null;

  constructor(private readonly name: string) {}

  /** One event of kind `e` that took `ms`. */
  add(e: number, ms: number): void {
    this.n[e]!++;
    this.ms[e]! += ms;
    if (ms > this.max[e]!) this.max[e] = ms;
  }

  /** `k` events of kind `e` (no duration: count only). */
  addN(e: number, k: number): void { this.n[e]! += k; }

  /** A hypercall (x16 = `op`) answered by the home after `ms`. */
  hypercall(op: number, ms: number): void {
    let h = this.hcalls.get(op);
    if (h === undefined) this.hcalls.set(op, h = { n: 0, ms: 0 });
    h.n++;
    h.ms += ms;
  }

  /** Writes the file when a second has passed since the last write (or always, with `force`). */
  flush(force = false): void {
    const now = hostNowMs();
    if (!force && now - this.lastWrite < 1000) return;
    this.lastWrite = now;
    const events: HandoffDump["events"] = {};
    for (let e = 0; e < KINDS; e++) if (this.n[e]! > 0) events[NAMES[e]!] = { n: this.n[e]!, ms: this.ms[e]!, maxMs: this.max[e]! };
    const hypercalls: HandoffDump["hypercalls"] = {};
    for (const [op, h] of this.hcalls) hypercalls[String(op)] = h;
    let cpuS = 0, runqueueS = 0;
    try {
      const f = readFileSync("/proc/thread-self/schedstat", "latin1").split(" ");
      cpuS = Number(f[0]) / 1e9;
      runqueueS = Number(f[1]) / 1e9;
    } catch { /* not Linux */ }
    const prof = jitProfile();
    const d: HandoffDump = { thread: this.name, events, hypercalls, instructions: this.instructions, cpuS, runqueueS, jit: this.jitStats(),
      ...(prof !== null ? { ran: { compiled: prof.compiled, interpreted: prof.interpreted } } : {}) };
    try { writeFileSync(join(DIR, `handoff-${process.pid}-${threadId}-${this.name}.json`), JSON.stringify(d)); } catch { /* diagnostics only */ }
  }
}

let mine: HandoffStats | null = null;
/** This thread's counters when XENO_HANDOFF_STATS is set (one per thread, named by its first caller), else null. */
export function handoffStats(name: string): HandoffStats | null {
  if (!HANDOFF) return null;
  return mine ??= new HandoffStats(name);
}

export { hostNowMs };

/** The E_BC_* kind of a broadcast (vcpu-link.ts BC_*: 0 an instruction, 1 stage 2, 2 a code page). */
export function bcEvent(kind: number, insn: number): number {
  if (kind === 1) return E_BC_STAGE2;
  if (kind === 2 || kind === 3) return E_BC_CODE;
  if (insn === (0xd503209f | 0)) return E_BC_SEV;
  return ((insn >>> 12) & 15) === 8 ? E_BC_TLBI : E_BC_IC;
}
