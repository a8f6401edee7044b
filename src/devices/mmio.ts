/**
 * The board's MMIO plumbing: the narrow interfaces devices implement (MmioDevice, IrqLine) and MmioRouter,
 * the Mmu's MmioBus that decodes a physical address to a device window.
 *
 * Conventions (shared with src/mmu/mmu.ts):
 *  - Offsets are relative to the device window's base; sizes are 1, 2, 4 or 8 bytes.
 *  - 32-bit values travel as numbers; read results may be signed or unsigned int32 (only the low `size*8`
 *    bits matter). A 64-bit value travels as (lo, hi): read returns lo and leaves hi in int64.ts's R[0].
 *  - A device that does not set `supports64` never sees an 8-byte access: the router splits it into two
 *    4-byte accesses (low word first), as an AXI-to-APB bridge would.
 *  - Addresses nothing decodes: claims() returns false and the Mmu raises a synchronous external abort.
 *
 * Hot path: read/write allocate nothing; the router remembers the last window hit, so a device polled in a
 * loop (a UART's FR, the GIC's IAR) is found with two compares.
 */
import { R } from "../common/int64.js";
import type { MmioBus } from "../mmu/mmu.js";

/** A device register window. */
export interface MmioDevice {
  /** Window size in bytes (the range the router decodes to this device). */
  readonly size: number;
  /** True if the device handles 8-byte accesses itself (returning lo, hi in R[0]); otherwise they are split. */
  readonly supports64?: boolean;
  read(offset: number, size: number): number;
  /** For size 8 (supports64 only), `hi` holds the upper word; otherwise it is 0 and may be ignored. */
  write(offset: number, size: number, value: number, hi: number): void;
}

/** An interrupt request line: level-sensitive, true = asserted. Edge sources pulse it (true then false). */
export interface IrqLine {
  set(level: boolean): void;
}

/** An IrqLine that does nothing (unconnected outputs, tests). */
export const NO_IRQ: IrqLine = { set: () => {} };

/** An IrqLine remembering its level (tests, simple wiring). */
export class LatchedIrq implements IrqLine {
  level = false;
  /** Number of rising edges seen. */
  edges = 0;
  set(level: boolean): void {
    if (level && !this.level) this.edges++;
    this.level = level;
  }
}

/** Thrown at registration time for a malformed or overlapping window (a board bug, not a guest fault). */
export class MmioMapError extends Error {
  readonly code = "MMIO_MAP";
  constructor(message: string, readonly base: number, readonly size: number) {
    super(message);
  }
}

/**
 * Decodes physical addresses to registered device windows. Windows are kept sorted by base; lookup is a
 * last-hit check then a binary search. Addresses are plain numbers (exact below 2^53).
 */
export class MmioRouter implements MmioBus {
  private bases: number[] = [];
  private ends: number[] = []; // exclusive
  private devs: MmioDevice[] = [];
  private lastIdx = -1;
  /** Counts of accesses to unassigned addresses that reached read/write anyway (should stay 0). */
  unassigned = 0;

  /** Maps `dev` at physical address `base` (its window is dev.size bytes). */
  map(base: number, dev: MmioDevice): void {
    const size = dev.size;
    if (!(size > 0) || base < 0 || !Number.isSafeInteger(base) || !Number.isSafeInteger(base + size)) {
      throw new MmioMapError(`bad MMIO window ${base.toString(16)}+${size.toString(16)}`, base, size);
    }
    let i = 0;
    while (i < this.bases.length && this.bases[i] < base) i++;
    if ((i > 0 && this.ends[i - 1] > base) || (i < this.bases.length && this.bases[i] < base + size)) {
      throw new MmioMapError(`MMIO window ${base.toString(16)}+${size.toString(16)} overlaps another`, base, size);
    }
    this.bases.splice(i, 0, base);
    this.ends.splice(i, 0, base + size);
    this.devs.splice(i, 0, dev);
    this.lastIdx = -1;
  }

  /** Removes the window starting at `base`; returns false if none. */
  unmap(base: number): boolean {
    const i = this.bases.indexOf(base);
    if (i < 0) return false;
    this.bases.splice(i, 1); this.ends.splice(i, 1); this.devs.splice(i, 1);
    this.lastIdx = -1;
    return true;
  }

  /** Index of the window containing pa, or -1. */
  private find(pa: number): number {
    const l = this.lastIdx;
    if (l >= 0 && pa >= this.bases[l] && pa < this.ends[l]) return l;
    let lo = 0, hi = this.bases.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (pa < this.bases[mid]) hi = mid - 1;
      else if (pa >= this.ends[mid]) lo = mid + 1;
      else { this.lastIdx = mid; return mid; }
    }
    return -1;
  }

  claims(pa: number): boolean {
    return this.find(pa) >= 0;
  }

  /** MmioBus.read: returns the value; for size 8 returns lo and leaves hi in R[0]. Unassigned reads as 0. */
  read(pa: number, size: number): number {
    const i = this.find(pa);
    if (i < 0) { this.unassigned++; R[0] = 0; return 0; }
    const d = this.devs[i];
    const off = pa - this.bases[i];
    if (size !== 8 || d.supports64 === true) return d.read(off, size);
    const lo = d.read(off, 4);
    R[0] = d.read(off + 4, 4) | 0;
    return lo | 0;
  }

  /** MmioBus.write. Writes to unassigned addresses are dropped (claims() is checked by the Mmu first). */
  write(pa: number, size: number, lo: number, hi: number): void {
    const i = this.find(pa);
    if (i < 0) { this.unassigned++; return; }
    const d = this.devs[i];
    const off = pa - this.bases[i];
    if (size !== 8 || d.supports64 === true) { d.write(off, size, lo, size === 8 ? hi : 0); return; }
    d.write(off, 4, lo, 0);
    d.write(off + 4, 4, hi, 0);
  }
}

/**
 * Helpers for devices whose registers are 32-bit words: a sub-word read returns the addressed bytes of the
 * containing word (so an 8- or 16-bit read of an ID register works), a sub-word write is merged by the device.
 */
export function subWord(word: number, offset: number, size: number): number {
  if (size >= 4) return word;
  const v = word >>> ((offset & 3) * 8);
  return size === 1 ? v & 0xff : v & 0xffff;
}
