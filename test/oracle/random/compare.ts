/**
 * Parsing, comparing and reporting of the random-sequence harness's output records (layout in harness.ts).
 */
import { NUM_V, NUM_X_INPUTS, WINDOW_HALF, type Sequence, type Unit } from "../random-gen.js";
import { MAGIC, OUT_NZCV, OUT_SIZE, OUT_SIZE_MEM, OUT_V, OUT_WINDOW, OUT_X } from "./harness.js";

export interface ParseResult {
  /** Records by global sequence index. */
  records: Map<number, Buffer>;
  /** Global indices in the order they appeared. */
  order: number[];
  /** Set when the stream is malformed (bad magic, unknown index, truncated record). */
  error?: string;
}

/** Split an emulator's stdout into records. `byIndex` maps global index → sequence (for the record size). */
export function parseRecords(out: Buffer, byIndex: ReadonlyMap<number, Sequence>): ParseResult {
  const records = new Map<number, Buffer>();
  const order: number[] = [];
  let off = 0;
  while (off < out.length) {
    if (off + 8 > out.length) return { records, order, error: `truncated record header at byte ${off}` };
    const magic = out.readUInt32LE(off + 4), index = out.readUInt32LE(off);
    if (magic !== MAGIC) return { records, order, error: `bad record magic 0x${magic.toString(16)} at byte ${off}` };
    const seq = byIndex.get(index);
    if (!seq) return { records, order, error: `record for unknown sequence ${index} at byte ${off}` };
    const size = seq.mem ? OUT_SIZE_MEM : OUT_SIZE;
    if (off + size > out.length) return { records, order, error: `truncated record for sequence ${index}` };
    records.set(index, out.subarray(off, off + size));
    order.push(index);
    off += size;
  }
  return { records, order };
}

export interface FieldDiff { name: string; a: string; b: string }

const hex64 = (b: Buffer, off: number) => "0x" + b.readBigUInt64LE(off).toString(16).padStart(16, "0");
const hex128 = (b: Buffer, off: number) =>
  "0x" + b.readBigUInt64LE(off + 8).toString(16).padStart(16, "0") + "_" + b.readBigUInt64LE(off).toString(16).padStart(16, "0");
const flags = (b: Buffer, off: number) => {
  const v = b.readUInt32LE(off) >>> 28;
  return "NZCV".split("").map((ch, i) => (v & (8 >> i) ? ch : "-")).join("");
};

/** Every field of an output record as [name, text]. */
export function recordFields(rec: Buffer): [string, string][] {
  const f: [string, string][] = [];
  for (let i = 0; i <= 28; i++) f.push([`x${i}`, hex64(rec, OUT_X + 8 * i)]);
  f.push(["nzcv", flags(rec, OUT_NZCV)]);
  for (let i = 0; i < NUM_V; i++) f.push([`v${i}`, hex128(rec, OUT_V + 16 * i)]);
  for (let o = OUT_WINDOW; o < rec.length; o += 8) f.push([`mem[x28${signed(o - OUT_WINDOW - WINDOW_HALF)}]`, hex64(rec, o)]);
  return f;
}
const signed = (n: number) => (n < 0 ? `-${-n}` : `+${n}`);

/** The fields whose values differ (the records must be of the same sequence). */
export function compareRecords(a: Buffer, b: Buffer): FieldDiff[] {
  if (a.length !== b.length) return [{ name: "record length", a: String(a.length), b: String(b.length) }];
  if (a.equals(b)) return [];
  const fa = recordFields(a), fb = recordFields(b);
  const diffs: FieldDiff[] = [];
  for (let i = 0; i < fa.length; i++) if (fa[i]![1] !== fb[i]![1]) diffs.push({ name: fa[i]![0], a: fa[i]![1], b: fb[i]![1] });
  if (a.readBigUInt64LE(0) !== b.readBigUInt64LE(0)) diffs.unshift({ name: "header", a: hex64(a, 0), b: hex64(b, 0) });
  return diffs;
}

// ------------------------------------------------------------------------------------------------- reporting

export function sequenceText(s: Sequence): string {
  const lines: string[] = [];
  for (const u of s.units) for (const l of u.lines) lines.push(l.endsWith(":") ? l : "    " + l);
  return lines.join("\n");
}

export function inputsText(s: Sequence): string {
  const out: string[] = [];
  for (let i = 0; i < NUM_X_INPUTS; i += 4) {
    out.push(s.x.slice(i, i + 4).map((v, j) => `x${i + j}=0x${v.toString(16)}`.padEnd(24)).join(" ").trimEnd());
  }
  const f = s.nzcv >>> 28;
  out.push("nzcv=" + "NZCV".split("").map((ch, i) => (f & (8 >> i) ? ch : "-")).join(""));
  for (let i = 0; i < NUM_V; i += 2) {
    const q = (n: number) => `v${n}=0x${s.v[2 * n + 1]!.toString(16).padStart(16, "0")}_${s.v[2 * n]!.toString(16).padStart(16, "0")}`;
    out.push(q(i) + "  " + q(i + 1));
  }
  return out.map((l) => "    " + l).join("\n");
}

/** Side-by-side registers with the differing ones marked; memory only where it differs. */
export function resultsText(a: Buffer, b: Buffer, nameA: string, nameB: string): string {
  const fa = recordFields(a), fb = recordFields(b);
  const out = [`      ${"".padEnd(14)}${nameA.padEnd(40)}${nameB}`];
  for (let i = 0; i < fa.length; i++) {
    const [name, va] = fa[i]!, vb = fb[i]?.[1] ?? "?";
    const differs = va !== vb;
    if (name.startsWith("mem") && !differs) continue;
    out.push(`    ${differs ? "*" : " "} ${name.padEnd(14)}${va.padEnd(40)}${vb}${differs ? "   <<<" : ""}`);
  }
  return out.join("\n");
}

/** Normalised shape of a unit's principal instruction, for grouping failures: registers/immediates elided. */
export function unitKey(u: Unit): string {
  const insns = u.lines.filter((l) => !l.endsWith(":"));
  // A branch unit is keyed by the branch and the instruction it skips; other units by their last instruction
  // (earlier ones are set-up: a base copy, an index or divisor).
  if (insns.length === 2 && /^(b\.|cbn?z|tbn?z|b )/.test(insns[0]!)) return shape(insns[0]!) + "; " + shape(insns[1]!);
  return shape(insns[insns.length - 1] ?? "");
}

function shape(line: string): string {
  return line
    .replace(/\bv\d+\./g, "v.")
    .replace(/\b(x|w)(\d+|zr)\b/g, "$1")
    .replace(/\b([bhsdq])\d+\b/g, "$1")
    .replace(/\[\d+\]/g, "[i]")
    .replace(/#-?[0-9a-fx.]+/g, "#i")
    .replace(/\. \+ -?\d+/g, "label").replace(/\b1f\b/g, "label")
    .replace(/, (eq|ne|cs|cc|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al|nv)$/, ", cond")
    .replace(/^b\.\w+/, "b.cond");
}

/** unitKey of a single instruction line. */
export const lineKey = (line: string): string => shape(line);
