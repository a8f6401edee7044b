/**
 * GICv2 register map, bit fields and the state layout (ARM IHI 0048B "ARM Generic Interrupt Controller
 * Architecture Specification, version 2.0", chapter 4 "Programmers' Model"; identification values of the
 * CoreLink GIC-400, ARM DDI 0471B, which is what a "arm,cortex-a15-gic" on a virt-like board looks like).
 */

/** Maximum CPU interfaces in GICv2 (GICD_TYPER.CPUNumber is 3 bits; ITARGETSR bytes have 8 bits). */
export const GIC_MAX_CPUS = 8;
/** INTID ranges (IHI 0048B 2.2.1): SGIs 0-15, PPIs 16-31, SPIs 32-1019, special 1020-1023. */
export const GIC_NR_SGIS = 16, GIC_NR_PRIVATE = 32, GIC_MAX_IRQS = 1020;
/** Special INTIDs returned by GICC_IAR (IHI 0048B 3.2.5). */
export const INTID_SPURIOUS = 1023, INTID_SPURIOUS_GRP1 = 1022;

/** Window sizes: the Distributor is 4 KiB; the CPU interface 8 KiB (GICC_DIR lives at 0x1000, 4.1.3). */
export const GICD_SIZE = 0x1000, GICC_SIZE = 0x2000;

// Distributor registers (IHI 0048B table 4-1).
export const GICD_CTLR = 0x000, GICD_TYPER = 0x004, GICD_IIDR = 0x008;
export const GICD_IGROUPR = 0x080, GICD_ISENABLER = 0x100, GICD_ICENABLER = 0x180;
export const GICD_ISPENDR = 0x200, GICD_ICPENDR = 0x280, GICD_ISACTIVER = 0x300, GICD_ICACTIVER = 0x380;
export const GICD_IPRIORITYR = 0x400, GICD_ITARGETSR = 0x800, GICD_ICFGR = 0xc00;
export const GICD_PPISR = 0xd00; // GIC-400 implementation defined: PPI status (not modelled, RAZ)
export const GICD_SGIR = 0xf00, GICD_CPENDSGIR = 0xf10, GICD_SPENDSGIR = 0xf20;
export const GICD_PIDR4 = 0xfd0, GICD_PIDR0 = 0xfe0, GICD_CIDR0 = 0xff0;

/** GICD_CTLR without the Security Extensions (4.3.1): EnableGrp0, EnableGrp1. */
export const GICD_CTLR_GRP0 = 1, GICD_CTLR_GRP1 = 2;
/** GICD_SGIR fields (4.3.15). */
export const SGIR_FILTER_LIST = 0, SGIR_FILTER_OTHERS = 1, SGIR_FILTER_SELF = 2;

// CPU interface registers (IHI 0048B table 4-2).
export const GICC_CTLR = 0x00, GICC_PMR = 0x04, GICC_BPR = 0x08, GICC_IAR = 0x0c, GICC_EOIR = 0x10;
export const GICC_RPR = 0x14, GICC_HPPIR = 0x18, GICC_ABPR = 0x1c, GICC_AIAR = 0x20, GICC_AEOIR = 0x24;
export const GICC_AHPPIR = 0x28, GICC_APR0 = 0xd0, GICC_NSAPR0 = 0xe0, GICC_IIDR = 0xfc, GICC_DIR = 0x1000;

/**
 * GICC_CTLR without the Security Extensions (4.4.1, figure 4-25): EnableGrp0, EnableGrp1, AckCtl, FIQEn,
 * CBPR, the four bypass-disable bits, EOImodeS (bit 9, which Linux's irq-gic.c calls GICC_CTRL_EOImodeNS and
 * sets when it uses split priority-drop/deactivate) and EOImodeNS (bit 10).
 */
export const GICC_CTLR_GRP0 = 1 << 0, GICC_CTLR_GRP1 = 1 << 1, GICC_CTLR_ACKCTL = 1 << 2;
export const GICC_CTLR_FIQEN = 1 << 3, GICC_CTLR_CBPR = 1 << 4, GICC_CTLR_EOIMODE = 1 << 9;
export const GICC_CTLR_MASK = 0x7ff;

/**
 * Priority bits implemented: 5 (32 levels), as on the GIC-400 (DDI 0471B 3.1); the low 3 bits of every
 * priority field read as zero. The minimum binary point follows (IHI 0048B 3.3.3): BPR >= 2, ABPR >= 3.
 */
export const PRIO_MASK = 0xf8, PRIO_SHIFT = 3, BPR_MIN = 2, ABPR_MIN = 3;
/** GICC_RPR when no interrupt is active (4.4.6). */
export const PRIO_IDLE = 0xff;

/** Identification: GIC-400 r0p1 values (DDI 0471B 3.2). PIDR2 bits [7:4] = ArchRev 2 (GICv2). */
export const GICD_IIDR_VALUE = 0x0200143b;
/** GICC_IIDR: ProductID 0x020, ArchVersion 2, Revision 1, Implementer 0x43B; Linux's gic_check_gic400 matches
 * (value & 0xff0fff) == 0x02043b. */
export const GICC_IIDR_VALUE = 0x0202143b;
export const GIC_PIDR = [0x90, 0xb4, 0x2b, 0x00] as const; // PIDR0..3
export const GIC_PIDR4 = 0x04;
export const GIC_CIDR = [0x0d, 0xf0, 0x05, 0xb1] as const;

/**
 * State layout. All of the GIC's mutable state lives in one buffer (an ArrayBuffer today, a SharedArrayBuffer
 * when vCPUs run on worker threads: then every view below is shared and updates would use Atomics). With
 * C = CPUs, N = interrupt lines (a multiple of 32, >= 64) and B = C + N/32 - 1 bitmap words:
 *
 * Int32 words, in order:
 *   DIST_WORDS   [0]       GICD_CTLR; [1..3] reserved
 *   6 bitmaps of B words each: ENABLE, LATCH, LEVEL, ACTIVE, GROUP, EDGE. Bitmap word w holds INTIDs
 *                32*k..32*k+31 where word w < C is CPU w's banked bank 0 (SGIs+PPIs, k = 0) and word C+k-1
 *                is the shared bank k >= 1 (SPIs). Bit i of the word = INTID 32*k + i, as in the registers.
 *                  ENABLE  GICD_ISENABLER state            LATCH  edge-latched or software pending
 *                  LEVEL   current input line level        ACTIVE active state
 *                  GROUP   GICD_IGROUPR (1 = group 1)      EDGE   ICFGR Int_config[1] (1 = edge)
 *                Pending (4.3.7) = LATCH | (LEVEL & ~EDGE): a level interrupt stays pending while its line
 *                is high, whatever ICPENDR does.
 *   C blocks of CPU_STRIDE words: the CPU interface (CPU_* indexes below).
 * Then bytes:
 *   PRIO    C*32 + N-32  GICD_IPRIORITYR: slot cpu*32+intid for banked INTIDs, C*32+intid-32 for SPIs
 *   TARGET  N            GICD_ITARGETSR for SPIs (indexes < 32 unused)
 *   SGISRC  C*16         pending SGI sources: byte cpu*16+sgi, bit s = pending from CPU s (4.3.16)
 */
export const DIST_WORDS = 4;
export const BM_ENABLE = 0, BM_LATCH = 1, BM_LEVEL = 2, BM_ACTIVE = 3, BM_GROUP = 4, BM_EDGE = 5, BM_COUNT = 6;
/** CPU interface words: GICC_CTLR, PMR, BPR, ABPR, active priorities (bit p = group priority level p active,
 * i.e. priority p << PRIO_SHIFT), current IRQ and FIQ output levels. */
export const CPU_CTLR = 0, CPU_PMR = 1, CPU_BPR = 2, CPU_ABPR = 3, CPU_APR = 4, CPU_IRQ = 5, CPU_FIQ = 6;
export const CPU_STRIDE = 8;

export interface GicLayout {
  cpus: number;
  irqs: number;
  /** Bitmap words per bitmap. */
  words: number;
  /** Int32 index of each bitmap's first word (bm[k] for BM_*). */
  bm: number[];
  /** Int32 index of CPU 0's interface block. */
  cpu: number;
  /** Byte offsets. */
  prio: number;
  target: number;
  sgiSrc: number;
  byteLength: number;
}

export function gicLayout(cpus: number, irqs: number): GicLayout {
  const words = cpus + irqs / 32 - 1;
  const bm: number[] = [];
  for (let k = 0; k < BM_COUNT; k++) bm.push(DIST_WORDS + k * words);
  const cpu = DIST_WORDS + BM_COUNT * words;
  const prio = (cpu + cpus * CPU_STRIDE) * 4;
  const target = prio + cpus * 32 + irqs - 32;
  const sgiSrc = target + irqs;
  const byteLength = (sgiSrc + cpus * 16 + 7) & ~7;
  return { cpus, irqs, words, bm, cpu, prio, target, sgiSrc, byteLength };
}
