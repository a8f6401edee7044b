/**
 * ARM Generic Interrupt Controller v2 (ARM IHI 0048B), modelled on the GIC-400 without the Security
 * Extensions (what a non-secure-only "arm,cortex-a15-gic" looks like, as on QEMU's virt with secure=off):
 * one Distributor shared by up to 8 CPU interfaces, SGIs 0-15 and PPIs 16-31 banked per CPU, SPIs 32+
 * routed by GICD_ITARGETSR.
 *
 * Interrupt state machine (IHI 0048B 3.2.4): inactive → pending → active (IAR) → inactive (EOIR, or DIR when
 * GICC_CTLR.EOImode splits priority drop and deactivation), with active-and-pending for level interrupts whose
 * line is still high and SGIs pending from another source. Preemption (3.3): a pending interrupt is signalled
 * only when its priority is below GICC_PMR and its group priority (per GICC_BPR/ABPR) is below the running
 * priority, the highest group priority among this CPU interface's active interrupts (tracked as an active
 * priorities bitmap, dropped highest-first by EOIR as 3.3.2 requires).
 *
 * What Linux's drivers/irqchip/irq-gic.c relies on, and where it is handled:
 *  - probe: GICD_TYPER.ITLinesNumber/CPUNumber; gic_get_cpumask reads ITARGETSR0..7 expecting this CPU's bit
 *    (banked INTIDs read as the accessing CPU's own bit, even on a uniprocessor); gic_check_gic400 reads
 *    GICC_IIDR; the GICC window is 8 KiB so the split EOI mode (GICC_DIR at 0x1000) is usable.
 *  - gic_handle_irq: reads GICC_IAR (INTID in [9:0], SGI source CPU in [12:10]), stops at 1020..1023, writes
 *    the whole IAR value back to GICC_EOIR (and GICC_DIR in EOImode).
 *  - IPIs: GICD_SGIR with the CPU-interface target list (filter 0) built from gic_cpu_map.
 *  - gic_configure_irq read-modify-writes GICD_ICFGR and checks the value sticks (PPIs are configurable here).
 *
 * Not modelled: the Security Extensions (GICD_NSACR, secure/non-secure banking), the virtualization extensions
 * (GICH/GICV), interrupt bypass, GICv2m MSI frames.
 *
 * Hot path: MMIO accesses and line changes allocate nothing. All state is in one buffer (layout in
 * gicv2-regs.ts). A board whose vCPUs run on several threads places it in the domain's shared memory and gives
 * every thread its own Gicv2 over it with one lock word (Gicv2Options.lock): each public entry point — the MMIO
 * views, setIrq/setPpi and the IrqLines — holds the lock for its whole read-modify-write. The output callbacks
 * run in the thread that made the change, under the lock: they may only record the new level and wake the vCPU
 * it belongs to (src/machine/remote-vcpu.ts). Without a lock (one thread) nothing is locked.
 */
import type { MmioDevice, IrqLine } from "../mmio.js";
import { subWord } from "../mmio.js";
import { type DtNode, reg64 } from "../dt.js";
import {
  ABPR_MIN, BM_ACTIVE, BM_EDGE, BM_ENABLE, BM_GROUP, BM_LATCH, BM_LEVEL, BPR_MIN, CPU_ABPR, CPU_APR, CPU_BPR,
  CPU_CTLR, CPU_FIQ, CPU_IRQ, CPU_PMR, CPU_STRIDE, GIC_CIDR, GIC_MAX_CPUS, GIC_MAX_IRQS, GIC_NR_PRIVATE,
  GIC_NR_SGIS, GIC_PIDR, GIC_PIDR4, GICC_ABPR, GICC_AEOIR, GICC_AHPPIR, GICC_AIAR, GICC_APR0, GICC_BPR,
  GICC_CTLR, GICC_CTLR_ACKCTL, GICC_CTLR_CBPR, GICC_CTLR_EOIMODE, GICC_CTLR_FIQEN, GICC_CTLR_GRP0,
  GICC_CTLR_GRP1, GICC_CTLR_MASK, GICC_DIR, GICC_EOIR, GICC_HPPIR, GICC_IAR, GICC_IIDR, GICC_IIDR_VALUE,
  GICC_PMR, GICC_RPR, GICC_SIZE, GICD_CIDR0, GICD_CPENDSGIR, GICD_CTLR, GICD_CTLR_GRP0, GICD_CTLR_GRP1,
  GICD_ICENABLER, GICD_ICFGR, GICD_ICPENDR, GICD_IGROUPR, GICD_IIDR, GICD_IIDR_VALUE,
  GICD_IPRIORITYR, GICD_ISACTIVER, GICD_ISENABLER, GICD_ISPENDR, GICD_ITARGETSR, GICD_PIDR0, GICD_PIDR4,
  GICD_SGIR, GICD_SIZE, GICD_SPENDSGIR, GICD_TYPER, INTID_SPURIOUS, INTID_SPURIOUS_GRP1, PRIO_IDLE, PRIO_MASK,
  PRIO_SHIFT, SGIR_FILTER_LIST, SGIR_FILTER_OTHERS, SGIR_FILTER_SELF, gicLayout, type GicLayout,
} from "./gicv2-regs.js";
import { restoreGicv2, saveGicv2, type Gicv2State } from "./gicv2-state.js";

export interface Gicv2Options {
  /** CPU interfaces, 1..8. */
  cpus: number;
  /** Interrupt lines including the 32 private ones: a multiple of 32 from 64 to 1024 (IDs >= 1020 unusable). */
  irqs: number;
  /** State buffer (e.g. a SharedArrayBuffer) of at least gicv2StateBytes(cpus, irqs); zeroed = reset state
   * is applied when `reset` is not false. */
  buffer?: ArrayBufferLike;
  /** Byte offset of the state inside `buffer` (default 0; a multiple of 8). */
  byteOffset?: number;
  /** Apply the reset values (default true; false when attaching to a live shared buffer). */
  reset?: boolean;
  /**
   * With a shared buffer used by several threads: the lock word (index `lockIndex` of this Int32Array over a
   * SharedArrayBuffer, 0 = free) every thread's Gicv2 over that buffer takes around each operation.
   */
  lock?: Int32Array;
  lockIndex?: number;
}

/** Bytes of state for a GIC of this shape. */
export function gicv2StateBytes(cpus: number, irqs: number): number {
  return gicLayout(cpus, irqs).byteLength;
}

/** Output callback: the CPU interface's IRQ (or FIQ) signal changed. */
export type GicOutput = (cpu: number, asserted: boolean) => void;

/** Thrown for a bad configuration (a board bug). */
export class GicConfigError extends Error {
  readonly code = "GIC_CONFIG";
}

/** Spins on a held GIC lock before sleeping on it, and the longest sleep before looking again (a lost wake). */
const LOCK_SPINS = 200, LOCK_WAIT_MS = 1;

export class Gicv2 {
  readonly cpus: number;
  readonly irqs: number;
  readonly layout: GicLayout;
  /** The state buffer (see gicv2-regs.ts for the layout) and the state's offset in it. */
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  private readonly lockWords: Int32Array | null;
  private readonly lockAt: number;
  private readonly w: Int32Array;
  private readonly b: Uint8Array;
  // Int32 indexes of the bitmaps and CPU blocks; byte offsets of the byte arrays.
  private readonly en: number; private readonly latch: number; private readonly level: number;
  private readonly active: number; private readonly group: number; private readonly edge: number;
  private readonly cpuBase: number;
  private readonly prio: number; private readonly target: number; private readonly sgiSrc: number;
  private readonly cpuMask: number;
  private readonly banks: number;

  /** Per-CPU IRQ output (drive Cpu.irqLine). Called only on changes. */
  onIrqChange: GicOutput = () => {};
  /** Per-CPU FIQ output (group 0 interrupts when GICC_CTLR.FIQEn is set). */
  onFiqChange: GicOutput = () => {};

  /** Guest accesses the model ignores (wrong size, reserved offsets): counted, never thrown. */
  badAccesses = 0;

  // Scratch results of hppi(): priority and group of the interrupt found (no allocation).
  private hpPrio = PRIO_IDLE;
  private hpGroup = 0;

  /** Per-CPU MMIO views (map distributor(cpu) and cpuInterface(cpu) into that CPU's MmioRouter). */
  private readonly distViews: MmioDevice[] = [];
  private readonly cpuViews: MmioDevice[] = [];

  constructor(opts: Gicv2Options) {
    const { cpus, irqs } = opts;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > GIC_MAX_CPUS) throw new GicConfigError(`bad CPU count ${cpus}`);
    if (!Number.isInteger(irqs) || irqs % 32 !== 0 || irqs < 64 || irqs > 1024) {
      throw new GicConfigError(`bad interrupt count ${irqs} (multiple of 32, 64..1024)`);
    }
    this.cpus = cpus;
    this.irqs = Math.min(irqs, GIC_MAX_IRQS);
    const L = gicLayout(cpus, irqs);
    this.layout = L;
    const buf = opts.buffer ?? new ArrayBuffer(L.byteLength);
    const at = opts.byteOffset ?? 0;
    if (at < 0 || at % 8 !== 0 || buf.byteLength < at + L.byteLength) {
      throw new GicConfigError(`state buffer too small or offset ${at} bad: ${buf.byteLength} < ${at} + ${L.byteLength}`);
    }
    this.buffer = buf;
    this.byteOffset = at;
    this.lockWords = opts.lock ?? null;
    this.lockAt = opts.lockIndex ?? 0;
    this.w = new Int32Array(buf, at, L.byteLength >> 2);
    this.b = new Uint8Array(buf, at, L.byteLength);
    [this.en, this.latch, this.level, this.active, this.group, this.edge] = [
      L.bm[BM_ENABLE], L.bm[BM_LATCH], L.bm[BM_LEVEL], L.bm[BM_ACTIVE], L.bm[BM_GROUP], L.bm[BM_EDGE],
    ];
    this.cpuBase = L.cpu;
    this.prio = L.prio; this.target = L.target; this.sgiSrc = L.sgiSrc;
    this.cpuMask = (1 << cpus) - 1;
    this.banks = irqs / 32;
    for (let c = 0; c < cpus; c++) {
      this.distViews.push(this.lockWords === null ? {
        size: GICD_SIZE,
        read: (off, size) => this.distRead(c, off, size),
        write: (off, size, v) => this.distWrite(c, off, size, v),
      } : {
        size: GICD_SIZE,
        read: (off, size) => { this.lock(); try { return this.distRead(c, off, size); } finally { this.unlock(); } },
        write: (off, size, v) => { this.lock(); try { this.distWrite(c, off, size, v); } finally { this.unlock(); } },
      });
      this.cpuViews.push(this.lockWords === null ? {
        size: GICC_SIZE,
        read: (off, size) => this.cpuRead(c, off, size),
        write: (off, size, v) => this.cpuWrite(c, off, size, v),
      } : {
        size: GICC_SIZE,
        read: (off, size) => { this.lock(); try { return this.cpuRead(c, off, size); } finally { this.unlock(); } },
        write: (off, size, v) => { this.lock(); try { this.cpuWrite(c, off, size, v); } finally { this.unlock(); } },
      });
    }
    if (opts.reset !== false) this.reset();
  }

  /** Reset values (IHI 0048B 4.3, 4.4): everything disabled, inactive, priority 0, group 0, level-sensitive,
   * except SGIs: permanently enabled and edge-triggered (GIC-400 behaviour, DDI 0471B 3.2). */
  reset(): void {
    this.w.fill(0);
    this.b.fill(0);
    for (let c = 0; c < this.cpus; c++) {
      this.w[this.en + c] = 0xffff;
      this.w[this.edge + c] = 0xffff;
      const k = this.cpuBase + c * CPU_STRIDE;
      this.w[k + CPU_BPR] = BPR_MIN;
      this.w[k + CPU_ABPR] = ABPR_MIN;
    }
  }

  /** Saved state (gicv2-state.ts): plain, versioned data; the shape must match on restore. */
  save(): Gicv2State { return saveGicv2(this); }

  /**
   * Loads a saved state after checking all of it (StateError, nothing changed, on any bad field), then
   * re-evaluates every CPU interface and reports each IRQ/FIQ output through onIrqChange/onFiqChange, even
   * unchanged ones, so the vCPUs' lines follow the restored GIC.
   */
  restore(state: Gicv2State): void {
    restoreGicv2(this, state);
    this.updateAll();
  }

  distributor(cpu: number): MmioDevice { return this.distViews[cpu]; }
  cpuInterface(cpu: number): MmioDevice { return this.cpuViews[cpu]; }

  // ---------------------------------------------------------------------------------------------------------
  // Indexing

  /** Bitmap word offset (within a bitmap) holding `irq` as seen by `cpu`. */
  private word(cpu: number, irq: number): number {
    return irq < GIC_NR_PRIVATE ? cpu : this.cpus + (irq >> 5) - 1;
  }

  /** Byte offset of irq's priority as seen by cpu. */
  private prioAt(cpu: number, irq: number): number {
    return irq < GIC_NR_PRIVATE ? this.prio + cpu * 32 + irq : this.prio + this.cpus * 32 + irq - 32;
  }

  private pendingWord(x: number): number {
    const w = this.w;
    return w[this.latch + x] | (w[this.level + x] & ~w[this.edge + x]);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Input lines

  /**
   * Drives an interrupt input. SPIs (intid >= 32) ignore `cpu`; a PPI (16..31) needs `cpu`. Edge-configured
   * interrupts latch pending on a rising edge; level-configured ones are pending while the line is high.
   */
  setIrq(irq: number, level: boolean, cpu = 0): void {
    if (this.lockWords === null) { this.setIrqLocked(irq, level, cpu); return; }
    this.lock();
    try { this.setIrqLocked(irq, level, cpu); } finally { this.unlock(); }
  }

  /**
   * Takes the lock word. Only with Gicv2Options.lock. A holder runs a few hundred instructions, but the host may
   * deschedule it inside (its output callbacks wake other threads: a syscall), so a waiter spins LOCK_SPINS
   * times and then sleeps on the word instead of spinning through the holder's lost time slice (on a loaded
   * 2-core host the pure spinlock took 3 % of each vCPU thread's profile, docs/cpu-internals.md). The word is
   * 0 free, 1 held, 2 held with sleepers (a futex mutex: Drepper, "Futexes Are Tricky", mutex2).
   */
  private lock(): void {
    const l = this.lockWords!, i = this.lockAt;
    if (Atomics.compareExchange(l, i, 0, 1) === 0) return;
    for (let n = 0; n < LOCK_SPINS; n++) {
      if (Atomics.load(l, i) === 0 && Atomics.compareExchange(l, i, 0, 1) === 0) return;
    }
    // Held: mark it contended and sleep until the holder's unlock wakes one sleeper.
    while (Atomics.exchange(l, i, 2) !== 0) Atomics.wait(l, i, 2, LOCK_WAIT_MS);
  }

  private unlock(): void {
    const l = this.lockWords!, i = this.lockAt;
    if (Atomics.sub(l, i, 1) !== 1) { Atomics.store(l, i, 0); Atomics.notify(l, i, 1); }
  }

  private setIrqLocked(irq: number, level: boolean, cpu: number): void {
    if (irq < GIC_NR_SGIS || irq >= this.irqs || (irq < GIC_NR_PRIVATE && cpu >= this.cpus)) return;
    const x = this.word(cpu, irq);
    const bit = 1 << (irq & 31);
    const w = this.w;
    const was = w[this.level + x] & bit;
    if (level) {
      if (was !== 0) return;
      w[this.level + x] |= bit;
      if ((w[this.edge + x] & bit) !== 0) w[this.latch + x] |= bit;
    } else {
      if (was === 0) return;
      w[this.level + x] &= ~bit;
    }
    if (irq < GIC_NR_PRIVATE) this.update(cpu); else this.updateAll();
  }

  /** Drives a PPI of one CPU: `ppi` is the PPI number 0..15 or its INTID 16..31 (e.g. 30, the EL1 physical timer). */
  setPpi(cpu: number, ppi: number, level: boolean): void {
    this.setIrq(ppi < 16 ? ppi + 16 : ppi, level, cpu);
  }

  /** An IrqLine for a device wired to SPI `intid` (allocated once, at wiring time). */
  spiLine(intid: number): IrqLine {
    if (intid < GIC_NR_PRIVATE || intid >= this.irqs) throw new GicConfigError(`SPI ${intid} out of range`);
    return { set: (level) => this.setIrq(intid, level) };
  }

  /** An IrqLine for one CPU's PPI (e.g. its generic timer output). */
  ppiLine(cpu: number, ppi: number): IrqLine {
    return { set: (level) => this.setPpi(cpu, ppi, level) };
  }

  /** Pending state of `irq` for `cpu` (tests, debugging). */
  isPending(irq: number, cpu = 0): boolean {
    return (this.pendingWord(this.word(cpu, irq)) & (1 << (irq & 31))) !== 0;
  }

  isActive(irq: number, cpu = 0): boolean {
    return (this.w[this.active + this.word(cpu, irq)] & (1 << (irq & 31))) !== 0;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Prioritization and outputs

  /** Group priority of a priority value for this CPU interface (3.3.3): masked by BPR (group 0, or group 1
   * with CBPR) or by ABPR (group 1). */
  private groupPrio(k: number, prio: number, grp: number): number {
    const w = this.w;
    if (grp === 0 || (w[k + CPU_CTLR] & GICC_CTLR_CBPR) !== 0) return prio & (0xff << (w[k + CPU_BPR] + 1)) & 0xff;
    return prio & (0xff << w[k + CPU_ABPR]) & 0xff;
  }

  /** Running priority (4.4.6): the highest active group priority, or 0xFF when idle. */
  private running(k: number): number {
    const apr = this.w[k + CPU_APR];
    return apr === 0 ? PRIO_IDLE : (31 - Math.clz32(apr & -apr)) << PRIO_SHIFT;
  }

  /**
   * The highest-priority pending interrupt this CPU interface could be asked to take (3.2.4): pending, enabled,
   * not active, its group enabled in GICD_CTLR and GICC_CTLR, targeted at this CPU. Ties go to the lowest INTID.
   * Returns the INTID (or 1023) and leaves its priority/group in hpPrio/hpGroup.
   */
  private hppi(cpu: number): number {
    const w = this.w, b = this.b;
    const k = this.cpuBase + cpu * CPU_STRIDE;
    const dctl = w[0], cctl = w[k + CPU_CTLR];
    const g0 = (dctl & GICD_CTLR_GRP0) !== 0 && (cctl & GICC_CTLR_GRP0) !== 0;
    const g1 = (dctl & GICD_CTLR_GRP1) !== 0 && (cctl & GICC_CTLR_GRP1) !== 0;
    let best = INTID_SPURIOUS, bestPrio = 0x100;
    if (g0 || g1) {
      const last = this.cpus + this.banks - 1;
      for (let x = cpu; x < last; x = x === cpu ? this.cpus : x + 1) {
        const grp = w[this.group + x];
        let m = this.pendingWord(x) & w[this.en + x] & ~w[this.active + x] & ((g0 ? ~grp : 0) | (g1 ? grp : 0));
        const spi = x >= this.cpus;
        const base = spi ? (x - this.cpus + 1) << 5 : 0;
        while (m !== 0) {
          const i = 31 - Math.clz32(m & -m);
          m &= m - 1;
          const irq = base + i;
          if (spi && this.cpus > 1 && (b[this.target + irq] & (1 << cpu)) === 0) continue;
          const p = b[spi ? this.prio + this.cpus * 32 + irq - 32 : this.prio + cpu * 32 + irq];
          if (p < bestPrio) { bestPrio = p; best = irq; }
        }
      }
    }
    if (best !== INTID_SPURIOUS) {
      this.hpPrio = bestPrio;
      this.hpGroup = (w[this.group + this.word(cpu, best)] >>> (best & 31)) & 1;
    }
    return best;
  }

  /** True when the HPPI found by hppi() has sufficient priority to be signalled (PMR and preemption). */
  private signalled(k: number): boolean {
    return this.hpPrio < this.w[k + CPU_PMR] && this.groupPrio(k, this.hpPrio, this.hpGroup) < this.running(k);
  }

  /** Recomputes one CPU interface's IRQ/FIQ outputs and reports changes. */
  update(cpu: number): void {
    const w = this.w;
    const k = this.cpuBase + cpu * CPU_STRIDE;
    let irq = 0, fiq = 0;
    if (this.hppi(cpu) !== INTID_SPURIOUS && this.signalled(k)) {
      if (this.hpGroup === 0 && (w[k + CPU_CTLR] & GICC_CTLR_FIQEN) !== 0) fiq = 1; else irq = 1;
    }
    if (w[k + CPU_IRQ] !== irq) { w[k + CPU_IRQ] = irq; this.onIrqChange(cpu, irq === 1); }
    if (w[k + CPU_FIQ] !== fiq) { w[k + CPU_FIQ] = fiq; this.onFiqChange(cpu, fiq === 1); }
  }

  updateAll(): void {
    for (let c = 0; c < this.cpus; c++) this.update(c);
  }

  /** Current IRQ output of a CPU interface. */
  irqAsserted(cpu: number): boolean {
    return this.w[this.cpuBase + cpu * CPU_STRIDE + CPU_IRQ] !== 0;
  }

  /**
   * The IRQ and FIQ outputs of a CPU interface as a thread sharing the buffer sees them now (an atomic read,
   * no lock): bit 0 IRQ, bit 1 FIQ. A vCPU on another thread than the change takes its lines from here.
   */
  outputs(cpu: number): number {
    const k = this.cpuBase + cpu * CPU_STRIDE;
    return Atomics.load(this.w, k + CPU_IRQ) | (Atomics.load(this.w, k + CPU_FIQ) << 1);
  }

  // ---------------------------------------------------------------------------------------------------------
  // CPU interface operations

  /** GICC_IAR / GICC_AIAR read (4.4.4, 4.4.9): acknowledge the HPPI, or return a spurious ID. */
  acknowledge(cpu: number, alias: boolean): number {
    const w = this.w;
    const k = this.cpuBase + cpu * CPU_STRIDE;
    const irq = this.hppi(cpu);
    if (irq === INTID_SPURIOUS || !this.signalled(k)) return INTID_SPURIOUS;
    if (alias ? this.hpGroup === 0 : this.hpGroup === 1 && (w[k + CPU_CTLR] & GICC_CTLR_ACKCTL) === 0) {
      return alias ? INTID_SPURIOUS : INTID_SPURIOUS_GRP1;
    }
    const x = this.word(cpu, irq);
    const bit = 1 << (irq & 31);
    let result = irq;
    if (irq < GIC_NR_SGIS) {
      // One source at a time, lowest CPU first; the SGI stays pending while other sources remain (3.2.4).
      const s = this.sgiSrc + cpu * 16 + irq;
      const src = this.b[s];
      const n = 31 - Math.clz32(src & -src);
      this.b[s] = src & (src - 1);
      if (this.b[s] === 0) w[this.latch + x] &= ~bit;
      result = irq | (n << 10);
    } else {
      w[this.latch + x] &= ~bit;
    }
    w[this.active + x] |= bit;
    w[k + CPU_APR] |= 1 << (this.groupPrio(k, this.hpPrio, this.hpGroup) >> PRIO_SHIFT);
    if (irq < GIC_NR_PRIVATE) this.update(cpu); else this.updateAll();
    return result;
  }

  /** GICC_EOIR / GICC_AEOIR write (4.4.5): priority drop, plus deactivation unless EOImode is set. */
  endOfInterrupt(cpu: number, value: number): void {
    const irq = value & 0x3ff;
    if (irq >= this.irqs) return; // spurious IDs and unimplemented lines are ignored
    const k = this.cpuBase + cpu * CPU_STRIDE;
    const w = this.w;
    const apr = w[k + CPU_APR];
    w[k + CPU_APR] = apr & (apr - 1); // drop the highest active priority
    if ((w[k + CPU_CTLR] & GICC_CTLR_EOIMODE) === 0) this.deactivate(cpu, irq);
    else this.update(cpu);
  }

  /** GICC_DIR write (4.4.15) or ICACTIVER: clears the active state. */
  deactivate(cpu: number, irq: number): void {
    if (irq >= this.irqs) return;
    this.w[this.active + this.word(cpu, irq)] &= ~(1 << (irq & 31));
    if (irq < GIC_NR_PRIVATE) this.update(cpu); else this.updateAll();
  }

  /** GICD_SGIR write (4.3.15) by CPU `cpu`. */
  sendSgi(cpu: number, value: number): void {
    const sgi = value & 0xf;
    const filter = (value >>> 24) & 3;
    let targets = 0;
    if (filter === SGIR_FILTER_LIST) targets = (value >>> 16) & 0xff;
    else if (filter === SGIR_FILTER_OTHERS) targets = ~(1 << cpu);
    else if (filter === SGIR_FILTER_SELF) targets = 1 << cpu;
    targets &= this.cpuMask;
    for (let t = 0; targets !== 0; t++, targets >>>= 1) {
      if ((targets & 1) === 0) continue;
      this.b[this.sgiSrc + t * 16 + sgi] |= 1 << cpu;
      this.w[this.latch + t] |= 1 << sgi;
      this.update(t);
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Distributor registers

  private distRead(cpu: number, off: number, size: number): number {
    if ((off >= GICD_IPRIORITYR && off < GICD_ICFGR) || (off >= GICD_CPENDSGIR && off < GICD_SPENDSGIR + 16)) {
      let v = 0;
      for (let i = 0; i < size && i < 4; i++) v |= this.distByte(cpu, off + i) << (8 * i);
      return v;
    }
    return subWord(this.distWord(cpu, off & ~3), off, size);
  }

  /** Byte-accessible registers: IPRIORITYR, ITARGETSR, CPENDSGIR/SPENDSGIR (4.1.4). */
  private distByte(cpu: number, off: number): number {
    if (off < GICD_ITARGETSR) {
      const irq = off - GICD_IPRIORITYR;
      return irq < this.irqs ? this.b[this.prioAt(cpu, irq)] : 0;
    }
    if (off < GICD_ICFGR) {
      const irq = off - GICD_ITARGETSR;
      if (irq < GIC_NR_PRIVATE) return 1 << cpu; // 4.3.12: banked INTIDs read as the reading CPU's bit
      return irq < this.irqs ? this.b[this.target + irq] : 0;
    }
    return this.b[this.sgiSrc + cpu * 16 + ((off - GICD_CPENDSGIR) & 15)];
  }

  private distWord(cpu: number, off: number): number {
    const w = this.w;
    if (off < GICD_IGROUPR) {
      switch (off) {
        case GICD_CTLR: return w[0];
        case GICD_TYPER: return (this.banks - 1) | ((this.cpus - 1) << 5); // SecurityExtn = 0
        case GICD_IIDR: return GICD_IIDR_VALUE;
        default: return 0;
      }
    }
    if (off < GICD_IPRIORITYR) {
      const n = (off >> 2) & 31; // register index within its array = bank
      if (n >= this.banks) return 0;
      const x = n === 0 ? cpu : this.cpus + n - 1;
      switch (off & ~0x7f) {
        case GICD_IGROUPR: return w[this.group + x];
        case GICD_ISENABLER: case GICD_ICENABLER: return w[this.en + x];
        case GICD_ISPENDR: case GICD_ICPENDR: return this.pendingWord(x);
        default: return w[this.active + x]; // ISACTIVER, ICACTIVER
      }
    }
    if (off >= GICD_ICFGR && off < GICD_ICFGR + 0x100) {
      const n = (off - GICD_ICFGR) >> 2; // 16 INTIDs per register
      if (n >= this.banks * 2) return 0;
      const x = n < 2 ? cpu : this.cpus + (n >> 1) - 1;
      const e = (this.w[this.edge + x] >>> ((n & 1) * 16)) & 0xffff;
      let v = 0;
      for (let i = 0; i < 16; i++) if ((e >>> i) & 1) v |= 2 << (2 * i);
      return v;
    }
    if (off >= GICD_PIDR4) {
      if (off === GICD_PIDR4) return GIC_PIDR4;
      if (off >= GICD_PIDR0 && off < GICD_CIDR0) return GIC_PIDR[(off - GICD_PIDR0) >> 2];
      if (off >= GICD_CIDR0) return GIC_CIDR[(off - GICD_CIDR0) >> 2];
    }
    return 0; // SGIR is write-only; reserved and implementation-defined registers RAZ
  }

  private distWrite(cpu: number, off: number, size: number, v: number): void {
    if ((off >= GICD_IPRIORITYR && off < GICD_ICFGR) || (off >= GICD_CPENDSGIR && off < GICD_SPENDSGIR + 16)) {
      for (let i = 0; i < size && i < 4; i++) this.distByteWrite(cpu, off + i, (v >>> (8 * i)) & 0xff);
      if (off >= GICD_CPENDSGIR) this.update(cpu); else this.updateAll();
      return;
    }
    if (size !== 4) { this.badAccesses++; return; } // word-only registers (4.1.4)
    const w = this.w;
    if (off < GICD_IGROUPR) {
      if (off === GICD_CTLR) { w[0] = v & (GICD_CTLR_GRP0 | GICD_CTLR_GRP1); this.updateAll(); }
      return;
    }
    if (off < GICD_IPRIORITYR) {
      const n = (off >> 2) & 31;
      if (n >= this.banks) return;
      const x = n === 0 ? cpu : this.cpus + n - 1;
      const sgiMask = n === 0 ? ~0xffff : -1; // SGI enable and pending bits are not writable here (4.3.5, 4.3.7)
      switch (off & ~0x7f) {
        case GICD_IGROUPR: w[this.group + x] = v; break;
        case GICD_ISENABLER: w[this.en + x] |= v & sgiMask; break;
        case GICD_ICENABLER: w[this.en + x] &= ~(v & sgiMask); break;
        case GICD_ISPENDR: w[this.latch + x] |= v & sgiMask; break;
        case GICD_ICPENDR: w[this.latch + x] &= ~(v & sgiMask); break;
        case GICD_ISACTIVER: w[this.active + x] |= v; break;
        default: w[this.active + x] &= ~v; break; // ICACTIVER
      }
      if (n === 0) this.update(cpu); else this.updateAll();
      return;
    }
    if (off >= GICD_ICFGR && off < GICD_ICFGR + 0x100) {
      const n = (off - GICD_ICFGR) >> 2;
      if (n === 0 || n >= this.banks * 2) return; // SGIs are always edge-triggered (read-only)
      const x = n < 2 ? cpu : this.cpus + (n >> 1) - 1;
      let e = 0;
      for (let i = 0; i < 16; i++) if ((v >>> (2 * i + 1)) & 1) e |= 1 << i;
      const shift = (n & 1) * 16;
      w[this.edge + x] = (w[this.edge + x] & ~(0xffff << shift)) | (e << shift);
      if (n < 2) this.update(cpu); else this.updateAll();
      return;
    }
    if (off === GICD_SGIR) this.sendSgi(cpu, v);
  }

  private distByteWrite(cpu: number, off: number, v: number): void {
    if (off < GICD_ITARGETSR) {
      const irq = off - GICD_IPRIORITYR;
      if (irq < this.irqs) this.b[this.prioAt(cpu, irq)] = v & PRIO_MASK;
      return;
    }
    if (off < GICD_ICFGR) {
      const irq = off - GICD_ITARGETSR;
      if (irq >= GIC_NR_PRIVATE && irq < this.irqs) this.b[this.target + irq] = v & this.cpuMask;
      return;
    }
    // CPENDSGIR / SPENDSGIR (4.3.16, 4.3.17): per-source pending bits of this CPU's SGIs.
    const sgi = (off - GICD_CPENDSGIR) & 15;
    const s = this.sgiSrc + cpu * 16 + sgi;
    if (off < GICD_SPENDSGIR) this.b[s] &= ~v; else this.b[s] |= v & this.cpuMask;
    if (this.b[s] !== 0) this.w[this.latch + cpu] |= 1 << sgi; else this.w[this.latch + cpu] &= ~(1 << sgi);
  }

  // ---------------------------------------------------------------------------------------------------------
  // CPU interface registers

  private cpuRead(cpu: number, off: number, size: number): number {
    if (size !== 4) { this.badAccesses++; return 0; } // the CPU interface is word-access only (4.1.4)
    const w = this.w;
    const k = this.cpuBase + cpu * CPU_STRIDE;
    switch (off) {
      case GICC_CTLR: return w[k + CPU_CTLR];
      case GICC_PMR: return w[k + CPU_PMR];
      case GICC_BPR: return w[k + CPU_BPR];
      case GICC_IAR: return this.acknowledge(cpu, false);
      case GICC_RPR: return this.running(k);
      case GICC_HPPIR: case GICC_AHPPIR: {
        const irq = this.hppi(cpu);
        if (irq === INTID_SPURIOUS || this.hpPrio >= w[k + CPU_PMR]) return INTID_SPURIOUS;
        if (off === GICC_AHPPIR ? this.hpGroup === 0 : this.hpGroup === 1 && (w[k + CPU_CTLR] & GICC_CTLR_ACKCTL) === 0) {
          return off === GICC_AHPPIR ? INTID_SPURIOUS : INTID_SPURIOUS_GRP1;
        }
        if (irq >= GIC_NR_SGIS) return irq;
        const src = this.b[this.sgiSrc + cpu * 16 + irq];
        return irq | ((31 - Math.clz32(src & -src)) << 10);
      }
      case GICC_ABPR: return w[k + CPU_ABPR];
      case GICC_AIAR: return this.acknowledge(cpu, true);
      case GICC_APR0: return w[k + CPU_APR];
      case GICC_IIDR: return GICC_IIDR_VALUE;
      default: return 0; // EOIR, AEOIR, DIR are write-only; other APRs and reserved offsets RAZ
    }
  }

  private cpuWrite(cpu: number, off: number, size: number, v: number): void {
    if (size !== 4) { this.badAccesses++; return; }
    const w = this.w;
    const k = this.cpuBase + cpu * CPU_STRIDE;
    switch (off) {
      case GICC_CTLR: w[k + CPU_CTLR] = v & GICC_CTLR_MASK; break;
      case GICC_PMR: w[k + CPU_PMR] = v & PRIO_MASK; break;
      case GICC_BPR: w[k + CPU_BPR] = Math.max(v & 7, BPR_MIN); break;
      case GICC_ABPR: w[k + CPU_ABPR] = Math.max(v & 7, ABPR_MIN); break;
      case GICC_EOIR: case GICC_AEOIR: this.endOfInterrupt(cpu, v); return;
      case GICC_DIR: this.deactivate(cpu, v & 0x3ff); return;
      case GICC_APR0: w[k + CPU_APR] = v; break; // restore path (4.4.13); state is IMPLEMENTATION DEFINED
      default: return;
    }
    this.update(cpu);
  }
}

/**
 * The device-tree node for this GIC (bindings/interrupt-controller/arm,gic.yaml), for #address-cells =
 * #size-cells = 2 at the root: GICD window (4 KiB) then GICC window (8 KiB, so GICC_DIR is reachable).
 * Consumers reference it with `interrupt-parent = <phandle>` and 3-cell specifiers (spiInterrupt in dt.ts).
 */
export function gicv2DtNode(distBase: number, cpuBase: number, phandle: number): DtNode {
  return {
    name: `intc@${distBase.toString(16)}`,
    props: {
      compatible: ["arm,cortex-a15-gic"],
      "#interrupt-cells": [3],
      "interrupt-controller": true,
      reg: [...reg64(distBase, GICD_SIZE), ...reg64(cpuBase, GICC_SIZE)],
      phandle: [phandle],
    },
  };
}
