/**
 * One vCPU of a board, run on a thread of its own over the domain's shared memory (the board handed it over
 * with Board.detachVcpus; src/hv/vcpu-thread.ts is the thread). So a domain with several vCPUs uses several
 * pCPUs, as on Xen, where the vCPU is what the scheduler places.
 *
 * What this thread does itself, with no round trip: run guest code (its own decode cache, compiling engine and
 * TLB over the same RAM; exclusives are atomic compare-and-swaps on the shared memory, ldst.ts), the generic
 * timer, the GIC (its own Gicv2 over the shared state, under the GIC's lock word), WFI and WFE (wfeSleep). What goes to the board's home thread as a
 * request (vcpu-link.ts) and waits for its answer: hypercalls and PSCI (`hvc`/`smc`), stage-2 faults, accesses
 * to the UART and RTC, and EOIs of the interrupt the platform watches (BoardPlatform.eoiWatch). Broadcasts
 * (TLBI ...IS, IC IALLUIS/IVAU, SEV) go to every other thread and are complete there before the issuer goes on.
 *
 * Code written by one thread and run by another: each thread's decode cache notices the writes of its own vCPUs
 * only; writes by another thread reach it through the IC maintenance the architecture requires before new code
 * runs (CTR_EL0.DIC = 0: Linux cleans and invalidates to the PoU after writing code, and IC IVAU/IALLUIS is
 * a broadcast here). Until then this thread runs the old instruction, whole: its cache runs each handler with the
 * word it was decoded from (CodeCache.snapshotWords), and a compiled block holds the words it was translated from.
 */
import { JitEngine } from "../cpu/arm64/jit/engine.js";
import { jitAreaAt, threadTlbAt } from "./tail-layout.js";
import { Cpu, CodeCache, sharedDecoder, STOP_BROADCAST, STOP_BUDGET, STOP_HALT, STOP_HVC, STOP_STAGE2, STOP_TIMER, STOP_WFE, STOP_WFI } from "../cpu/arm64/cpu.js";
import { WFE_POLL_MAX_MS, WFE_POLL_MIN_MS, WFE_SPIN_MS, monitorCleared, nextStreamEvent } from "../cpu/arm64/wfe.js";
import { CNTFRQ_HZ } from "../cpu/arm64/sys-timer.js";
import { Mmu, type Stage2Map } from "../mmu/mmu.js";
import { MmioRouter, subWord, type MmioDevice } from "../devices/mmio.js";
import { UARTDR, UARTFR } from "../devices/pl011/pl011.js";
import { Gicv2 } from "../devices/gic/gicv2.js";
import { driveTimerPpis, dropWrittenTimerPpis, msToTimer } from "./timer-ppis.js";
import { applyAllBroadcasts, applyBroadcast } from "../cpu/arm64/sys-insns.js";
import { reloadFromBlock } from "../cpu/arm64/vcpu-state.js";
import { ST_SCRATCH, VCPU_STATE_BYTES } from "../cpu/arm64/state.js";
import type { GuestClock } from "../common/domain-clock.js";
import { E_BC_ALL, E_BC_APPLIED, E_IRQ_RUNNING, E_IRQ_SLEEPING, E_PERMIT_WAIT, E_REQ_EOI, E_REQ_HCALL, E_REQ_PSCI, E_REQ_RTC, E_REQ_STAGE2,
  E_REQ_UART, E_SLICE, E_WFE_RUNG, E_WFE_SLEEP, E_WFI_SLEEP, HANDOFF, bcEvent, handoffStats, hostNowMs } from "./handoff-stats.js";
import { GICC_BASE, GICD_BASE, GIC_IRQS, RAM_BASE, RTC_BASE, UART_BASE } from "./layout.js";
import { threadCpu } from "../common/thread-cpu.js";
import {
  BC_CODE_PAGE, BC_DIRTY, BC_INSN, BC_STAGE2, L_DIRTY, CMD_QUIT, CMD_RUN, GIC_AREA, LINK_AREA, LINK_F64, LINK_MSG, LINK_T_HOME, LINK_T_IRQ, LINK_T_REQ, LINK_MSG_BYTES, L_ACK, L_BC_FROM,
  L_BC_LOCK, L_EXEC, L_BC_SEQ, L_EOI_WATCH, L_GIC_LOCK, L_HOME_BELL, L_PAIR_LOCK, L_SCHED_ASK, setWfeSleeper, wakeWfeSleepers, RQ_HVC, RQ_MMIO_READ,
  RQ_MMIO_WRITE, RQ_STAGE2, ST_CRASHED, ST_GONE, ST_PARKED, ST_RUNNING, V_A0, V_BELL, V_CMD, V_DONE_SEQ, V_GEN, V_R0,
  V_JIT_BLOCKS, V_REQ_KIND, V_REQ_SEQ, V_STATUS, V_WAITING, icIvauPage, linkViews, publishBroadcast, ringVcpu, L_UART_FR, postUartByte, uartQueueViews, bcRings, bcIssuerWaits, ringHomeBell, takeBroadcasts, vw,
  type BroadcastSink,
} from "./vcpu-link.js";

export interface RemoteVcpuOptions {
  /** The domain memory (Board.memory): RAM, state blocks, GIC state, the link. */
  memory: WebAssembly.Memory;
  ramBytes: number;
  /** vCPUs of the domain, and the one this thread runs (1..vcpus-1). */
  vcpus: number;
  index: number;
  /** The domain's clock, the same as the board's (DomainClock over the host-wide clock and the same base). */
  clock: GuestClock;
  /** The platform's stage-2 map over a SharedArrayBuffer (Xen: the P2M), or null. */
  stage2: Stage2Map | null;
  /** The board's dirty log over a SharedArrayBuffer (Board.sharedDirtyLog): marked while L_DIRTY is 1. */
  dirty?: Uint8Array | null;
  /** Wakes the home thread's loop (its doorbell), besides the link's own home bell. */
  wakeHome: () => void;
  /**
   * This vCPU's scheduler words (the hypervisor's credit scheduler places each vCPU thread: src/hv/sched-words.ts):
   * `words[permit]` 1 while it may run (the hypervisor notifies that word), `words[want]` 1 while it has guest
   * code to run (set here), `f64[cpu]` the seconds it ran guest code (added here). Absent: always permitted.
   */
  sched?: { words: Int32Array; permit: number; want: number; f64: Float64Array; cpu: number } | null;
}

/** Instructions per run() here: the vCPU looks at its commands, interrupt lines and broadcasts this often. */
const REMOTE_SLICE = 10_000;
/** Longest sleep without looking at the link (bounds a lost wake-up; every change rings the bell). */
const IDLE_WAIT_MS = 50;
/** Longest sleep without a permit before looking at the link again (a permit notifies its word). */
const PERMIT_WAIT_MS = 5;
/** How often the decode cache drops pages not run since the last sweep. */
const SWEEP_MS = 5000;
const TICKS_PER_MS = CNTFRQ_HZ / 1000;
/** GICv2 CPU-interface registers that end an interrupt. */
const GICC_EOIR = 0x10, GICC_AEOIR = 0x24, GICC_DIR = 0x1000;

export class RemoteVcpu {
  readonly cpu: Cpu;
  readonly mmu: Mmu;
  readonly index: number;
  /** Instructions retired here. */
  retired = 0;
  private readonly w: Int32Array;
  private readonly f64: Float64Array;
  private readonly gic: Gicv2;
  private readonly code: CodeCache;
  private readonly jit: JitEngine;
  private readonly codePage: Uint8Array;
  private readonly stage2: Stage2Map | null;
  private readonly dirtyLog: Uint8Array | null;
  private readonly sched: RemoteVcpuOptions["sched"];
  /** This thread's CPU clock (null: slices are counted in wall time). */
  private readonly cpuClock = threadCpu();
  private want = -1;
  /** The granule this vCPU sleeps on in WFE (vcpu-link.ts L_WFE_AT), or -1. */
  private wfeAt = -1;
  private readonly wakeHomeThread: () => void;
  private readonly vcpus: number;
  private readonly eoiWatch: number;
  private waiting = 0;
  private gen = -1;
  private bcSeen: number;
  private status = -1;
  private askedPermit = false;
  private lastSweep = performance.now();
  /** Hand-off counters (XENO_HANDOFF_STATS), or null; `slept`: the thread slept since it last ran guest code. */
  private readonly hs: ReturnType<typeof handoffStats>;
  private slept = false;

  constructor(o: RemoteVcpuOptions) {
    const k = o.index;
    if (!Number.isInteger(k) || k < 1 || k >= o.vcpus) throw new RangeError(`remote vCPU ${k}: not one of 1..${o.vcpus - 1}`);
    const buf = o.memory.buffer as unknown as SharedArrayBuffer;
    this.index = k;
    this.hs = handoffStats(`vcpu${k}`);
    this.vcpus = o.vcpus;
    this.stage2 = o.stage2;
    this.sched = o.sched ?? null;
    this.wakeHomeThread = o.wakeHome;
    const link = linkViews(buf, o.ramBytes);
    this.w = link.w;
    this.f64 = link.f64;
    this.bcSeen = Atomics.load(this.w, L_BC_SEQ);
    this.eoiWatch = Atomics.load(this.w, L_EOI_WATCH);
    this.gic = new Gicv2({ cpus: o.vcpus, irqs: GIC_IRQS, buffer: buf, byteOffset: o.ramBytes + GIC_AREA, reset: false, lock: this.w, lockIndex: L_GIC_LOCK });
    // Output changes made here for another vCPU wake its thread (the home takes its lines at its next service).
    this.gic.onIrqChange = (cpu, up) => { if (cpu === k) this.cpu.irqLine = up ? 1 : 0; else if (up) this.wakeCpu(cpu); else this.wakeCpuLow(cpu); };
    this.gic.onFiqChange = (cpu, up) => { if (cpu === k) this.cpu.fiqLine = up ? 1 : 0; else if (up) this.wakeCpu(cpu); else this.wakeCpuLow(cpu); };
    this.codePage = new Uint8Array(o.ramBytes >>> 12);
    // Hot code runs compiled here too: this thread's own engine, in its own area of the domain memory
    // (tail-layout.ts), with full barriers as host fences; the MMU's TLB in this thread's TLB area, where the
    // compiled code looks it up. XENO_JIT=0: interpreted.
    const engine = new JitEngine(o.memory, sharedDecoder(), true, jitAreaAt(o.ramBytes, o.vcpus, k));
    engine.fences = true;
    this.jit = engine;
    this.code = new CodeCache(o.ramBytes >>> 12, engine, true);
    if (this.hs !== null) this.hs.jitStats = () => engine.stats;
    this.code.snapshotWords(); // the other threads write code this one runs (CodeCache.words)
    const mmu = this.mmu = new Mmu(buf, RAM_BASE, this.codePage, o.ramBytes, threadTlbAt(o.ramBytes, o.vcpus, k));
    mmu.stage2 = o.stage2;
    this.dirtyLog = o.dirty ?? null;
    mmu.dirty = Atomics.load(this.w, L_DIRTY) === 1 ? this.dirtyLog : null;
    mmu.useAtomic64(o.memory, o.ramBytes + k * VCPU_STATE_BYTES + ST_SCRATCH);
    mmu.setPairLock(this.w, L_PAIR_LOCK);
    const router = new MmioRouter();
    router.map(GICD_BASE, this.gic.distributor(k));
    router.map(GICC_BASE, this.gicc(this.gic.cpuInterface(k)));
    router.map(UART_BASE, this.uartWindow());
    router.map(RTC_BASE, this.forward(RTC_BASE, 0x1000));
    mmu.mmio = router;
    // The Cpu constructor resets its block: keep the vCPU's state across it (the home does not touch the block
    // of a vCPU it handed over, except inside a request this thread waits for).
    const off = o.ramBytes + k * VCPU_STATE_BYTES;
    const keep = new Uint8Array(buf, off, VCPU_STATE_BYTES).slice();
    const cpu = this.cpu = new Cpu(mmu, this.code, { buffer: buf, offset: off });
    new Uint8Array(buf, off, VCPU_STATE_BYTES).set(keep);
    cpu.vcpuIndex = k;
    cpu.exits = true;
    cpu.counter = o.clock.now;
    const w = this.w;
    cpu.storeWake = (off) => wakeWfeSleepers(w, off, k, o.vcpus, (j) => { if (j === 0) this.wakeHome(); else ringVcpu(w, j); });
  }

  /** Runs the vCPU until the home says quit. Exceptions are emulator faults: the thread reports them (crashed). */
  run(): void {
    const w = this.w, k = this.index, c = this.cpu;
    for (;;) {
      const bell = Atomics.load(w, vw(k, V_BELL));
      this.ack();
      const cmd = Atomics.load(w, vw(k, V_CMD));
      if (cmd === CMD_QUIT) { this.setStatus(ST_GONE); return; }
      const gen = Atomics.load(w, vw(k, V_GEN));
      if (gen !== this.gen) {
        this.gen = gen;
        reloadFromBlock(c);
        this.waiting = Atomics.load(w, vw(k, V_WAITING));
      }
      if (cmd !== CMD_RUN) {
        this.setWant(0);
        Atomics.store(w, vw(k, V_WAITING), this.waiting);
        this.setStatus(ST_PARKED);
        Atomics.wait(w, vw(k, V_BELL), bell, IDLE_WAIT_MS);
        continue;
      }
      this.setStatus(ST_RUNNING);
      const lines = this.gic.outputs(k);
      c.irqLine = lines & 1;
      c.fiqLine = lines >>> 1;
      if (this.hs !== null) this.irqTaken(lines);
      if (this.waiting !== 0) {
        if (lines === 0) {
          this.updateTimers();
          if (c.irqLine === 0 && c.fiqLine === 0) { this.setWant(0); this.sleep(bell); continue; }
        }
        this.setWaiting(0);
      }
      this.setWant(1);
      const sc = this.sched;
      if (sc != null && Atomics.load(sc.words, sc.permit) === 0) {
        // Runnable without a pCPU: once, the home tells the hypervisor, whose scheduler may be idle (no tick);
        // then sleep until the permit comes (it notifies its word) or, at the latest, the next look at the link.
        if (!this.askedPermit) { this.askedPermit = true; Atomics.add(w, L_SCHED_ASK, 1); this.wakeHome(); }
        const p0 = this.hs !== null ? hostNowMs() : 0;
        Atomics.wait(sc.words, sc.permit, 0, PERMIT_WAIT_MS);
        if (this.hs !== null) { this.hs.add(E_PERMIT_WAIT, hostNowMs() - p0); this.slept = true; }
        continue;
      }
      this.askedPermit = false;
      const t0 = performance.now(), c0 = this.cpuClock !== null ? this.cpuClock.seconds() : 0;
      // Running guest code from here (vcpu-link.ts L_EXEC): say so, then take any broadcast published before.
      Atomics.store(w, L_EXEC + k, 1);
      this.ack();
      const stop = this.slice();
      Atomics.store(w, L_EXEC + k, 0);
      const t1 = performance.now();
      // The slice's cost: this thread's CPU time (src/common/thread-cpu.ts), else the wall time it took.
      const ranS = this.cpuClock !== null ? Math.max(0, this.cpuClock.seconds() - c0) : (t1 - t0) / 1000;
      this.f64[LINK_F64 + k] += ranS;
      // The scheduler is charged the slot's (wall) time, as for the home thread (src/hv/vm-worker.ts step).
      if (this.sched != null) this.sched.f64[this.sched.cpu] += (t1 - t0) / 1000;
      if (this.hs !== null) { this.hs.add(E_SLICE, t1 - t0); this.slept = false; this.hs.instructions = this.retired; this.hs.flush(); }
      Atomics.store(w, vw(k, V_JIT_BLOCKS), this.jit.stats.blocks);
      if (stop === STOP_WFI) this.setWaiting(STOP_WFI);
      this.updateTimers();
      if (stop === STOP_WFE) this.wfeSleep();
      if (t1 - this.lastSweep >= SWEEP_MS) { this.lastSweep = t1; this.code.sweep(this.codePage); }
    }
  }

  /** Hand-off counters: the latency of an interrupt raised for this vCPU by another thread, seen now (`lines`). */
  private irqTaken(lines: number): void {
    const f = this.f64, t = f[LINK_T_IRQ + this.index]!;
    if (t === 0) return;
    f[LINK_T_IRQ + this.index] = 0;
    if (lines !== 0) this.hs!.add(this.slept ? E_IRQ_SLEEPING : E_IRQ_RUNNING, hostNowMs() - t);
  }

  /** Runs one slice, handling exits; returns why it ended (STOP_BUDGET, STOP_WFI, STOP_HALT, …). */
  private slice(): number {
    const c = this.cpu, w = this.w, k = this.index;
    let budget = REMOTE_SLICE;
    for (;;) {
      const n = c.run(budget);
      this.retired += n;
      budget -= n;
      const why = c.stop;
      if (why === STOP_HVC) {
        c.stop = STOP_BUDGET;
        this.request(RQ_HVC, c.exitEc, c.exitIss, 0, 0, 0);
        this.afterRequest();
      } else if (why === STOP_STAGE2) {
        c.stop = STOP_BUDGET;
        const m = this.mmu, ipa = m.faultIpa;
        const hi = Math.floor(ipa / 2 ** 32);
        this.request(RQ_STAGE2, m.faultVaLo, m.faultVaHi, m.faultWrite | (m.faultFetch << 1) | (m.faultS1ptw << 2), (ipa - hi * 2 ** 32) | 0, hi);
        this.afterRequest();
      } else if (why === STOP_BROADCAST) {
        c.stop = STOP_BUDGET;
        const page = icIvauPage(c, c.exitInsn, c.exitXlo, c.exitXhi);
        if (page === -2) this.broadcast(BC_INSN, c.exitInsn, c.exitXlo, c.exitXhi);
        else if (page >= 0) this.broadcast(BC_CODE_PAGE, 0, page, 0);
      } else if (why === STOP_TIMER) {
        c.stop = STOP_BUDGET;
        dropWrittenTimerPpis(this.gic, k, c);
      } else {
        return why; // budget, WFI, WFE (wfeSleep), halt
      }
      if (c.stop !== STOP_BUDGET || budget <= 0 || Atomics.load(w, vw(k, V_CMD)) !== CMD_RUN) return c.stop;
    }
  }

  /** After the home answered a hypercall or stage-2 fault: PSTATE from the block, and the handler's verdict. */
  private afterRequest(): void {
    const c = this.cpu;
    c.loadPstate();
    const stop = Atomics.load(this.w, vw(this.index, V_R0));
    if (stop === STOP_WFI || stop === STOP_HALT) c.stop = stop;
  }

  /**
   * Sends a request to the home and waits for its answer, applying broadcasts meanwhile (the home may be
   * waiting for this thread's acknowledgement before it gets to the request).
   */
  private request(kind: number, a0: number, a1: number, a2: number, a3: number, a4: number): void {
    const w = this.w, k = this.index;
    Atomics.store(w, vw(k, V_REQ_KIND), kind);
    Atomics.store(w, vw(k, V_A0), a0);
    Atomics.store(w, vw(k, V_A0 + 1), a1);
    Atomics.store(w, vw(k, V_A0 + 2), a2);
    Atomics.store(w, vw(k, V_A0 + 3), a3);
    Atomics.store(w, vw(k, V_A0 + 4), a4);
    const seq = (Atomics.load(w, vw(k, V_REQ_SEQ)) + 1) | 0;
    const t0 = this.hs !== null ? (this.f64[LINK_T_REQ + k] = hostNowMs()) : 0;
    Atomics.store(w, vw(k, V_REQ_SEQ), seq);
    this.wakeHome();
    // Not running guest code while it waits (L_EXEC); back to 1 and a look at broadcasts before it goes on.
    Atomics.store(w, L_EXEC + k, 0);
    try { this.awaitReply(seq); } finally { Atomics.store(w, L_EXEC + k, 1); this.ack(); }
    if (this.hs !== null) this.countRequest(kind, a0, a1, hostNowMs() - t0);
  }

  /** Hand-off counters: a request of `kind` (its first arguments a0, a1) answered after `ms`. */
  private countRequest(kind: number, a0: number, a1: number, ms: number): void {
    const hs = this.hs!;
    if (kind === RQ_STAGE2) hs.add(E_REQ_STAGE2, ms);
    else if (kind === RQ_HVC) {
      if (a1 === 0) hs.add(E_REQ_PSCI, ms);
      else { hs.add(E_REQ_HCALL, ms); hs.hypercall(this.cpu.r[32]!, ms); }
    } else {
      const page = (a0 >>> 0) - ((a0 >>> 0) & 0xfff);
      hs.add(page === UART_BASE ? E_REQ_UART : page === RTC_BASE ? E_REQ_RTC : E_REQ_EOI, ms);
    }
  }

  private awaitReply(seq: number): void {
    const w = this.w, k = this.index;
    for (;;) {
      const bell = Atomics.load(w, vw(k, V_BELL));
      if (Atomics.load(w, vw(k, V_DONE_SEQ)) === seq) return;
      this.ack();
      // The home is gone (the domain was destroyed): give up; the loop sees the command next.
      if (Atomics.load(w, vw(k, V_CMD)) === CMD_QUIT) { Atomics.store(w, vw(k, V_R0), STOP_HALT); return; }
      Atomics.wait(w, vw(k, V_BELL), bell, IDLE_WAIT_MS);
    }
  }

  /** How this thread applies broadcasts (takeBroadcasts): to its vCPU. Made once. */
  private readonly sink: BroadcastSink = {
    apply: (kind, insn, xlo, xhi) => {
      if (kind === BC_STAGE2) { if (this.stage2 !== null) this.mmu.dropUnmapped(this.stage2); }
      else if (kind === BC_DIRTY) this.syncDirty();
      else if (kind === BC_CODE_PAGE) this.cpu.invalidateCodePage(xlo);
      else applyBroadcast(this.cpu, insn, xlo, xhi);
    },
    applyAll: () => { applyAllBroadcasts(this.cpu); this.syncDirty(); if (this.hs !== null) this.hs.addN(E_BC_ALL, 1); },
  };

  /** The dirty log on or off as the home set it (L_DIRTY), and no TLB entry with write permission (BC_DIRTY). */
  private syncDirty(): void {
    this.mmu.dirty = Atomics.load(this.w, L_DIRTY) === 1 ? this.dirtyLog : null;
    this.mmu.dropWrite();
  }

  /** Applies the broadcasts this vCPU has not applied yet, if any, and says so to the issuer. */
  private ack(): void {
    const w = this.w;
    if (Atomics.load(w, L_BC_SEQ) === this.bcSeen) return;
    const was = this.bcSeen;
    const seq = this.bcSeen = takeBroadcasts(w, this.bcSeen, this.sink);
    if (this.hs !== null) this.hs.addN(E_BC_APPLIED, (seq - was) | 0);
    Atomics.store(w, L_ACK + this.index, seq);
    if (!bcIssuerWaits(w, seq)) return;
    const from = Atomics.load(w, L_BC_FROM);
    if (from === 0) ringHomeBell(w); else ringVcpu(w, from);
  }

  /** This vCPU's broadcast: published to every other thread, back when all live ones applied it. */
  private broadcast(kind: number, insn: number, xlo: number, xhi: number): void {
    if (this.hs === null) { this.broadcastNow(kind, insn, xlo, xhi); return; }
    const t0 = hostNowMs();
    this.broadcastNow(kind, insn, xlo, xhi);
    this.hs.add(bcEvent(kind, insn), hostNowMs() - t0);
  }

  private broadcastNow(kind: number, insn: number, xlo: number, xhi: number): void {
    const w = this.w, k = this.index;
    const seq = publishBroadcast(w, k, kind, insn, xlo, xhi, () => this.ack());
    try {
      this.bcSeen = seq;
      if (bcRings(w, 0, seq, kind, insn)) this.wakeHome();
      for (let j = 1; j < this.vcpus; j++) if (j !== k && bcRings(w, j, seq, kind, insn)) ringVcpu(w, j);
      for (;;) {
        const bell = Atomics.load(w, vw(k, V_BELL));
        let pending = Atomics.load(w, L_EXEC) === 1 && Atomics.load(w, L_ACK) !== seq;
        for (let j = 1; j < this.vcpus && !pending; j++) {
          if (j === k) continue;
          if (Atomics.load(w, vw(j, V_STATUS)) === ST_RUNNING && Atomics.load(w, L_EXEC + j) === 1 && Atomics.load(w, L_ACK + j) !== seq) pending = true;
        }
        if (!pending) return;
        if (Atomics.load(w, vw(k, V_CMD)) === CMD_QUIT) return;
        Atomics.wait(w, vw(k, V_BELL), bell, 1);
      }
    } finally {
      Atomics.store(w, L_BC_LOCK, 0);
    }
  }

  /**
   * WFE found no event (PC is past it): sleeps until a WFE wake-up event (wfe.ts) — SEV from another vCPU (a
   * broadcast: it sets the event register, consumed here as WFE would), an interrupt line up (masked or not),
   * a timer, the event stream, the exclusive monitor cleared by another vCPU's store — or until the home wants
   * something (a command, a new state): returning early is a spurious wake-up, which WFE allows. The sleep is
   * not CPU time (outside the slice's clock) and the vCPU stays runnable for the scheduler (a lock holder is
   * running somewhere). Allocates nothing.
   */
  private wfeSleep(): void {
    try { this.wfeWait(); } finally {
      if (this.wfeAt >= 0) { setWfeSleeper(this.w, this.index, -1, this.wfeAt); this.wfeAt = -1; }
    }
  }

  /** wfeSleep's loop: returns on a wake-up event. Publishes the granule it sleeps on (wfeAt) before it sleeps. */
  private wfeWait(): void {
    const c = this.cpu, w = this.w, k = this.index;
    const start = performance.now();
    const stream = nextStreamEvent(c, c.counter());
    let poll = WFE_POLL_MIN_MS;
    for (;;) {
      const bell = Atomics.load(w, vw(k, V_BELL));
      this.ack(); // SEV arrives as a broadcast
      if (c.event !== 0) { c.event = 0; return; }
      if (Atomics.load(w, vw(k, V_CMD)) !== CMD_RUN || Atomics.load(w, vw(k, V_GEN)) !== this.gen) return;
      if (this.gic.outputs(k) !== 0) return;
      this.updateTimers();
      if ((c.irqLine | c.fiqLine) !== 0 || monitorCleared(c)) return;
      const now = c.counter();
      if (stream >= 0 && now >= stream) return;
      if (c.exclOff >= 0 && performance.now() - start < WFE_SPIN_MS) continue;
      if (c.exclOff >= 0 && this.wfeAt < 0) {
        // Stores that release a lock (STLR, STXR) ring this vCPU from now on; look at the value once more first.
        this.wfeAt = c.exclOff >> 6;
        setWfeSleeper(w, k, this.wfeAt, -1);
        continue;
      }
      let ms = msToTimer(c, IDLE_WAIT_MS);
      if (stream >= 0) ms = Math.min(ms, (stream - now) / TICKS_PER_MS);
      if (c.exclOff >= 0) { ms = Math.min(ms, poll); poll = Math.min(2 * poll, WFE_POLL_MAX_MS); }
      if (ms > 0) {
        if (this.hs === null) Atomics.wait(w, vw(k, V_BELL), bell, ms);
        else {
          const s0 = hostNowMs();
          const r = Atomics.wait(w, vw(k, V_BELL), bell, ms);
          this.hs.add(E_WFE_SLEEP, hostNowMs() - s0);
          if (r !== "timed-out") this.hs.add(E_WFE_RUNG, 0);
          this.slept = true;
        }
      }
    }
  }

  /** In WFI with no interrupt: sleeps until the earliest timer deadline or a ring. */
  private sleep(bell: number): void {
    const ms = msToTimer(this.cpu, IDLE_WAIT_MS);
    if (ms <= 0) return;
    if (this.hs === null) { Atomics.wait(this.w, vw(this.index, V_BELL), bell, ms); return; }
    const s0 = hostNowMs();
    Atomics.wait(this.w, vw(this.index, V_BELL), bell, ms);
    this.hs.add(E_WFI_SLEEP, hostNowMs() - s0);
    this.slept = true;
    this.hs.flush();
  }

  /** This vCPU's want word for the scheduler (stored on change only). */
  private setWant(x: number): void {
    if (this.want === x || this.sched == null) return;
    this.want = x;
    Atomics.store(this.sched.words, this.sched.want, x);
  }

  private updateTimers(): void { driveTimerPpis(this.gic, this.index, this.cpu); }

  private setWaiting(x: number): void {
    this.waiting = x;
    Atomics.store(this.w, vw(this.index, V_WAITING), x);
    if (x !== 0) this.wakeHome(); // the home's idea of whether the domain wants a pCPU changes (Board.remoteBusy)
  }

  private setStatus(st: number): void {
    if (this.status === st) return;
    this.status = st;
    Atomics.store(this.w, vw(this.index, V_STATUS), st);
    this.wakeHome();
  }

  private wakeHome(): void {
    const w = this.w;
    if (HANDOFF && this.f64[LINK_T_HOME] === 0) this.f64[LINK_T_HOME] = hostNowMs();
    Atomics.add(w, L_HOME_BELL, 1);
    Atomics.notify(w, L_HOME_BELL);
    this.wakeHomeThread();
  }

  /** Another vCPU's interrupt line changed here: wake its thread, and the home (which takes its own lines). */
  private wakeCpu(cpu: number): void {
    if (HANDOFF && this.f64[LINK_T_IRQ + cpu] === 0) this.f64[LINK_T_IRQ + cpu] = hostNowMs();
    if (cpu >= 1) ringVcpu(this.w, cpu);
    this.wakeHome();
  }

  /** Another vCPU's interrupt line fell here: wake its thread as for a raise (no time stamp). */
  private wakeCpuLow(cpu: number): void {
    if (cpu >= 1) ringVcpu(this.w, cpu);
    this.wakeHome();
  }

  /** The GIC CPU interface, except that EOIs of the platform's watched INTID go to the home's window. */
  private gicc(local: MmioDevice): MmioDevice {
    const watch = this.eoiWatch;
    if (watch === 0) return local;
    return {
      size: local.size,
      supports64: local.supports64,
      read: (off, size) => local.read(off, size),
      write: (off, size, v, hi) => {
        if ((off === GICC_EOIR || off === GICC_AEOIR || off === GICC_DIR) && (v & 0x3ff) === watch) this.request(RQ_MMIO_WRITE, GICC_BASE + off, 0, size, v, hi);
        else local.write(off, size, v, hi);
      },
    };
  }

  /**
   * The UART: a write to UARTDR is posted to this vCPU's queue (vcpu-link.ts UART_Q_AREA; a request only when the
   * queue is full), a read of UARTFR comes from the flags the home published (L_UART_FR); the rest are requests.
   * Before, each character of console output cost two round trips to the home (an FR read, a DR write): ~20,000
   * requests per 2-vCPU boot, about 1 s of vCPU 1 waiting.
   */
  private uartWindow(): MmioDevice {
    const fwd = this.forward(UART_BASE, 0x1000), w = this.w, k = this.index;
    const q = uartQueueViews(w.buffer, w.byteOffset - LINK_AREA);
    return {
      size: fwd.size,
      read: (off, sz) => ((off & ~3) === UARTFR ? subWord(Atomics.load(w, L_UART_FR), off, sz) : fwd.read(off, sz)),
      write: (off, sz, v, hi) => {
        if ((off & ~3) !== UARTDR) { fwd.write(off, sz, v, hi); return; }
        const before = postUartByte(q, k, v & 0xff);
        if (before < 0) fwd.write(off, sz, v, hi);
        else if (before === 0) this.wakeHome(); // the home empties the queue at its next service
      },
    };
  }

  /** A device window served by the home (UART, RTC): every access is a request. */
  private forward(base: number, size: number): MmioDevice {
    const w = this.w, k = this.index;
    return {
      size,
      read: (off, sz) => { this.request(RQ_MMIO_READ, base + off, 0, sz, 0, 0); return Atomics.load(w, vw(k, V_R0)); },
      write: (off, sz, v, hi) => this.request(RQ_MMIO_WRITE, base + off, 0, sz, v, hi),
    };
  }

}

/**
 * Leaves `message` for the home and marks vCPU `index` crashed (its thread's last act after an emulator fault;
 * the home then stops the board as crashed, naming it), and wakes the home.
 */
export function reportVcpuCrash(memory: WebAssembly.Memory, ramBytes: number, index: number, message: string, wakeHome: () => void): void {
  const buf = memory.buffer as unknown as SharedArrayBuffer;
  const { w } = linkViews(buf, ramBytes);
  const area = new Uint8Array(buf, ramBytes + LINK_AREA + LINK_MSG, LINK_MSG_BYTES);
  area.fill(0);
  area.set(new TextEncoder().encode(message).subarray(0, LINK_MSG_BYTES - 1));
  Atomics.store(w, vw(index, V_STATUS), ST_CRASHED);
  Atomics.add(w, L_HOME_BELL, 1);
  Atomics.notify(w, L_HOME_BELL);
  wakeHome();
}

