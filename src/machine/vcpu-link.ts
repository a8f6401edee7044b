/**
 * The shared words through which a board's home thread (board.ts: devices, the platform's hypercalls, vCPU 0)
 * and its vCPUs running on threads of their own (remote-vcpu.ts) work together. They live in the domain memory's
 * state area after RAM (board.ts), so they are shared with every thread that holds the memory and move with it:
 *
 *   ramBytes + 0x0000  vCPU state blocks, VCPU_STATE_BYTES each (8 at most)
 *   ramBytes + 0x8000  the GIC's state (gicv2-regs.ts), shared by every thread's Gicv2 under L_GIC_LOCK
 *   ramBytes + 0x9000  this link: Int32 words below, then per-vCPU CPU seconds (Float64) at LINK_F64
 *   ramBytes + 0xa000  per vCPU, the UART bytes it wrote and the home has not yet sent on (UART_Q_AREA)
 *   ramBytes + 0xb000  the broadcast ring (L_BC_RING: BC_RING slots of 16 bytes, to 0xf000)
 *
 * Protocol, in short (the full story is in docs/cpu-internals.md, "vCPUs on threads"):
 *  - Requests: a remote vCPU that needs its home (a hypercall or PSCI call, an access to a device other than the
 *    GIC, a stage-2 fault) writes the request words, bumps V_REQ_SEQ, rings the home and waits on its V_BELL until
 *    V_DONE_SEQ equals it; the home serves it between its own slices on its copy of the vCPU (same state block).
 *  - Broadcasts: TLBI ...IS, IC IALLUIS/IVAU, SEV and the platform's stage-2 changes must be complete on every vCPU
 *    before the issuer goes on. The issuer takes L_BC_LOCK, writes the payload in the ring slot of the next
 *    sequence number, bumps L_BC_SEQ, rings everyone and waits until every thread running guest code (L_EXEC)
 *    has its L_ACK word equal to it. A thread that was not running guest code may have missed several
 *    broadcasts: before it runs again it applies every one it has not applied, from the ring, or all of their
 *    effects at once when the ring no longer holds them (takeBroadcasts). Every wait loop on every side
 *    acknowledges pending broadcasts, so waits never form a cycle.
 *  - Commands: the home sets V_CMD (run, park, quit) and bumps V_GEN when it rewrote the vCPU's state block (PSCI
 *    CPU_ON, a restore); the remote reports V_STATUS and, when parked, V_WAITING.
 */

import type { Cpu } from "../cpu/arm64/cpu.js";
import { ACC_READ } from "../mmu/mmu.js";

/**
 * Offsets from ramBytes in the domain memory. LINK_BYTES: the link's own words (and its Float64s at LINK_F64);
 * LINK_VIEW_BYTES: what linkViews covers from LINK_AREA, which takes in the UART queues and the broadcast ring.
 */
export const GIC_AREA = 0x8000, LINK_AREA = 0x9000, LINK_BYTES = 0x1000, LINK_VIEW_BYTES = 0x6000;
/** Int32 words of the link. */
export const L_GIC_LOCK = 0, L_BC_LOCK = 1, L_BC_SEQ = 2;
/**
 * The UART's flag register (PL011 UARTFR) as the home last published it: a vCPU thread reads FR here instead of
 * asking the home (FR has no side effect on a read, and depends only on the receive FIFO's level, which only
 * the home changes; the transmit side is always empty: pl011.ts).
 */
export const L_UART_FR = 3;
/**
 * Posted UART writes: a byte a vCPU thread writes to UARTDR goes into its queue here (no round trip: a write to
 * DR has no effect but the byte going out, pl011.ts), which the home empties into the UART before it serves any
 * request of that vCPU and before any UART access of its own (so output keeps the order the guest's locks give
 * it). Per vCPU k, UART_Q_BYTES at UART_Q_AREA + k * UART_Q_BYTES: Int32 head (bytes written, by the vCPU's
 * thread), Int32 tail (bytes taken, by the home), then UART_Q_CAP data bytes. A full queue falls back to a
 * request (the home empties the queue, then takes the byte).
 */
export const UART_Q_AREA = 0xa000, UART_Q_BYTES = 512, UART_Q_CAP = UART_Q_BYTES - 8;

/** What the home waits on inside the board (a broadcast's acknowledgements, parking); rung with its doorbell. */
export const L_HOME_BELL = 8;
/** INTID whose EOI/DIR writes by a remote vCPU go to the home (BoardPlatform.eoiWatch; 0: none). */
export const L_EOI_WATCH = 9;
/** The thread that issued the pending broadcast (0: the home): acknowledgements ring it. */
export const L_BC_FROM = 10;
/** The lock word of 128-bit exclusives (LDXP/STXP) across threads: Mmu.lockPairs. */
export const L_PAIR_LOCK = 11;
/** Bumped by a vCPU thread that wants to run and has no scheduler permit (the home tells the hypervisor). */
export const L_SCHED_ASK = 12;
/**
 * WFE sleepers (src/cpu/arm64/wfe.ts): L_WFE_AT + k is the 64-byte granule (RAM offset >> 6) whose exclusive
 * monitor vCPU k sleeps on in WFE, or -1; L_WFE_SLEEPERS counts the vCPUs with one. A store-release or a
 * successful store-exclusive (Cpu.storeWake: wakeWfeSleepers) rings the sleepers on its granule at once; a plain
 * store is noticed by their bounded polls.
 */
export const L_WFE_SLEEPERS = 13, L_WFE_AT = 160;
/** L_ACK + thread: the last broadcast each thread applied (thread 0 is the home, thread k ≥ 1 runs vCPU k). */
export const L_ACK = 16;
/**
 * L_EXEC + thread: 1 while the thread runs guest code. A thread sets it, then applies any pending broadcast,
 * before it runs an instruction; an issuer publishes its broadcast, then waits only for threads whose word is 1
 * (both sides sequentially consistent atomics: a thread that was not running will see the broadcast before it
 * runs). So a vCPU asleep in WFI costs a TLBI ...IS nothing.
 */
export const L_EXEC = 24;
/** Per-vCPU blocks of V_STRIDE words from L_VCPU. */
export const L_VCPU = 32, V_STRIDE = 16;
export const V_CMD = 0, V_GEN = 1, V_STATUS = 2, V_BELL = 3, V_REQ_SEQ = 4, V_DONE_SEQ = 5, V_REQ_KIND = 6,
  V_A0 = 7, V_R0 = 12, V_R1 = 13, V_WAITING = 14;
/** Blocks the vCPU's thread has compiled and installed (its engine's stats.blocks; diagnostics and tests). */
export const V_JIT_BLOCKS = 15;
/**
 * The broadcast ring: BC_RING slots of 4 words (kind, insn, xlo, xhi) from L_BC_RING (word index in the link's
 * view: ramBytes + 0xb000, after the UART queues, to 0xf000); broadcast `seq` is in slot seq & (BC_RING - 1).
 * A thread that fell BC_RING - 1 behind drops every TLB entry and decoded block at once (takeBroadcasts); with 64
 * slots (until 2026-12-07) that happened tens of times per threaded 2-vCPU boot — a thread asleep or
 * descheduled while the other flushed a process's pages (one TLBI per page) — and each time the thread decoded
 * and compiled the kernel's hot code again (XENO_HANDOFF_STATS "bc-all-at-once").
 */
export const L_BC_RING = (0xb000 - LINK_AREA) >> 2, BC_RING = 1024;
/** Float64 index (over the same bytes) of vCPU k's run time in seconds: LINK_F64 + k. */
export const LINK_F64 = 0x800 / 8;
/**
 * Time stamps (host clock ms, host-clock.ts; 0: none) for the hand-off counters (handoff-stats.ts), written only
 * when they are on: LINK_T_REQ + k when vCPU k posted its request, LINK_T_IRQ + k when an interrupt line of
 * vCPU k was raised by another thread, LINK_T_HOME when a vCPU thread rang the home.
 */
export const LINK_T_REQ = LINK_F64 + 8, LINK_T_IRQ = LINK_F64 + 16, LINK_T_HOME = LINK_F64 + 24;
/** Bytes of a crash message a remote leaves (UTF-8, NUL-padded) at LINK_MSG. */
export const LINK_MSG = 0xc00, LINK_MSG_BYTES = 0x400;

export const CMD_RUN = 0, CMD_PARK = 1, CMD_QUIT = 2;
export const ST_STARTING = 0, ST_RUNNING = 1, ST_PARKED = 2, ST_GONE = 3, ST_CRASHED = 4;
export const RQ_HVC = 1, RQ_MMIO_READ = 2, RQ_MMIO_WRITE = 3, RQ_STAGE2 = 4;
/**
 * BC_CODE_PAGE: IC IVAU, as the RAM page the issuer's translation of its VA gives (L_BC_XLO). BC_DIRTY: the
 * dirty log (a live migration's pre-copy) started, stopped or began a round: each thread sets its MMU's log from
 * L_DIRTY and takes write permission from every TLB entry.
 */
export const BC_INSN = 0, BC_STAGE2 = 1, BC_CODE_PAGE = 2, BC_DIRTY = 3;
/** 1 while the board logs writes to RAM (Board.setDirtyLog) in its shared dirty log, else 0. */
export const L_DIRTY = 4;

/**
 * An IC IVAU (by virtual address) as another thread must apply it: the RAM page it names in the issuer's address
 * space — the receivers run other processes, where the VA means another page or nothing (their decode caches are
 * their own). Returns that page, -1 when the VA maps no RAM page, or -2 when `insn` is not IC IVAU.
 */
export function icIvauPage(c: Cpu, insn: number, xlo: number, xhi: number): number {
  if (((insn >>> 12) & 15) !== 7 || ((insn >>> 8) & 15) !== 5) return -2;
  const m = c.mmu;
  const pa = m.probe(xlo, xhi, ACC_READ, c.el === 0);
  const off = pa < 0 ? -1 : pa - m.ramBase;
  return off >= 0 && off < m.ramSize ? Math.floor(off / 4096) : -1;
}

/** Views of the UART queues (UART_Q_AREA) of a domain memory of `ramBytes` of RAM: words and bytes. */
export function uartQueueViews(buffer: ArrayBufferLike, ramBytes: number): { w: Int32Array; b: Uint8Array } {
  return { w: new Int32Array(buffer, ramBytes + UART_Q_AREA, (8 * UART_Q_BYTES) >> 2), b: new Uint8Array(buffer, ramBytes + UART_Q_AREA, 8 * UART_Q_BYTES) };
}

/**
 * Posts byte `x` to vCPU k's UART queue (its thread only). Returns -1 when the queue is full (the caller sends
 * the write as a request), else how many bytes were queued before it (0: the home may need waking).
 */
export function postUartByte(q: { w: Int32Array; b: Uint8Array }, k: number, x: number): number {
  const i = (k * UART_Q_BYTES) >> 2;
  const head = Atomics.load(q.w, i), queued = (head - Atomics.load(q.w, i + 1)) | 0;
  if (queued >= UART_Q_CAP) return -1;
  q.b[k * UART_Q_BYTES + 8 + ((head >>> 0) % UART_Q_CAP)] = x;
  Atomics.store(q.w, i, (head + 1) | 0); // after the byte: the home reads head, then the bytes before it
  return queued;
}

/** Takes the bytes vCPU k posted, in order, into `put` (the home only). */
export function drainUartQueue(q: { w: Int32Array; b: Uint8Array }, k: number, put: (x: number) => void): void {
  const i = (k * UART_Q_BYTES) >> 2;
  const head = Atomics.load(q.w, i);
  let tail = Atomics.load(q.w, i + 1);
  if (head === tail) return;
  for (; tail !== head; tail = (tail + 1) | 0) put(q.b[k * UART_Q_BYTES + 8 + ((tail >>> 0) % UART_Q_CAP)]!);
  Atomics.store(q.w, i + 1, tail);
}

/** Index of vCPU k's word `field` (V_*). */
export function vw(k: number, field: number): number { return L_VCPU + k * V_STRIDE + field; }

/** Wakes vCPU k's thread (it waits on its bell). */
export function ringVcpu(w: Int32Array, k: number): void {
  const i = vw(k, V_BELL);
  Atomics.add(w, i, 1);
  Atomics.notify(w, i);
}

/** Views of the link inside a domain memory of `ramBytes` of RAM (words: LINK_VIEW_BYTES, with the ring). */
export function linkViews(buffer: ArrayBufferLike, ramBytes: number): { w: Int32Array; f64: Float64Array } {
  return { w: new Int32Array(buffer, ramBytes + LINK_AREA, LINK_VIEW_BYTES >> 2), f64: new Float64Array(buffer, ramBytes + LINK_AREA, LINK_BYTES >> 3) };
}

/**
 * Takes the broadcast lock — applying the broadcasts of others meanwhile (`ack`: the holder waits for this
 * thread) — and publishes a broadcast from thread `from`, marked as applied by it. Returns its sequence number;
 * the caller waits for the others' acknowledgements, then releases L_BC_LOCK.
 */
export function publishBroadcast(w: Int32Array, from: number, kind: number, insn: number, xlo: number, xhi: number, ack: () => void): number {
  while (Atomics.compareExchange(w, L_BC_LOCK, 0, 1) !== 0) ack();
  // The caller marks this broadcast as applied by it, so it must have applied every earlier one: a thread that
  // ran no guest code (the home between slices, serving the platform) may have missed some.
  ack();
  const seq = (Atomics.load(w, L_BC_SEQ) + 1) | 0;
  const e = L_BC_RING + (seq & (BC_RING - 1)) * 4;
  Atomics.store(w, e, kind);
  Atomics.store(w, e + 1, insn);
  Atomics.store(w, e + 2, xlo);
  Atomics.store(w, e + 3, xhi);
  Atomics.store(w, L_BC_FROM, from);
  Atomics.store(w, L_BC_SEQ, seq);
  Atomics.store(w, L_ACK + from, seq);
  return seq;
}

/** SEV's encoding: the one broadcast a thread asleep (in WFE) must be woken for. */
const SEV_INSN = 0xd503209f | 0;

/**
 * Whether the issuer of broadcast `seq` (BC_* `kind`, `insn`) rings thread `j`: for SEV (a WFE sleeper wakes on
 * it), or when j has fallen half a ring behind (woken now it applies them from the ring, instead of dropping its
 * whole TLB and code later: takeBroadcasts). Otherwise a ring is of no use: a thread running guest code
 * (L_EXEC) acknowledges at the end of its slice, not on a ring, and blocks with L_EXEC set only as the holder of
 * L_BC_LOCK, which is the issuer; a thread asleep (WFI, a request, parked) applies what it missed before it runs
 * again. (Ringing every thread for every broadcast woke vCPU 1's thread for each of the home's ~100,000 TLBI and
 * IC broadcasts of a boot, and every Atomics.notify takes V8's process-wide futex lock.)
 */
export function bcRings(w: Int32Array, j: number, seq: number, kind: number, insn: number): boolean {
  return (kind === BC_INSN && insn === SEV_INSN) || ((seq - Atomics.load(w, L_ACK + j)) | 0) >= BC_RING / 2;
}

/**
 * After a thread applied the broadcasts up to `seq`: whether their issuer still waits for acknowledgements (it
 * holds L_BC_LOCK until every one came, and `seq` is still the last published), so the thread should ring it.
 */
export function bcIssuerWaits(w: Int32Array, seq: number): boolean {
  return Atomics.load(w, L_BC_LOCK) !== 0 && Atomics.load(w, L_BC_SEQ) === seq;
}

/** Rings the home's bell inside the board (a broadcast's issuer and parkRemotes wait on it), not its loop's doorbell. */
export function ringHomeBell(w: Int32Array): void {
  Atomics.add(w, L_HOME_BELL, 1);
  Atomics.notify(w, L_HOME_BELL);
}

/** What a thread does with the broadcasts it takes (takeBroadcasts). */
export interface BroadcastSink {
  /** Applies one broadcast (BC_* kind and payload) to this thread's vCPUs. */
  apply(kind: number, insn: number, xlo: number, xhi: number): void;
  /**
   * Applies what any broadcasts could have asked, for those the ring no longer holds: every TLB entry and
   * every decoded instruction dropped, the event register set (a spurious SEV is allowed: Arm ARM D1.16.1).
   */
  applyAll(): void;
}

/**
 * Applies to `sink` every broadcast published after `seen` (the last one this thread applied), in order, and
 * returns the sequence number it is now up to. A thread that ran no guest code for a while (L_EXEC 0: the
 * issuers did not wait for it) may be many broadcasts behind: each is read from its ring slot, and when a
 * slot may have been reused meanwhile — the thread is BC_RING - 1 or more behind — all of them are applied at
 * once (sink.applyAll) instead. A broadcast equal to the one just applied in the same call is skipped: both
 * take effect at this one moment, and maintenance is idempotent (Linux's instruction patching at boot, e.g.
 * ftrace's, issues one IC IVAU per patched instruction, tens to a page in a row).
 */
export function takeBroadcasts(w: Int32Array, seen: number, sink: BroadcastSink): number {
  const seq = Atomics.load(w, L_BC_SEQ);
  const behind = (seq - seen) | 0;
  if (behind === 0) return seen;
  if (behind < 0 || behind >= BC_RING - 1) { sink.applyAll(); return seq; }
  let pk = -1, pi = 0, pl = 0, ph = 0;
  for (let s = (seen + 1) | 0; ; s = (s + 1) | 0) {
    const e = L_BC_RING + (s & (BC_RING - 1)) * 4;
    const kind = Atomics.load(w, e), insn = Atomics.load(w, e + 1), xlo = Atomics.load(w, e + 2), xhi = Atomics.load(w, e + 3);
    // Slot s is rewritten only by the issuer of s + BC_RING, which starts after s + BC_RING - 1 was published:
    // while the published number is at most s + BC_RING - 2, the words just read are broadcast s's.
    if (((Atomics.load(w, L_BC_SEQ) - s) | 0) > BC_RING - 2) { sink.applyAll(); return seq; }
    if (kind !== pk || insn !== pi || xlo !== pl || xhi !== ph) {
      sink.apply(kind, insn, xlo, xhi);
      pk = kind; pi = insn; pl = xlo; ph = xhi;
    }
    if (s === seq) return seq;
  }
}

/** A word of this thread's own: Atomics.add on it is a full host fence (as system.ts FENCE). */
const FENCE = new Int32Array(new SharedArrayBuffer(4));

/**
 * After a store-release or successful store-exclusive at RAM offset `off` by vCPU `self`: wakes (ring(j)) every
 * other vCPU asleep in WFE on that granule. The fence orders the store before the look at the sleepers (a
 * 64-bit STLR is a plain store, atomic64.ts): a sleeper publishes its granule, then checks the value, so one of
 * the two sees the other. Allocates nothing; one atomic load when nobody sleeps.
 */
export function wakeWfeSleepers(w: Int32Array, off: number, self: number, vcpus: number, ring: (j: number) => void): void {
  Atomics.add(FENCE, 0, 0);
  if (Atomics.load(w, L_WFE_SLEEPERS) === 0) return;
  const g = off >> 6;
  for (let j = 0; j < vcpus; j++) if (j !== self && Atomics.load(w, L_WFE_AT + j) === g) ring(j);
}

/** vCPU k sleeps in WFE on granule `g` (≥ 0) from now, or no longer (-1); `was`: its previous entry. */
export function setWfeSleeper(w: Int32Array, k: number, g: number, was: number): void {
  Atomics.store(w, L_WFE_AT + k, g);
  if (was < 0 && g >= 0) Atomics.add(w, L_WFE_SLEEPERS, 1);
  else if (was >= 0 && g < 0) Atomics.sub(w, L_WFE_SLEEPERS, 1);
}
