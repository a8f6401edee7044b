/**
 * The A64 decoder: instruction encodings are described once, as 32-character bit patterns in the style of the
 * Arm ARM's encoding diagrams ('0', '1', 'x' for a free bit; spaces and underscores ignored), each bound to a
 * small handler. Patterns are bucketed by op0 (bits 28:25, Arm ARM C4.1 "A64 instruction set encoding") and,
 * inside a bucket, tried most-specific first, so a narrower encoding always wins over a wider one.
 *
 * Decoding is not on the hot path: the CPU caches the handler per instruction word slot of each code page
 * (see Cpu.codeCache), so each instruction is decoded once until its page is written or invalidated.
 */
import type { Cpu } from "./cpu.js";

/** Executes one instruction. `i` is the instruction word; PC (in c.r) is the instruction's own address. */
export type Handler = (c: Cpu, i: number) => void;

interface Entry {
  mask: number;
  value: number;
  name: string;
  handler: Handler;
  bits: number; // number of fixed bits: more = more specific
}

export class Decoder {
  private readonly buckets: Entry[][] = [];
  private readonly names = new Map<Handler, string>();
  private sorted = true;

  constructor(private readonly undefinedHandler: Handler) {
    for (let k = 0; k < 16; k++) this.buckets.push([]);
  }

  /**
   * Registers an encoding. `pattern` is bit 31 first; e.g. "sf 0 0 100010 sh imm12 Rn Rd" is written
   * "x00100010xxxxxxxxxxxxxxxxxxxxxxx". Handlers may still refuse reserved field values by calling
   * `c.undefinedInstruction()` themselves.
   */
  def(pattern: string, name: string, handler: Handler): void {
    const p = pattern.replace(/[\s_]/g, "");
    if (p.length !== 32 || /[^01x]/.test(p)) throw new Error(`decoder: bad pattern for ${name}: ${pattern}`);
    let mask = 0, value = 0, bits = 0;
    for (let k = 0; k < 32; k++) {
      const ch = p[k];
      const bit = 31 - k;
      if (ch !== "x") {
        mask |= 1 << bit;
        bits++;
        if (ch === "1") value |= 1 << bit;
      }
    }
    const e: Entry = { mask: mask | 0, value: value | 0, name, handler, bits };
    this.names.set(handler, name);
    // Add to every op0 bucket the pattern can match.
    for (let op0 = 0; op0 < 16; op0++) {
      const bm = (mask >>> 25) & 0xf, bv = (value >>> 25) & 0xf;
      if ((op0 & bm) === bv) this.buckets[op0].push(e);
    }
    this.sorted = false;
  }

  private sort(): void {
    for (const b of this.buckets) b.sort((x, y) => y.bits - x.bits);
    this.sorted = true;
  }

  /** The handler for an instruction word (the undefined-instruction handler when nothing matches). */
  decode(i: number): Handler {
    if (!this.sorted) this.sort();
    const b = this.buckets[(i >>> 25) & 0xf];
    for (let k = 0; k < b.length; k++) {
      const e = b[k];
      if ((i & e.mask) === e.value) return e.handler;
    }
    return this.undefinedHandler;
  }

  /** The encoding name an instruction decodes to (diagnostics and tests). */
  nameOf(i: number): string {
    const h = this.decode(i);
    return this.names.get(h) ?? "UNDEFINED";
  }
}
