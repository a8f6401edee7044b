/**
 * Saved state of the GICv2 (Gicv2State) and its checks. The model already keeps all of its mutable state in one
 * buffer (gicv2-regs.ts); the saved form names each part instead of copying the raw buffer, so that a state
 * can be checked field by field and survives a future change of the buffer layout.
 *
 * Not saved: the IRQ/FIQ output levels (derived: restore recomputes them and re-drives every output, so the
 * vCPUs' interrupt lines agree with the restored GIC whatever they were before) and the shape (cpus, irqs),
 * which is wiring: the board builds the GIC with its shape and the state must match it.
 */
import {
  ABPR_MIN, BM_ACTIVE, BM_EDGE, BM_ENABLE, BM_GROUP, BM_LATCH, BM_LEVEL, BPR_MIN, CPU_ABPR, CPU_APR, CPU_BPR,
  CPU_CTLR, CPU_FIQ, CPU_IRQ, CPU_PMR, CPU_STRIDE, GICC_CTLR_MASK, GICD_CTLR_GRP0, GICD_CTLR_GRP1, GIC_NR_PRIVATE,
  GIC_NR_SGIS, PRIO_MASK, type GicLayout,
} from "./gicv2-regs.js";
import { I32_MAX, I32_MIN, StateError, stateArray, stateBytes, stateInt, stateInt32s, stateObject, stateVersion }
  from "../../common/state.js";

const C = "gicv2";

/** One CPU interface (IHI 0048B 4.4): GICC_CTLR, PMR, BPR, ABPR and the active priorities (GICC_APR0 form). */
export interface Gicv2CpuState {
  ctlr: number;
  pmr: number;
  bpr: number;
  abpr: number;
  /** Bit p = group priority p << 3 active (the running priority is the lowest set bit). */
  apr: number;
}

export interface Gicv2State {
  version: 1;
  /** The shape this state belongs to (restore refuses another). */
  cpus: number;
  irqs: number;
  /** GICD_CTLR (EnableGrp0, EnableGrp1). */
  ctlr: number;
  /**
   * Bitmaps of `cpus + irqs/32 - 1` words each: words 0..cpus-1 are each CPU's banked INTIDs 0..31, word
   * cpus+k-1 the SPIs 32k..32k+31 (bit i = INTID 32k+i). `latch` is edge-latched or software pending, `level`
   * the input line levels; pending = latch | (level & ~edge).
   */
  enable: Int32Array;
  latch: Int32Array;
  level: Int32Array;
  active: Int32Array;
  group: Int32Array;
  edge: Int32Array;
  cpu: Gicv2CpuState[];
  /** GICD_IPRIORITYR: cpus*32 banked slots (cpu*32+intid), then irqs-32 SPI slots (intid-32). */
  priority: Uint8Array;
  /** GICD_ITARGETSR per INTID (irqs bytes; the first 32 are unused and zero). */
  target: Uint8Array;
  /** Pending SGI sources: byte cpu*16+sgi, bit s = pending from CPU s (GICD_SPENDSGIR). */
  sgiSources: Uint8Array;
}

/** The state buffer's Int32/byte views, as Gicv2 exposes them (buffer + layout). */
interface GicStore {
  readonly cpus: number;
  readonly irqs: number;
  readonly layout: GicLayout;
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
}

export function saveGicv2(g: GicStore): Gicv2State {
  const L = g.layout;
  const w = new Int32Array(g.buffer, g.byteOffset, L.byteLength >> 2);
  const b = new Uint8Array(g.buffer, g.byteOffset, L.byteLength);
  const bm = (k: number): Int32Array => w.slice(L.bm[k], L.bm[k] + L.words);
  const cpu: Gicv2CpuState[] = [];
  for (let c = 0; c < g.cpus; c++) {
    const k = L.cpu + c * CPU_STRIDE;
    cpu.push({ ctlr: w[k + CPU_CTLR], pmr: w[k + CPU_PMR], bpr: w[k + CPU_BPR], abpr: w[k + CPU_ABPR], apr: w[k + CPU_APR] });
  }
  return {
    version: 1, cpus: g.cpus, irqs: g.irqs, ctlr: w[0],
    enable: bm(BM_ENABLE), latch: bm(BM_LATCH), level: bm(BM_LEVEL), active: bm(BM_ACTIVE), group: bm(BM_GROUP),
    edge: bm(BM_EDGE), cpu,
    priority: b.slice(L.prio, L.prio + g.cpus * 32 + g.irqs - 32),
    target: b.slice(L.target, L.target + g.irqs),
    sgiSources: b.slice(L.sgiSrc, L.sgiSrc + g.cpus * 16),
  };
}

/**
 * Checks `state` against the GIC's shape and the values its registers can hold; on success writes it into the
 * buffer and returns (the caller then re-drives the outputs). Throws StateError, buffer untouched, otherwise.
 */
export function restoreGicv2(g: GicStore, state: unknown): void {
  const s = stateVersion(C, state, 1);
  stateInt(C, "cpus", s.cpus, g.cpus, g.cpus);
  stateInt(C, "irqs", s.irqs, g.irqs, g.irqs);
  const L = g.layout;
  const cpuMask = (1 << g.cpus) - 1;
  const ctlr = stateInt(C, "ctlr", s.ctlr, 0, GICD_CTLR_GRP0 | GICD_CTLR_GRP1);
  const names = ["enable", "latch", "level", "active", "group", "edge"] as const;
  const index = [BM_ENABLE, BM_LATCH, BM_LEVEL, BM_ACTIVE, BM_GROUP, BM_EDGE];
  const maps = names.map((n) => stateInt32s(C, n, s[n], L.words));
  const [enable, latch, , , , edge] = maps;
  const sgiSources = stateBytes(C, "sgiSources", s.sgiSources, g.cpus * 16);
  for (let c = 0; c < g.cpus; c++) {
    // SGIs are permanently enabled and edge-triggered on the GIC-400 (the model's reset; writes cannot change it).
    if ((enable[c] & 0xffff) !== 0xffff) throw new StateError(C, `enable[${c}]`, "SGIs 0-15 must stay enabled");
    if ((edge[c] & 0xffff) !== 0xffff) throw new StateError(C, `edge[${c}]`, "SGIs 0-15 must stay edge-triggered");
    for (let i = 0; i < GIC_NR_SGIS; i++) {
      const src = sgiSources[c * 16 + i];
      if ((src & ~cpuMask) !== 0) throw new StateError(C, `sgiSources[${c * 16 + i}]`, `source CPUs ${src} beyond ${g.cpus} CPUs`);
      // An SGI is pending exactly while some source is (GICD_SPENDSGIR/CPENDSGIR keep the two in step).
      if (((latch[c] >>> i) & 1) !== (src !== 0 ? 1 : 0)) {
        throw new StateError(C, `latch[${c}]`, `SGI ${i} pending bit disagrees with its sources`);
      }
    }
  }
  const cpuArr = stateArray(C, "cpu", s.cpu, g.cpus);
  const cpu: Gicv2CpuState[] = cpuArr.map((x, c) => {
    const o = stateObject(C, `cpu[${c}]`, x);
    const f = (n: string, lo: number, hi: number): number => stateInt(C, `cpu[${c}].${n}`, o[n], lo, hi);
    const r = { ctlr: f("ctlr", 0, GICC_CTLR_MASK), pmr: f("pmr", 0, 0xff), bpr: f("bpr", BPR_MIN, 7),
      abpr: f("abpr", ABPR_MIN, 7), apr: f("apr", I32_MIN, I32_MAX) };
    if ((r.pmr & ~PRIO_MASK) !== 0) throw new StateError(C, `cpu[${c}].pmr`, `${r.pmr} has unimplemented low bits`);
    return r;
  });
  const priority = stateBytes(C, "priority", s.priority, g.cpus * 32 + g.irqs - 32);
  for (let i = 0; i < priority.length; i++) {
    if ((priority[i] & ~PRIO_MASK) !== 0) throw new StateError(C, `priority[${i}]`, `${priority[i]} has unimplemented low bits`);
  }
  const target = stateBytes(C, "target", s.target, g.irqs);
  for (let i = 0; i < g.irqs; i++) {
    const bad = i < GIC_NR_PRIVATE ? target[i] !== 0 : (target[i] & ~cpuMask) !== 0;
    if (bad) throw new StateError(C, `target[${i}]`, `${target[i]} names CPUs beyond ${g.cpus} (or a banked INTID)`);
  }

  // Everything checked: write it in.
  const w = new Int32Array(g.buffer, g.byteOffset, L.byteLength >> 2);
  const b = new Uint8Array(g.buffer, g.byteOffset, L.byteLength);
  w[0] = ctlr;
  for (let k = 0; k < maps.length; k++) w.set(maps[k], L.bm[index[k]]);
  for (let c = 0; c < g.cpus; c++) {
    const k = L.cpu + c * CPU_STRIDE, x = cpu[c];
    w[k + CPU_CTLR] = x.ctlr; w[k + CPU_PMR] = x.pmr; w[k + CPU_BPR] = x.bpr; w[k + CPU_ABPR] = x.abpr;
    w[k + CPU_APR] = x.apr;
    // Unknown output levels: the caller's update reports every output afresh.
    w[k + CPU_IRQ] = -1; w[k + CPU_FIQ] = -1;
  }
  b.set(priority, L.prio);
  b.set(target, L.target);
  b.set(sgiSources, L.sgiSrc);
}
