/**
 * The board: guest RAM, vCPUs, GICv2, generic timers, PL011, PL031 and PSCI, with the arm64 Linux boot
 * protocol (Documentation/arch/arm64/booting.rst). It knows nothing of Xen: a platform above it (src/hv/
 * machine.ts composes the Xen ABI and back-ends) plugs in through BoardPlatform — hypercalls with a non-zero
 * `hvc` immediate, extra device-tree nodes, a wrapper for each vCPU's GIC CPU interface, and its own polling.
 * One Board runs in one thread (its home); its vCPUs are time-sliced there and share a decode cache, except the
 * vCPUs handed to threads of their own (detachVcpus; src/machine/remote-vcpu.ts runs them over the same shared
 * memory, and the board serves their hypercalls, device accesses and broadcasts: vcpu-link.ts).
 *
 * The host drives it with runSlice(): run every runnable vCPU for a slice, raise timer interrupts, and report
 * how long the board may sleep (all vCPUs in WFI) before the next timer is due.
 */
import { JitEngine, type JitStats } from "../cpu/arm64/jit/engine.js";
import { Cpu, CodeCache, sharedDecoder, EC_HVC, EC_UNKNOWN, STOP_BROADCAST, STOP_BUDGET, STOP_HALT, STOP_HVC, STOP_STAGE2, STOP_TIMER, STOP_WFE, STOP_WFI } from "../cpu/arm64/cpu.js";
import type { Stage2Map } from "../mmu/mmu.js";
import { Mmu } from "../mmu/mmu.js";
import { STATE_AREA_BYTES, WASM_PAGE, boardTailBytes, homeTlbAt, jitAreaAt } from "./tail-layout.js";
import { MmioRouter } from "../devices/mmio.js";
import { Gicv2 } from "../devices/gic/gicv2.js";
import { Pl011 } from "../devices/pl011/pl011.js";
import { Pl031 } from "../devices/pl031/pl031.js";
import { driveTimerPpis, dropWrittenTimerPpis, msToTimer } from "./timer-ppis.js";
import { parseArm64Image, ARM64_IMAGE_BASE_ALIGN } from "./arm64-image.js";
import { boardDtb } from "./board-fdt.js";
import { UARTDR, UARTFR } from "../devices/pl011/pl011.js";
import { GICC_BASE, GICD_BASE, GIC_IRQS, MAX_BOARD_VCPUS, MAX_RAM_MIB, RAM_BASE, RTC_BASE, RTC_INTID,
  UART_BASE, UART_INTID } from "./layout.js";
import * as psci from "./psci.js";
import { PC2, ST_SCRATCH, VCPU_STATE_BYTES } from "../cpu/arm64/state.js";
import { applyAllBroadcasts, applyBroadcast } from "../cpu/arm64/sys-insns.js";
import { WFE_POLL_MAX_MS, WFE_POLL_MIN_MS, WFE_SPIN_MS, monitorCleared, nextStreamEvent } from "../cpu/arm64/wfe.js";
import { CNTFRQ_HZ } from "../cpu/arm64/sys-timer.js";
import { PanicWatch } from "./panic-watch.js";
import type { MmioDevice } from "../devices/mmio.js";
import type { DtNode } from "../devices/dt.js";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { DomainClock, type GuestClock } from "../common/domain-clock.js";
import { reloadFromBlock } from "../cpu/arm64/vcpu-state.js";
import { FSC_STAGE2 } from "../mmu/mmu.js";
import { gicv2StateBytes } from "../devices/gic/gicv2.js";
import { R } from "../common/int64.js";
import { E_BC_ALL, E_BC_APPLIED, E_HOME_SLICE, E_HOME_WAKE, E_IRQ_RUNNING, E_IRQ_SLEEPING, E_SERVE, E_SERVE_WAIT, HANDOFF, bcEvent, handoffStats, hostNowMs } from "./handoff-stats.js";
import {
  BC_CODE_PAGE, BC_DIRTY, BC_INSN, BC_RING, BC_STAGE2, L_BC_RING, LINK_VIEW_BYTES, L_DIRTY, CMD_PARK, CMD_QUIT, CMD_RUN, GIC_AREA, LINK_AREA, LINK_BYTES, LINK_F64, LINK_MSG, LINK_MSG_BYTES, LINK_T_HOME, LINK_T_IRQ, LINK_T_REQ,
  L_ACK, L_EXEC, L_BC_FROM, L_BC_LOCK, L_BC_SEQ, L_EOI_WATCH, L_GIC_LOCK, L_HOME_BELL, L_PAIR_LOCK, L_SCHED_ASK, L_WFE_AT, L_WFE_SLEEPERS, setWfeSleeper, wakeWfeSleepers,
  RQ_HVC, RQ_MMIO_READ, RQ_MMIO_WRITE, RQ_STAGE2, ST_CRASHED, ST_GONE, ST_PARKED, ST_RUNNING, ST_STARTING, V_A0, V_CMD, V_DONE_SEQ,
  UART_Q_AREA, UART_Q_BYTES, L_UART_FR, drainUartQueue, uartQueueViews, V_GEN, V_JIT_BLOCKS, V_R0, V_R1, V_REQ_KIND, V_REQ_SEQ, V_STATUS, V_WAITING, icIvauPage, linkViews, publishBroadcast, ringVcpu, bcRings, bcIssuerWaits, takeBroadcasts, vw,
  type BroadcastSink,
} from "./vcpu-link.js";

export interface BoardOptions {
  memMiB: number;
  vcpus: number;
  /** Console bytes from the guest (the buffer is reused after the call returns: copy to keep). */
  consoleOut: (bytes: Uint8Array) => void;
  /** What the platform above the board adds (Xen: src/hv/machine.ts); absent: a bare board. */
  platform?: BoardPlatform;
  /**
   * Adopt this domain memory (RAM + vCPU state area, see Board.memory) instead of allocating one: a board
   * restored in another thread over the same, shared memory (nothing copied). Its size must match memMiB.
   */
  memory?: WebAssembly.Memory;
  /** The domain's clock: every vCPU's system counter and the RTC (default: a fresh DomainClock, reading 0 now). */
  clock?: GuestClock;
  /**
   * A ROM window at guest-physical 0 of this many bytes (a firmware board's flash: firmware.ts), a multiple
   * of 2 MiB: it takes the first romBytes of the domain memory, and RAM (memMiB, still at RAM_BASE) follows it
   * there. Default 0: no window, RAM from offset 0.
   */
  romBytes?: number;
}

/** What boot() places in RAM (booting.rst): the kernel Image, an optional initramfs, the command line. */
export interface BootImages {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  /**
   * Bytes of RAM, from its base, that the device tree's memory node describes (default: all of it). The
   * platform keeps the rest for itself (Xen: its grant frames and magic pages at the top, src/xen/layout.ts).
   */
  memBytes?: number;
  /** Nodes to add under the DT root (Xen's /hypervisor), given the GIC's phandle. */
  extraDtNodes?: (gicPhandle: number) => DtNode[];
}

/**
 * The narrow interface through which a platform (a hypervisor's guest ABI) extends the board. Every hook is
 * called between instructions — after the vCPU's run() returned — never from inside an instruction handler.
 */
export interface BoardPlatform {
  /**
   * An `hvc #imm` with imm != 0 (imm 0 is PSCI, the board's own) by vCPU `vcpu`, PC already past it. Returns
   * false to have the board raise UNDEFINED for it, as Xen does for an immediate it does not know.
   */
  hvc(vcpu: number, cpu: Cpu, imm: number): boolean;
  /**
   * A stage-2 fault of vCPU `vcpu` (its MMU's fault record; PC at the faulting instruction): the platform
   * injects what its hypervisor would (Xen: an abort). Required when the platform sets a stage 2.
   */
  stage2Abort?(vcpu: number, cpu: Cpu): void;
  /** Wraps vCPU `vcpu`'s GIC CPU interface window (Xen: resampling its event-channel upcall on EOI). */
  gicc?(vcpu: number, gicc: MmioDevice): MmioDevice;
  /**
   * The INTID whose EOI/DIR writes the gicc wrapper watches: a vCPU on another thread sends those writes to the
   * home thread's wrapped window instead of its own (Xen: the event-channel PPI).
   */
  eoiWatch?: number;
  /**
   * After each slice: the platform's own service (console ring, vif rate windows). Returns how many ms until
   * it wants to run again on its own (Infinity: only on an event).
   */
  poll?(): number;
  /** The board stopped (powered off, reset, crashed). */
  stopped?(state: MachineState, why: string): void;
}

export type MachineState = "running" | "poweroff" | "reboot" | "crashed";

export class MachineError extends Error {
  constructor(readonly code: string, message: string) { super(message); }
}

export { MAX_BOARD_VCPUS } from "./layout.js";
/** Instructions per vCPU per scheduling slice (~1 ms at interpreter speed). */
const SLICE = 50_000;
/**
 * The home thread's slice while vCPUs run on other threads: their requests (hypercalls, UART accesses) and
 * broadcasts are served between slices, so a shorter slice bounds how long they wait (~0.2 ms).
 */
const SHARED_SLICE = 10_000;
/** How long parkRemotes waits for a vCPU thread that does not answer before it gives up (ms). */
const PARK_TIMEOUT_MS = 10_000;
/**
 * The decode cache drops the code pages not run since its last sweep (CodeCache.sweep) once at least this many
 * slices ran and this much host time passed: every 5 s while booting or busy, every ~5–10 s when idle (an idle
 * guest runs a short slice at each of its ~6 wake-ups per second). Both bounds, so a domain that waits for a pCPU
 * behind many others (few slices per second) keeps what it runs between its turns. Each sweep makes code that
 * runs less often than that be decoded again (boot CPU with 1 s and 5 s: docs/benchmarks.md).
 */
const SWEEP_SLICES = 32, SWEEP_MS = 5000;
/** XENO_NO_CODE_SWEEP=1 keeps every decoded page (the behaviour before sweeping), for A/B measurements. */
const SWEEP_ENABLED = !process.env.XENO_NO_CODE_SWEEP;
/**
 * A full GC after sweeps have dropped this many pages (8 KiB of handler array each), at most once per GC_MS and
 * only when every vCPU waits (an idle moment, not in the middle of a boot's busy stretch): see collectGarbage.
 * Two full GCs of a booted domain's worker heap cost ~20–60 ms.
 */
const GC_PAGES = 256, GC_MS = 10_000;
/** …or after this many compiled modules were let go (a module holds ~10–40 KiB of code and metadata). */
const GC_MODULES = 32;

let gcFn: (() => void) | null | undefined;
/**
 * Two full garbage collections of this thread's isolate (no-op where `gc` cannot be had). A domain's worker
 * thread never returns to its event loop, so V8's idle-time and memory-reducer GCs never run there: the handler
 * arrays a sweep dropped would stay resident until an allocation-driven mark-compact, which an idle guest may
 * not cause for hours. The first GC frees them; the second compacts the old-space pages the first left sparse
 * (V8 picks evacuation candidates from the previous GC's live bytes) so they go back to the OS.
 * `--expose-gc` set at run time only adds `gc` to contexts created after it (here one throwaway vm context).
 */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    try {
      setFlagsFromString("--expose-gc");
      const f: unknown = runInNewContext("gc");
      gcFn = typeof f === "function" ? (f as () => void) : null;
    } catch {
      gcFn = null; // ReferenceError: this Node does not let the flag through; sweeping still bounds the live set
    }
  }
  if (gcFn === null) return;
  gcFn();
  gcFn();
}

interface Vcpu {
  index: number;
  mpidr: number;
  cpu: Cpu;
  mmu: Mmu;
  router: MmioRouter;
  online: boolean;
  /** In WFI/WFE: not run until an interrupt is pending (or, for WFE, another vCPU made progress). */
  waiting: number; // 0, STOP_WFI or STOP_WFE
  /** Runs on a thread of its own (detachVcpus): `cpu` here is the home's copy over the same state block. */
  remote: boolean;
  /** In WFE (with vCPU threads, see wfeWoken): when it began (ms), the event stream's next event, the poll. */
  wfeStart: number;
  wfeStream: number;
  wfePoll: number;
  /** The granule it sleeps on in WFE, published to the other threads (vcpu-link.ts L_WFE_AT), or -1. */
  wfeAt: number;
}

/**
 * The domain's memory (one shared WebAssembly.Memory, so generated code can address all of it): guest RAM
 * from offset 0 (guest-physical RAM_BASE + offset), then the tail (tail-layout.ts): the state area (the vCPU
 * state blocks, src/cpu/arm64/state.ts, one per vCPU at ramBytes + k * VCPU_STATE_BYTES; the GIC; the vCPU
 * link), the TLB areas and the compiling engines' areas. A wasm32 memory ends at 4 GiB; the MMU's int32 RAM
 * offsets stop RAM below 2 GiB first (MAX_RAM_MIB).
 */
export { boardTailBytes } from "./tail-layout.js";
if (8 * VCPU_STATE_BYTES > GIC_AREA || GIC_AREA + gicv2StateBytes(8, GIC_IRQS) > LINK_AREA || LINK_AREA + LINK_BYTES > UART_Q_AREA ||
  UART_Q_AREA + 8 * UART_Q_BYTES > LINK_AREA + L_BC_RING * 4 || LINK_AREA + (L_BC_RING + 4 * BC_RING) * 4 > LINK_AREA + LINK_VIEW_BYTES ||
  LINK_AREA + LINK_VIEW_BYTES > STATE_AREA_BYTES) {
  throw new Error("board: the state area cannot hold 8 vCPU blocks, the GIC, the vCPU link, the UART queues and the broadcast ring");
}

export class Board {
  /** The domain's memory: RAM then the vCPU state blocks (see above). */
  readonly memory: WebAssembly.Memory;
  /** memory.buffer: RAM is its first ramBytes. */
  readonly ram: SharedArrayBuffer;
  readonly ramBytes: number;
  /** The ROM window's bytes at the start of the memory (BoardOptions.romBytes); guest RAM is the rest of ramBytes. */
  readonly romBytes: number;
  /** A byte per 4 KiB frame of the ROM window: 1 = ROMD (Mmu.rom), shared by every vCPU's MMU. */
  private readonly romMap: Uint8Array;
  readonly gic: Gicv2;
  readonly uart: Pl011;
  readonly rtc: Pl031;
  readonly vcpus: Vcpu[] = [];
  /** The one clock of this domain (its vCPUs' counters, the RTC). */
  readonly clock: GuestClock;
  state: MachineState = "running";
  /** Why the board stopped (PSCI call or fault), for the toolstack's log. */
  reason = "";
  private readonly code: CodeCache;
  private readonly codePage: Uint8Array;
  private readonly mmus: Mmu[] = [];
  private readonly out = new Uint8Array(4096);
  private outLen = 0;
  private readonly rx: Uint8Array[] = [];
  private readonly consoleOut: (b: Uint8Array) => void;
  private readonly platform: BoardPlatform | null;
  /** The platform's stage-2 map (1 byte per RAM frame, 0 = unmapped), every vCPU's MMU's (setStage2). */
  private stage2: Stage2Map | null = null;
  /** Total guest instructions retired (all vCPUs). */
  retired = 0;
  /**
   * Seconds each vCPU has run guest code on this (home) thread: runVcpu's wall time, hypercalls and exits it
   * handles included (Xen charges a vCPU its hypercalls too). Index = vCPU index; fixed size (MAX_BOARD_VCPUS),
   * so the worker reads it after every slice without allocating. A vCPU on a thread of its own is counted by
   * that thread (threadSeconds).
   */
  readonly homeRunS = new Float64Array(MAX_BOARD_VCPUS);
  /** Slices run and host time (performance.now) since the decode cache's last sweep. */
  private slicesSinceSweep = 0;
  private lastSweepMs = performance.now();
  /** The vCPU link (vcpu-link.ts) and what the home has seen of it. */
  private readonly link: Int32Array;
  /** The UART queues of the vCPU threads (vcpu-link.ts UART_Q_AREA). */
  private readonly uartQ: { w: Int32Array; b: Uint8Array };
  private readonly linkF64: Float64Array;
  /** vCPUs on threads of their own, and the slice for the home's vCPUs (SLICE, or SHARED_SLICE with remotes). */
  private remotes = 0;
  private slice = SLICE;
  private bcSeen = 0;
  /** Inside serve(): a nested wait (a broadcast from the request's handler) only acknowledges. */
  private serving = false;
  /** Pages dropped since the last GC, and when that was (collectGarbage). */
  private droppedSinceGc = 0;
  /** Compiled modules let go (modules compiled − modules held) at the last GC. */
  private deadModulesAtGc = 0;
  private lastGcMs = performance.now();
  /** Hand-off counters of this thread (XENO_HANDOFF_STATS), or null. */
  private readonly hs = handoffStats("home");
  /**
   * The UART as this thread's vCPUs see it: while vCPUs run on other threads, the bytes they posted (vcpu-link.ts
   * UART_Q_AREA) go out before any access here, and the flag register they read is republished after it.
   */
  private readonly homeUart: MmioDevice = {
    size: 0x1000,
    read: (off, size) => {
      if (this.remotes === 0) return this.uart.read(off, size);
      this.drainUartQueues();
      const v = this.uart.read(off, size);
      this.publishUartFlags();
      return v;
    },
    write: (off, size, v) => {
      if (this.remotes === 0) { this.uart.write(off, size, v); return; }
      this.drainUartQueues();
      this.uart.write(off, size, v);
      this.publishUartFlags();
    },
  };
  /** A kernel panic on the console ends the board as crashed (see panic-watch.ts). */
  private readonly panicWatch = new PanicWatch((why) => this.stop("crashed", `guest kernel panic: ${why}`));

  constructor(o: BoardOptions) {
    const romBytes = o.romBytes ?? 0;
    if (!Number.isInteger(romBytes) || romBytes < 0 || romBytes % ARM64_IMAGE_BASE_ALIGN !== 0 || romBytes > RAM_BASE) {
      throw new MachineError("MACHINE_MEMORY", `a ROM window of ${romBytes} bytes: want a multiple of 2 MiB below RAM_BASE`);
    }
    const maxMiB = MAX_RAM_MIB - romBytes / 2 ** 20;
    if (!Number.isInteger(o.memMiB) || o.memMiB < 16 || o.memMiB > maxMiB) {
      throw new MachineError("MACHINE_MEMORY", `memory=${o.memMiB} MiB: this machine supports 16..${maxMiB} MiB${romBytes > 0 ? ` (with ${romBytes >>> 20} MiB of flash)` : ""}`);
    }
    if (!Number.isInteger(o.vcpus) || o.vcpus < 1 || o.vcpus > MAX_BOARD_VCPUS) {
      throw new MachineError("MACHINE_VCPUS", `vcpus=${o.vcpus}: the GICv2 board supports 1..8 vCPUs`);
    }
    this.consoleOut = o.consoleOut;
    this.platform = o.platform ?? null;
    this.clock = o.clock ?? new DomainClock();
    const ramBytes = romBytes + o.memMiB * 1024 * 1024;
    this.romBytes = romBytes;
    this.romMap = new Uint8Array(romBytes >>> 12).fill(1);
    const pages = (ramBytes + boardTailBytes(o.vcpus)) / WASM_PAGE;
    if (o.memory !== undefined && o.memory.buffer.byteLength !== pages * WASM_PAGE) {
      throw new MachineError("MACHINE_MEMORY", `memory=${o.memMiB} MiB: the given domain memory has ${o.memory.buffer.byteLength} bytes, not ${pages * WASM_PAGE}`);
    }
    this.memory = o.memory ?? new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    // A shared memory's buffer is a SharedArrayBuffer (lib.dom types it as ArrayBuffer); it never grows.
    this.ram = this.memory.buffer as unknown as SharedArrayBuffer;
    this.ramBytes = ramBytes;
    // Hot code runs compiled to WebAssembly over this memory (src/cpu/arm64/jit; XENO_JIT=0: interpreted).
    this.code = new CodeCache(ramBytes >>> 12, new JitEngine(this.memory, sharedDecoder(), true, jitAreaAt(ramBytes, o.vcpus, 0)), true);
    this.codePage = new Uint8Array(ramBytes >>> 12);
    if (this.hs !== null) this.hs.jitStats = () => this.code.jit?.stats ?? null;
    this.uartQ = uartQueueViews(this.ram, ramBytes);
    const link = linkViews(this.ram, ramBytes);
    this.link = link.w;
    this.linkF64 = link.f64;
    if (o.memory === undefined) this.link.fill(0);
    // The GIC's state lives in the domain memory, under a lock word: vCPU threads share it (remote-vcpu.ts).
    this.gic = new Gicv2({ cpus: o.vcpus, irqs: GIC_IRQS, buffer: this.ram, byteOffset: ramBytes + GIC_AREA, lock: this.link, lockIndex: L_GIC_LOCK });
    this.uart = new Pl011(this.gic.spiLine(UART_INTID), (b) => this.console(b));
    this.uart.onRxSpace = () => this.feedRx();
    this.rtc = new Pl031(this.gic.spiLine(RTC_INTID), () => this.clock.wallMs() / 1000);
    this.gic.onIrqChange = (cpu, up) => {
      const v = this.vcpus[cpu];
      if (!v) return;
      v.cpu.irqLine = up ? 1 : 0;
      if (!v.remote) return;
      if (HANDOFF && up && this.linkF64[LINK_T_IRQ + cpu] === 0) this.linkF64[LINK_T_IRQ + cpu] = hostNowMs();
      ringVcpu(this.link, cpu);
    };
    this.gic.onFiqChange = (cpu, up) => { const v = this.vcpus[cpu]; if (v) { v.cpu.fiqLine = up ? 1 : 0; if (v.remote) ringVcpu(this.link, cpu); } };
    for (let k = 0; k < o.vcpus; k++) {
      const router = new MmioRouter();
      router.map(GICD_BASE, this.gic.distributor(k));
      const gicc = this.gic.cpuInterface(k);
      router.map(GICC_BASE, this.platform?.gicc?.(k, gicc) ?? gicc);
      router.map(UART_BASE, this.homeUart);
      router.map(RTC_BASE, this.rtc);
      const v: Vcpu = { index: k, mpidr: ((k >> 4) << 8) | (k & 15), router, online: false, waiting: 0, remote: false,
        wfeStart: 0, wfeStream: -1, wfePoll: WFE_POLL_MIN_MS, wfeAt: -1, cpu: null!, mmu: null! };
      this.resetVcpu(v);
      this.vcpus.push(v);
    }
  }

  /** A vCPU at its reset state (EL1h, MMU off, DAIF masked), as PSCI CPU_ON and power-on give it. */
  private resetVcpu(v: Vcpu): void {
    if (v.mmu) this.mmus.splice(this.mmus.indexOf(v.mmu), 1);
    const mmu = new Mmu(this.ram, RAM_BASE - this.romBytes, this.codePage, this.ramBytes, homeTlbAt(this.ramBytes, v.index));
    if (this.romBytes > 0) { mmu.romBytes = this.romBytes; mmu.rom = this.romMap; }
    mmu.peers = this.mmus;
    this.mmus.push(mmu);
    mmu.mmio = v.router;
    mmu.stage2 = this.stage2; // the platform's P2M (Xen: src/xen/p2m.ts) is every vCPU's stage 2
    mmu.dirty = this.dirtyLog; // a vCPU brought up during a live migration logs its writes too
    if (this.remotes > 0) this.shareMmu(mmu, v.index);
    const cpu = new Cpu(mmu, this.code, { buffer: this.ram, offset: this.ramBytes + v.index * VCPU_STATE_BYTES });
    cpu.vcpuIndex = v.index;
    cpu.exits = true; // hvc/smc, IS maintenance and timer writes come back to runVcpu as exits
    cpu.counter = this.clock.now; // one counter for every vCPU of the domain
    if (this.remotes > 0 && !v.remote) this.wakeOnRelease(cpu);
    v.cpu = cpu;
    v.mmu = mmu;
    v.waiting = 0;
  }

  /**
   * Installs the platform's stage-2 map in every vCPU's MMU, now and after any reset: guest-physical RAM frames
   * it marks 0 fault (STOP_STAGE2 → BoardPlatform.stage2Abort). Xen's P2M, src/xen/p2m.ts.
   */
  setStage2(map: Stage2Map | null): void {
    this.stage2 = map;
    for (const v of this.vcpus) { v.mmu.stage2 = map; v.mmu.flushAll(); }
  }

  /** The dirty log of a live migration (Mmu.dirty: a byte per RAM page), or null when not logging. */
  private dirtyLog: Uint8Array | null = null;

  /**
   * Dirty logging for a live migration (src/hv/save-live.ts): every vCPU's MMU marks the RAM pages it writes
   * in `log` (Mmu.dirty) from now on, or stops (null). Starting or a round (`dirtyRound`) takes write
   * permission from every TLB entry. vCPUs on threads of their own have MMUs this thread cannot reach between
   * slices: refused (the caller migrates without pre-copy).
   */
  setDirtyLog(log: Uint8Array | null): void {
    if (log !== null && this.remotes > 0 && log !== this.sharedDirty) throw new MachineError("MACHINE_STATE", "with vCPUs on threads of their own the dirty log must be Board.newDirtyLog()'s");
    this.dirtyLog = log;
    for (const m of this.mmus) { m.dirty = log; m.dropWrite(); }
    if (this.remotes > 0) { Atomics.store(this.link, L_DIRTY, log !== null ? 1 : 0); this.broadcast(BC_DIRTY, 0, 0, 0); }
  }

  /**
   * A log for setDirtyLog, zeroed: with vCPUs on threads of their own the one over shared memory that their MMUs
   * mark too (handed to them at start: sharedDirty), else a new one.
   */
  newDirtyLog(): Uint8Array {
    if (this.sharedDirty === null) return new Uint8Array(this.ramBytes >>> 12);
    this.sharedDirty.fill(0);
    return this.sharedDirty;
  }

  /**
   * A dirty-logging round: the caller has taken the marks; no TLB entry keeps write permission — on every
   * thread before this returns (a broadcast: a write through an entry that kept it happened before, so the page
   * is in the round the caller took, and is read after this).
   */
  dirtyRound(): void {
    for (const m of this.mmus) m.dropWrite();
    if (this.remotes > 0) this.broadcast(BC_DIRTY, 0, 0, 0);
  }

  /** The dirty log the vCPU threads mark (over a SharedArrayBuffer), made when the first vCPU is handed over. */
  get sharedDirtyLog(): Uint8Array | null { return this.sharedDirty; }
  private sharedDirty: Uint8Array | null = null;

  /** Maps device `dev` at guest-physical `base` for every vCPU (a firmware board's flash banks, fw_cfg). */
  mapDevice(base: number, dev: MmioDevice): void {
    for (const v of this.vcpus) v.router.map(base, dev);
  }

  /**
   * ROMD on or off for the ROM window's [offset, offset+size) (a flash bank entering or leaving read-array
   * mode): every TLB is flushed, so the next read goes where the mode says.
   */
  setRomd(offset: number, size: number, on: boolean): void {
    this.romMap.fill(on ? 1 : 0, offset >>> 12, (offset + size) >>> 12);
    for (const m of this.mmus) m.flushAll();
  }

  /**
   * Bytes [offset, offset+len) of the domain memory (ROM window or RAM) were changed by a device (flash
   * programmed or erased, a DMA): decoded code there goes.
   */
  memoryChanged(offset: number, len: number): void {
    const v = this.vcpus[0]!;
    for (let p = offset >>> 12; p < Math.ceil((offset + len) / 4096); p++) if (this.codePage[p]) v.cpu.invalidateCodePage(p);
  }

  /**
   * Powers on vCPU 0 at `pc` (EL1h, MMU off: its reset state) with x0 = `x0`: a firmware board starts at the
   * flash's first instruction, as QEMU's virt starts firmware at 0.
   */
  startAt(pc: number, x0: number): void {
    const v = this.vcpus[0]!;
    const r = v.cpu.r;
    r[0] = x0 | 0; r[1] = Math.floor(x0 / 2 ** 32);
    r[PC2] = pc | 0; r[PC2 + 1] = Math.floor(pc / 2 ** 32);
    v.online = true;
  }

  /** Places kernel, initrd and DTB in RAM and points vCPU 0 at the kernel (booting.rst section 4). */
  boot(o: BootImages): void {
    if (this.romBytes > 0) throw new MachineError("MACHINE_BOOT", "a board with a ROM window boots its firmware (firmware.ts), not a kernel");
    const ramBytes = this.ramBytes; // not ram.byteLength: the vCPU state area follows RAM in the buffer
    const hdr = parseArm64Image(o.kernel);
    const u8 = new Uint8Array(this.ram, 0, ramBytes);
    // A 2 MiB aligned base plus text_offset; the image's own size (with BSS) must fit.
    const kernelOff = hdr.textOffset;
    const kernelEnd = kernelOff + Math.max(hdr.imageSize, o.kernel.length);
    const memBytes = o.memBytes ?? ramBytes;
    if (!Number.isInteger(memBytes) || memBytes <= ARM64_IMAGE_BASE_ALIGN || memBytes > ramBytes) {
      throw new RangeError(`boot: memBytes ${memBytes} outside 2 MiB..${ramBytes}`);
    }
    const dtbOff = memBytes - ARM64_IMAGE_BASE_ALIGN; // last 2 MiB: the DTB (at most 2 MiB, 8-byte aligned)
    let initrd: { start: number; end: number } | undefined;
    let initrdOff = dtbOff;
    if (o.initrd !== undefined) {
      initrdOff = Math.floor((dtbOff - o.initrd.length) / 4096) * 4096;
      initrd = { start: RAM_BASE + initrdOff, end: RAM_BASE + initrdOff + o.initrd.length };
    }
    if (kernelEnd > initrdOff) {
      throw new MachineError("MACHINE_TOO_SMALL", `memory=${ramBytes >>> 20} MiB is too small for the kernel ` +
        `(${Math.ceil(kernelEnd / 2 ** 20)} MiB) and ramdisk (${Math.ceil((o.initrd?.length ?? 0) / 2 ** 20)} MiB)`);
    }
    u8.set(o.kernel, kernelOff);
    if (o.initrd !== undefined) u8.set(o.initrd, initrdOff);
    const dtb = boardDtb({ ramBytes: memBytes, vcpus: this.vcpus.length, bootargs: o.cmdline, initrd, extraNodes: o.extraDtNodes });
    if (dtb.length > ARM64_IMAGE_BASE_ALIGN) throw new MachineError("MACHINE_DTB", "device tree larger than 2 MiB");
    u8.set(dtb, dtbOff);
    const v = this.vcpus[0];
    const r = v.cpu.r;
    r[0] = (RAM_BASE + dtbOff) | 0; r[1] = 0; // x0 = DTB physical address; x1..x3 = 0
    r[PC2] = (RAM_BASE + kernelOff) | 0; r[PC2 + 1] = 0;
    v.online = true;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Running

  /**
   * Runs each runnable vCPU for one slice. Returns milliseconds the host may sleep before calling again:
   * 0 when some vCPU is runnable, else the time to the earliest timer (capped), or -1 when the machine stopped.
   */
  runSlice(): number {
    let ran = false;
    if (this.remotes > 0) Atomics.store(this.link, L_EXEC, 1); // before serviceRemotes applies broadcasts
    this.serviceRemotes();
    this.rtc.poll(); // the PL031's match interrupt (a clock read and a compare), before waiting vCPUs look
    for (const v of this.vcpus) {
      if (v.remote || !v.online || this.state !== "running") continue;
      const slept = v.waiting !== 0;
      if (slept) {
        // Without vCPU threads WFE is a yield: the event it waits for (a lock released by another vCPU's store,
        // SEV) can only come from the others, who have just had their slice; WFE may wake spuriously (Arm ARM
        // D1.16.1). With them, the vCPU sleeps until a wake-up event (wfeWoken).
        if (v.cpu.irqLine === 0 && v.cpu.fiqLine === 0) {
          if (v.waiting === STOP_WFE) {
            if (this.remotes > 0 && !this.wfeWoken(v)) continue;
            if (v.wfeAt >= 0) { setWfeSleeper(this.link, v.index, -1, v.wfeAt); v.wfeAt = -1; }
          }
          else {
            this.updateTimers(v);
            if (v.cpu.irqLine === 0) continue;
          }
        }
        v.waiting = 0;
      }
      if (this.hs !== null && this.linkF64[LINK_T_IRQ + v.index] !== 0) {
        // An interrupt another thread raised for this vCPU: from then until it runs (takes it).
        if ((v.cpu.irqLine | v.cpu.fiqLine) !== 0) this.hs.add(slept ? E_IRQ_SLEEPING : E_IRQ_RUNNING, hostNowMs() - this.linkF64[LINK_T_IRQ + v.index]!);
        this.linkF64[LINK_T_IRQ + v.index] = 0;
      }
      const r0 = performance.now(), n0 = this.retired;
      const c = this.runVcpu(v);
      const r1 = performance.now();
      this.homeRunS[v.index]! += (r1 - r0) / 1000;
      if (this.hs !== null) { this.hs.add(E_HOME_SLICE, r1 - r0); this.hs.instructions += this.retired - n0; }
      ran = true;
      if (c.stop === STOP_WFI || c.stop === STOP_WFE) v.waiting = c.stop;
      if (c.stop === STOP_WFE) { v.wfeStart = performance.now(); v.wfePoll = WFE_POLL_MIN_MS; v.wfeStream = nextStreamEvent(c, c.counter()); }
      this.updateTimers(v);
      this.serviceRemotes();
    }
    if (this.remotes > 0) Atomics.store(this.link, L_EXEC, 0);
    if (ran) this.sweepCode();
    this.hs?.flush();
    // The platform's own service (Xen: console ring, vif rate windows) bounds the sleep too.
    let next = this.platform?.poll?.() ?? Infinity;
    this.flushOut();
    if (this.state !== "running") return -1;
    if (ran && this.vcpus.some((v) => !v.remote && v.online && v.waiting === 0)) return 0;
    // Everyone here waits: sleep until the earliest enabled timer or platform deadline (or an event wakes the
    // host; vCPUs on other threads ring it when they need the home).
    for (const v of this.vcpus) {
      if (!v.online || v.remote) continue;
      if (v.cpu.irqLine !== 0 || (v.waiting === STOP_WFE && this.remotes === 0)) return 0;
      next = msToTimer(v.cpu, next);
      if (v.waiting === STOP_WFE) next = Math.min(next, this.wfeWait(v));
    }
    // The RTC's match: its counter steps at each whole second of the domain's wall clock.
    const rtcS = this.rtc.secondsUntilMatch();
    if (rtcS >= 0) next = Math.min(next, rtcS * 1000 - (this.clock.wallMs() % 1000));
    if (!this.vcpus.some((v) => v.online)) { this.stop("crashed", "all vCPUs are off"); return -1; }
    return Math.max(0, Math.min(next, 1000));
  }

  /**
   * Whether home vCPU v, in WFE while vCPUs run on other threads, has a wake-up event (src/cpu/arm64/wfe.ts):
   * SEV (a broadcast the home applied: the event register, consumed here as WFE would), an interrupt line,
   * a timer, the event stream, or its exclusive monitor cleared by another vCPU's store.
   */
  private wfeWoken(v: Vcpu): boolean {
    const c = v.cpu;
    if (c.event !== 0) { c.event = 0; return true; }
    this.updateTimers(v);
    if ((c.irqLine | c.fiqLine) !== 0 || monitorCleared(c)) return true;
    return v.wfeStream >= 0 && c.counter() >= v.wfeStream;
  }

  /**
   * How long (ms) home vCPU v may sleep in WFE before it must look again (wfeWoken): 0 while it spins on an armed
   * monitor (WFE_SPIN_MS), then polls that double up to WFE_POLL_MAX_MS, and the event stream's next event.
   * Rings (an interrupt for it, SEV, a request) wake the home sooner.
   */
  private wfeWait(v: Vcpu): number {
    const c = v.cpu;
    let ms = Infinity;
    if (c.exclOff >= 0) {
      if (performance.now() - v.wfeStart < WFE_SPIN_MS) return 0;
      if (v.wfeAt < 0) {
        // Stores that release a lock on other threads ring the home from now on; look again first.
        v.wfeAt = c.exclOff >> 6;
        setWfeSleeper(this.link, v.index, v.wfeAt, -1);
        return 0;
      }
      ms = v.wfePoll;
      v.wfePoll = Math.min(2 * v.wfePoll, WFE_POLL_MAX_MS);
    }
    if (v.wfeStream >= 0) ms = Math.min(ms, Math.max(0, (v.wfeStream - c.counter()) / (CNTFRQ_HZ / 1000)));
    return ms;
  }

  /**
   * Runs vCPU `v` for one slice, handling its exits between runs: `hvc` (PSCI or the platform's hypercalls),
   * inner-shareable maintenance and SEV (applied to every other online vCPU before this one goes on: they
   * share this thread, so a TLBI ...IS is complete everywhere before the issuer's next instruction), and timer
   * writes (the timer's PPI drops at once when the new settings stop it firing: a handler that moved CVAL
   * forward would otherwise be re-interrupted by the stale level, an interrupt storm; raising stays at slice
   * boundaries and wake-up checks, updateTimers). Returns the vCPU's Cpu (PSCI CPU_ON may replace another's).
   */
  private runVcpu(v: Vcpu): Cpu {
    let budget = this.slice;
    for (;;) {
      const c = v.cpu;
      const n = c.run(budget);
      this.retired += n;
      budget -= n;
      const why = c.stop;
      if (why === STOP_HVC) {
        c.stop = STOP_BUDGET;
        this.el2(v, c, c.exitEc, c.exitIss);
      } else if (why === STOP_BROADCAST) {
        c.stop = STOP_BUDGET;
        for (const o of this.vcpus) if (o.cpu !== c && o.online && !o.remote) applyBroadcast(o.cpu, c.exitInsn, c.exitXlo, c.exitXhi);
        if (this.remotes > 0) {
          const page = icIvauPage(c, c.exitInsn, c.exitXlo, c.exitXhi);
          if (page === -2) this.broadcast(BC_INSN, c.exitInsn, c.exitXlo, c.exitXhi);
          else if (page >= 0) this.broadcast(BC_CODE_PAGE, 0, page, 0);
        }
      } else if (why === STOP_STAGE2) {
        c.stop = STOP_BUDGET;
        if (this.platform?.stage2Abort === undefined) throw new Error("stage-2 fault without a platform to handle it");
        this.platform.stage2Abort(v.index, c);
      } else if (why === STOP_TIMER) {
        c.stop = STOP_BUDGET;
        dropWrittenTimerPpis(this.gic, v.index, c);
      } else {
        return c;
      }
      // The exit's handler may have stopped the vCPU (WFI-like block, CPU_OFF, power-off): that ends the slice.
      if (c.stop !== STOP_BUDGET || budget <= 0 || this.state !== "running" || !v.online) return c;
    }
  }

  /**
   * Between slices (no run loop active): drops decoded code pages that went cold (SWEEP_SLICES, SWEEP_MS), and
   * collects the garbage when enough was dropped and every vCPU waits.
   */
  private sweepCode(): void {
    if (++this.slicesSinceSweep < SWEEP_SLICES || !SWEEP_ENABLED) return;
    const now = performance.now();
    if (now - this.lastSweepMs < SWEEP_MS) return;
    this.slicesSinceSweep = 0;
    this.lastSweepMs = now;
    this.droppedSinceGc += this.code.sweep(this.codePage);
    // Compiled modules no longer held (their blocks dropped with their pages, or evicted) are garbage too: their
    // machine code and metadata go only when this thread's heap is collected.
    const st = this.code.compiling ? this.code.jit!.stats : null, deadModules = st === null ? 0 : st.modules - st.liveModules;
    if ((this.droppedSinceGc >= GC_PAGES || deadModules - this.deadModulesAtGc >= GC_MODULES) && now - this.lastGcMs >= GC_MS &&
      this.vcpus.every((v) => !v.online || v.waiting !== 0)) {
      this.droppedSinceGc = 0;
      this.deadModulesAtGc = deadModules;
      this.lastGcMs = now;
      collectGarbage();
    }
  }

  /** The platform's stage-2 map (setStage2), for vCPU threads. */
  get stage2Map(): Stage2Map | null { return this.stage2; }

  /** Decode-cache pages held (diagnostics, bench/density). */
  get codePages(): number { return this.code.size; }

  /** Drives the timer PPIs from the generic timer registers (level-sensitive outputs, Arm ARM D11.2.4). */
  private updateTimers(v: Vcpu): void {
    driveTimerPpis(this.gic, v.index, v.cpu);
  }

  /** Stops every vCPU; the first call decides the state and reason. */
  stop(state: MachineState, why: string): void {
    if (this.state === "running") {
      this.state = state; this.reason = why;
      this.platform?.stopped?.(state, why);
    }
    for (const v of this.vcpus) v.cpu.stop = STOP_HALT;
    for (const v of this.vcpus) if (v.remote) { Atomics.store(this.link, vw(v.index, V_CMD), CMD_PARK); ringVcpu(this.link, v.index); }
  }

  // ---------------------------------------------------------------------------------------------------------
  // vCPUs on threads of their own (remote-vcpu.ts runs them; the protocol is in vcpu-link.ts)

  /**
   * Hands vCPUs `indices` (1..vcpus-1; vCPU 0 stays home) to threads of their own, which the caller starts
   * next over this board's memory (src/hv/vcpu-thread.ts). From now on the board does not run them: it serves
   * their requests and broadcasts between its own slices, and keeps its copy of each (same state block) for
   * PSCI, hypercalls and saving. Call between slices.
   */
  detachVcpus(indices: readonly number[]): void {
    const w = this.link;
    for (const k of indices) {
      if (!Number.isInteger(k) || k < 1 || k >= this.vcpus.length) throw new RangeError(`detachVcpus: no vCPU ${k} to hand over (1..${this.vcpus.length - 1})`);
      const v = this.vcpus[k]!;
      if (v.remote) continue;
      v.remote = true;
      this.remotes++;
      Atomics.store(w, vw(k, V_STATUS), ST_STARTING);
      Atomics.store(w, L_ACK + k, Atomics.load(w, L_BC_SEQ));
      this.handOver(v);
    }
    Atomics.store(w, L_EOI_WATCH, this.platform?.eoiWatch ?? 0);
    if (this.remotes > 0 && this.sharedDirty === null) {
      // A live migration may start later: its log must be one the vCPU threads can mark (setDirtyLog).
      if (this.dirtyLog !== null) throw new MachineError("MACHINE_STATE", "vCPUs cannot be handed to threads while a dirty log runs");
      this.sharedDirty = new Uint8Array(new SharedArrayBuffer(this.ramBytes >>> 12));
      Atomics.store(w, L_DIRTY, 0);
    }
    if (this.remotes > 0) {
      this.slice = SHARED_SLICE;
      // Other threads write code this thread runs (CodeCache.words), and full barriers in compiled code must
      // order this thread's accesses against theirs (JitEngine.fences); the blocks compiled so far go.
      if (this.code.jit !== null) this.code.jit.fences = true;
      this.code.snapshotWords();
      // Doublewords are single-copy atomic between threads from now on (src/mmu/atomic64.ts).
      for (const v of this.vcpus) this.shareMmu(v.mmu, v.index);
      // Nobody sleeps in WFE yet; this thread's vCPUs' releases wake the sleepers of the others (wfe.ts).
      Atomics.store(w, L_WFE_SLEEPERS, 0);
      for (const v of this.vcpus) { Atomics.store(w, L_WFE_AT + v.index, -1); v.wfeAt = -1; if (!v.remote) this.wakeOnRelease(v.cpu); }
      this.publishUartFlags();
    }
  }

  /** Stores that release a lock by this home vCPU ring WFE sleepers on other threads (vcpu-link.ts). */
  private wakeOnRelease(c: Cpu): void {
    const w = this.link, n = this.vcpus.length, self = c.vcpuIndex;
    c.storeWake = (off) => wakeWfeSleepers(w, off, self, n, (j) => { if (j !== self) ringVcpu(w, j); });
  }

  /** An MMU of a board whose RAM other threads use: atomic doublewords, the domain's 128-bit exclusive lock. */
  private shareMmu(mmu: Mmu, k: number): void {
    mmu.useAtomic64(this.memory, this.ramBytes + k * VCPU_STATE_BYTES + ST_SCRATCH);
    mmu.setPairLock(this.link, L_PAIR_LOCK);
  }

  /** The compiling engine's counters (null: interpreted only). */
  jitStats(): JitStats | null { return this.code.compiling ? { ...this.code.jit!.stats } : null; }
  /** The decode cache's counters (bench/jit/profile): pages created, invalidations, those with nothing to reset. */
  codeStats(): { created: number; invalidations: number; cleanInvalidations: number } {
    return { created: this.code.created, invalidations: this.code.invalidations, cleanInvalidations: this.code.cleanInvalidations };
  }

  /** Drops this thread's compiled code (CodeCache.dropCompiled) and collects the garbage. Between slices. */
  dropCompiled(): void {
    this.code.dropCompiled();
    collectGarbage();
  }

  /** vCPU indices running on threads of their own. */
  get remoteVcpus(): number[] { return this.vcpus.filter((v) => v.remote).map((v) => v.index); }

  /** Has the remote thread take v's state block as it is now (after a reset, CPU_ON or restore) and run it if online. */
  private handOver(v: Vcpu): void {
    const w = this.link, k = v.index;
    v.cpu.storePstate();
    Atomics.store(w, vw(k, V_WAITING), v.waiting);
    Atomics.add(w, vw(k, V_GEN), 1);
    Atomics.store(w, vw(k, V_CMD), v.online && this.state === "running" ? CMD_RUN : CMD_PARK);
    ringVcpu(w, k);
  }

  /**
   * Hand-off counters (XENO_HANDOFF_STATS): the home thread goes to sleep on its doorbell (`asleep`), or woke
   * (the time from a vCPU thread's ring to now is its wake-up latency). No-op when off.
   */
  homeSleep(asleep: boolean): void {
    if (this.hs === null || this.remotes === 0) return;
    const f = this.linkF64, t = f[LINK_T_HOME]!;
    f[LINK_T_HOME] = 0;
    if (!asleep && t !== 0) this.hs.add(E_HOME_WAKE, hostNowMs() - t);
  }

  /**
   * Whether a vCPU of this thread has something to do now although the sleep runSlice reported has not run out:
   * an interrupt line that another thread raised for it (serviceRemotes took it from the shared GIC), a wake-up
   * event for it in WFE (SEV, its monitor cleared by another thread's store), or it was brought online. The
   * worker loop then runs runSlice at once. (Until 2026-12-07 the loop asked instead whether a vCPU thread had
   * rung since the last service — always false just after serviceRemotes — so an IPI from vCPU 1 to an idle
   * vCPU 0 waited for vCPU 0's next timer: docs/cpu-internals.md, "vCPUs on threads".)
   */
  homeWoken(): boolean {
    if (this.remotes === 0) return false;
    for (const v of this.vcpus) {
      if (v.remote || !v.online) continue;
      const c = v.cpu;
      if (v.waiting === 0 || (c.irqLine | c.fiqLine) !== 0) return true;
      if (v.waiting === STOP_WFE && (c.event !== 0 || monitorCleared(c))) return true;
    }
    return false;
  }

  /** Some vCPU on another thread is running (not waiting for an interrupt, not parked): the domain wants a pCPU. */
  remoteBusy(): boolean {
    if (this.remotes === 0) return false;
    const w = this.link;
    for (const v of this.vcpus) {
      if (v.remote && v.online && Atomics.load(w, vw(v.index, V_STATUS)) === ST_RUNNING && Atomics.load(w, vw(v.index, V_WAITING)) === 0) return true;
    }
    return false;
  }

  /** Permit requests of the vCPU threads so far (vcpu-link.ts L_SCHED_ASK): a change means one waits for a pCPU. */
  schedAsks(): number { return this.remotes > 0 ? Atomics.load(this.link, L_SCHED_ASK) : 0; }

  /** Blocks the vCPU threads have compiled (each thread's own engine), summed. */
  remoteJitBlocks(): number {
    let n = 0;
    for (const v of this.vcpus) if (v.remote) n += Atomics.load(this.link, vw(v.index, V_JIT_BLOCKS));
    return n;
  }

  /** Seconds vCPU k has run on a thread of its own (that thread adds its slices' wall time); 0 if it never had one. */
  threadSeconds(k: number): number { return this.linkF64[LINK_F64 + k]!; }

  /** Seconds the vCPUs on other threads have run (each thread adds its slices' wall time). */
  remoteCpuSeconds(): number {
    let t = 0;
    for (const v of this.vcpus) if (v.remote) t += this.linkF64[LINK_F64 + v.index]!;
    return t;
  }

  /**
   * Serves the vCPUs on other threads: applies a pending broadcast here, answers their requests, notices a
   * crashed thread, and takes the interrupt lines of this thread's vCPUs from the shared GIC (another thread's
   * GIC access may have changed them). Cheap when nothing is pending; a no-op without remote vCPUs.
   */
  serviceRemotes(): void {
    if (this.remotes === 0) return;
    const w = this.link;
    this.ackBroadcast();
    for (const v of this.vcpus) {
      const k = v.index;
      if (!v.remote) {
        const o = this.gic.outputs(k);
        v.cpu.irqLine = o & 1;
        v.cpu.fiqLine = o >>> 1;
        if (o === 0 && this.hs !== null) this.linkF64[LINK_T_IRQ + k] = 0;
        continue;
      }
      if (Atomics.load(w, vw(k, V_STATUS)) === ST_CRASHED && this.state === "running") {
        this.stop("crashed", `emulator fault on vCPU ${k}'s thread: ${this.crashMessage()}`);
      }
      this.drainUartQueue(k);
      const seq = Atomics.load(w, vw(k, V_REQ_SEQ));
      if (seq !== Atomics.load(w, vw(k, V_DONE_SEQ)) && !this.serving) this.serve(v, seq);
    }
  }

  /** The message a crashed vCPU thread left in the link. */
  private crashMessage(): string {
    const bytes = new Uint8Array(this.ram, this.ramBytes + LINK_AREA + LINK_MSG, LINK_MSG_BYTES).slice();
    const end = bytes.indexOf(0);
    return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end)) || "(no message)";
  }

  /**
   * Answers request `seq` of remote vCPU v on the home's copy of it: the state block is the same, so the copy
   * takes PSTATE and the translation registers from it first (hypercall arguments are guest virtual addresses)
   * and writes PSTATE back after (an injected exception changes it). The reply: the stop code the handler left
   * (STOP_WFI: block, STOP_HALT: off or stopped) and whether the vCPU is still online.
   */
  private serve(v: Vcpu, seq: number): void {
    const w = this.link, k = v.index, c = v.cpu;
    const kind = Atomics.load(w, vw(k, V_REQ_KIND));
    const a0 = Atomics.load(w, vw(k, V_A0)), a1 = Atomics.load(w, vw(k, V_A0 + 1)), a2 = Atomics.load(w, vw(k, V_A0 + 2));
    const a3 = Atomics.load(w, vw(k, V_A0 + 3)), a4 = Atomics.load(w, vw(k, V_A0 + 4));
    let r0 = 0, r1 = 0;
    const s0 = this.hs !== null ? hostNowMs() : 0;
    if (this.hs !== null) this.hs.add(E_SERVE_WAIT, s0 - this.linkF64[LINK_T_REQ + k]!);
    this.serving = true;
    try {
      if (kind === RQ_MMIO_READ) {
        r0 = v.router.read((a0 >>> 0) + a1 * 2 ** 32, a2);
        r1 = a2 === 8 ? R[0]! : 0;
      } else if (kind === RQ_MMIO_WRITE) {
        v.router.write((a0 >>> 0) + a1 * 2 ** 32, a2, a3, a4);
      } else if (kind === RQ_HVC || kind === RQ_STAGE2) {
        reloadFromBlock(c);
        c.stop = STOP_BUDGET;
        if (kind === RQ_HVC) this.el2(v, c, a0, a1);
        else {
          const m = c.mmu;
          m.faultVaLo = a0; m.faultVaHi = a1; m.faultStatus = FSC_STAGE2; m.faultStage2 = 1;
          m.faultWrite = a2 & 1; m.faultFetch = (a2 >>> 1) & 1; m.faultS1ptw = (a2 >>> 2) & 1;
          m.faultIpa = (a3 >>> 0) + a4 * 2 ** 32;
          if (this.platform?.stage2Abort === undefined) throw new Error("stage-2 fault without a platform to handle it");
          this.platform.stage2Abort(k, c);
        }
        c.storePstate();
        r0 = c.stop;
        r1 = v.online ? 1 : 0;
      } else {
        throw new Error(`vCPU ${k}'s thread sent request kind ${kind}, which the board does not know`);
      }
    } finally {
      this.serving = false;
    }
    Atomics.store(w, vw(k, V_R0), r0);
    Atomics.store(w, vw(k, V_R1), r1);
    Atomics.store(w, vw(k, V_DONE_SEQ), seq);
    ringVcpu(w, k);
    if (this.hs !== null) this.hs.add(E_SERVE, hostNowMs() - s0);
  }

  /** How the home applies broadcasts (takeBroadcasts): to the vCPUs it runs itself. Made once. */
  private readonly bcSink: BroadcastSink = {
    apply: (kind, insn, xlo, xhi) => {
      for (const v of this.vcpus) {
        if (v.remote) continue;
        if (kind === BC_STAGE2) { if (this.stage2 !== null) v.mmu.dropUnmapped(this.stage2); }
        else if (kind === BC_DIRTY) { /* the home's MMUs took it from setDirtyLog/dirtyRound */ }
        else if (kind === BC_CODE_PAGE) v.cpu.invalidateCodePage(xlo);
        else applyBroadcast(v.cpu, insn, xlo, xhi);
      }
    },
    applyAll: () => {
      for (const v of this.vcpus) if (!v.remote) applyAllBroadcasts(v.cpu);
      if (this.hs !== null) this.hs.addN(E_BC_ALL, 1);
    },
  };

  /** Applies the broadcasts this thread's vCPUs have not applied yet (if any) and says so. */
  private ackBroadcast(): void {
    const w = this.link;
    if (Atomics.load(w, L_BC_SEQ) === this.bcSeen) return;
    const was = this.bcSeen;
    const seq = this.bcSeen = takeBroadcasts(w, this.bcSeen, this.bcSink);
    if (this.hs !== null) this.hs.addN(E_BC_APPLIED, (seq - was) | 0);
    Atomics.store(w, L_ACK, seq);
    const from = Atomics.load(w, L_BC_FROM);
    if (from >= 1 && bcIssuerWaits(w, seq)) ringVcpu(w, from);
  }

  /**
   * Publishes a broadcast to the vCPUs on other threads and returns once each live one applied it, so a TLBI
   * ...IS is complete everywhere before the issuer's next instruction (this thread's vCPUs had it already).
   */
  private broadcast(kind: number, insn: number, xlo: number, xhi: number): void {
    if (this.hs === null) { this.broadcastNow(kind, insn, xlo, xhi); return; }
    const t0 = hostNowMs();
    this.broadcastNow(kind, insn, xlo, xhi);
    this.hs.add(bcEvent(kind, insn), hostNowMs() - t0);
  }

  private broadcastNow(kind: number, insn: number, xlo: number, xhi: number): void {
    const w = this.link;
    const seq = publishBroadcast(w, 0, kind, insn, xlo, xhi, () => this.ackBroadcast());
    try {
      this.bcSeen = seq;
      for (const v of this.vcpus) if (v.remote && bcRings(w, v.index, seq, kind, insn)) ringVcpu(w, v.index);
      for (;;) {
        const bell = Atomics.load(w, L_HOME_BELL);
        let pending = false;
        for (const v of this.vcpus) {
          if (!v.remote) continue;
          const st = Atomics.load(w, vw(v.index, V_STATUS));
          if (st === ST_RUNNING && Atomics.load(w, L_EXEC + v.index) === 1 && Atomics.load(w, L_ACK + v.index) !== seq) { pending = true; break; }
        }
        if (!pending) break;
        Atomics.wait(w, L_HOME_BELL, bell, 1);
      }
    } finally {
      Atomics.store(w, L_BC_LOCK, 0);
    }
  }

  /** The platform removed frames from the stage-2 map: vCPUs on other threads drop them from their TLBs now. */
  stage2Changed(): void {
    if (this.remotes > 0) this.broadcast(BC_STAGE2, 0, 0, 0);
  }

  /**
   * Stops the vCPUs on other threads at an instruction boundary (before a save, while paused). With `wait`,
   * serves them until every one is parked and takes their state back into the home's copies (PSTATE, WFI).
   */
  parkRemotes(wait = true): void {
    if (this.remotes === 0) return;
    const w = this.link;
    if (!this.commandRemotes(CMD_PARK, wait, (st) => st !== ST_RUNNING && st !== ST_STARTING, "stop")) return;
    this.drainUartQueues(); // what they wrote before they stopped
    for (const v of this.vcpus) {
      if (!v.remote || Atomics.load(w, vw(v.index, V_STATUS)) !== ST_PARKED) continue;
      reloadFromBlock(v.cpu);
      v.waiting = Atomics.load(w, vw(v.index, V_WAITING));
    }
  }

  /** Lets parked vCPU threads run again (the online ones, while the board runs). */
  unparkRemotes(): void {
    const w = this.link;
    for (const v of this.vcpus) {
      if (!v.remote) continue;
      Atomics.store(w, vw(v.index, V_CMD), v.online && this.state === "running" ? CMD_RUN : CMD_PARK);
      ringVcpu(w, v.index);
    }
  }

  /**
   * Ends the vCPU threads (the domain is finished here, or moves: the next home starts its own). With `wait`,
   * returns once every one has left (the memory goes to another home: an old thread still around would run the
   * vCPU beside the new one), serving them meanwhile; throws if one does not within PARK_TIMEOUT_MS.
   */
  quitRemotes(wait = false): void {
    this.commandRemotes(CMD_QUIT, wait, (st) => st === ST_GONE || st === ST_CRASHED, "end");
  }

  /**
   * Gives every vCPU thread command `cmd`; with `wait`, serves them until each one's status satisfies `done`
   * (throws naming the first that does not within PARK_TIMEOUT_MS: it did not `what`). Returns `wait`.
   */
  private commandRemotes(cmd: number, wait: boolean, done: (status: number) => boolean, what: string): boolean {
    const w = this.link;
    for (const v of this.vcpus) if (v.remote) { Atomics.store(w, vw(v.index, V_CMD), cmd); ringVcpu(w, v.index); }
    if (!wait) return false;
    const deadline = performance.now() + PARK_TIMEOUT_MS;
    for (;;) {
      const bell = Atomics.load(w, L_HOME_BELL);
      this.serviceRemotes();
      const late = this.vcpus.find((v) => v.remote && !done(Atomics.load(w, vw(v.index, V_STATUS))));
      if (late === undefined) return true;
      if (performance.now() > deadline) throw new Error(`vCPU ${late.index}'s thread did not ${what} within ${PARK_TIMEOUT_MS / 1000} s`);
      Atomics.wait(w, L_HOME_BELL, bell, 1);
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Console

  /** Queues console input for the PL011 (fed as its receive FIFO drains). */
  input(bytes: Uint8Array): void {
    this.rx.push(bytes.slice());
    this.feedRx();
  }

  private feedRx(): void {
    while (this.rx.length > 0) {
      const b = this.rx[0];
      const n = this.uart.input(b);
      if (n >= b.length) { this.rx.shift(); continue; }
      this.rx[0] = b.subarray(n);
      break;
    }
    this.publishUartFlags();
  }

  /** For the vCPU threads: the UART's flag register as it is now (vcpu-link.ts L_UART_FR). */
  private publishUartFlags(): void {
    if (this.remotes > 0) Atomics.store(this.link, L_UART_FR, this.uart.read(UARTFR, 4));
  }

  /** Sends on the UART bytes the vCPU threads posted (vcpu-link.ts UART_Q_AREA), each queue in its order. */
  private drainUartQueues(): void {
    for (const v of this.vcpus) if (v.remote) this.drainUartQueue(v.index);
  }

  private drainUartQueue(k: number): void { drainUartQueue(this.uartQ, k, this.uartPut); }
  private readonly uartPut = (x: number): void => this.uart.write(UARTDR, 1, x);

  /** Guest console output (the PL011's, and a platform's console) to consoleOut, watched for a kernel panic. */
  console(b: Uint8Array): void {
    this.panicWatch.feed(b);
    if (this.outLen + b.length > this.out.length) this.flushOut();
    this.out.set(b, this.outLen);
    this.outLen += b.length;
  }

  flushOut(): void {
    if (this.outLen === 0) return;
    this.consoleOut(this.out.subarray(0, this.outLen));
    this.outLen = 0;
  }

  // ---------------------------------------------------------------------------------------------------------
  // EL2: PSCI, and the platform's hypercalls

  private el2(v: Vcpu, c: Cpu, ec: number, iss: number): void {
    const r = c.r;
    const ret = (x: number): void => { r[0] = x | 0; r[1] = x < 0 ? -1 : 0; };
    if (this.platform !== null && ec === EC_HVC && iss !== 0) {
      if (this.platform.hvc(v.index, c, iss)) return;
      // An immediate the platform does not know is UNDEFINED: back to the hvc itself, then the exception.
      const lo = (r[PC2] - 4) | 0;
      if ((lo >>> 0) > (r[PC2] >>> 0)) r[PC2 + 1] = (r[PC2 + 1] - 1) | 0;
      r[PC2] = lo;
      c.syncException(EC_UNKNOWN, 0, 0);
      return;
    }
    if (ec !== EC_HVC || iss !== 0) { ret(psci.PSCI_NOT_SUPPORTED); return; }
    const fn = r[0] >>> 0;
    const x1 = r[2] >>> 0;
    switch (fn) {
      case psci.PSCI_VERSION: ret(psci.PSCI_VERSION_1_0); return;
      case psci.PSCI_MIGRATE_INFO_TYPE: ret(psci.MIGRATE_NOT_REQUIRED); return;
      case psci.PSCI_FEATURES: ret(psci.IMPLEMENTED.has(x1) ? 0 : psci.PSCI_NOT_SUPPORTED); return;
      case psci.PSCI_CPU_SUSPEND: case psci.PSCI_CPU_SUSPEND_32:
        // Standby: behaves like WFI (returns on an interrupt).
        ret(psci.PSCI_SUCCESS);
        c.stop = STOP_WFI;
        return;
      case psci.PSCI_CPU_OFF:
        v.online = false;
        c.stop = STOP_HALT;
        if (v.remote) Atomics.store(this.link, vw(v.index, V_CMD), CMD_PARK);
        ret(psci.PSCI_DENIED); // not reached by the guest: the vCPU is off
        return;
      case psci.PSCI_CPU_ON: case psci.PSCI_CPU_ON_32: {
        const t = this.vcpus.find((x) => x.mpidr === (x1 & 0xffffff));
        if (t === undefined) { ret(psci.PSCI_INVALID_PARAMS); return; }
        if (t.online) { ret(psci.PSCI_ALREADY_ON); return; }
        const entryLo = r[4], entryHi = fn === psci.PSCI_CPU_ON_32 ? 0 : r[5];
        const ctxLo = r[6], ctxHi = fn === psci.PSCI_CPU_ON_32 ? 0 : r[7];
        this.resetVcpu(t);
        const tr = t.cpu.r;
        tr[PC2] = entryLo; tr[PC2 + 1] = entryHi;
        tr[0] = ctxLo; tr[1] = ctxHi;
        t.online = true;
        if (t.remote) this.handOver(t);
        ret(psci.PSCI_SUCCESS);
        return;
      }
      case psci.PSCI_AFFINITY_INFO: case psci.PSCI_AFFINITY_INFO_32: {
        const t = this.vcpus.find((x) => x.mpidr === (x1 & 0xffffff));
        ret(t === undefined ? psci.PSCI_INVALID_PARAMS : t.online ? 0 : 1);
        return;
      }
      case psci.PSCI_SYSTEM_OFF: this.stop("poweroff", "PSCI SYSTEM_OFF"); return;
      case psci.PSCI_SYSTEM_RESET: this.stop("reboot", "PSCI SYSTEM_RESET"); return;
      default: ret(psci.PSCI_NOT_SUPPORTED);
    }
  }
}

