/**
 * Assembly harness for the random-sequence oracle: turns generated sequences into one freestanding static
 * AArch64 program (no libc: `-nostdlib -static`), so both emulators run exactly the same bytes.
 *
 * Per sequence:  x29 = &input record; bl load_in(_mem); <sequence>; bl dump(_mem)
 *   load_in      (for memory sequences, first resets the 512-byte scratch window from mem_init), loads q0..q7,
 *                NZCV, x28 = window middle, x0..x27.
 *   dump         writes one binary output record to stdout with write(2) — one record per sequence so that if an
 *                emulator dies the records before it are intact (see RecordLayout in compare.ts).
 * SP holds the output-record address throughout (generated code only reads SP).
 * argv[1], if present, is the decimal index of the first sequence to run (restart after an emulator died).
 *
 * Output is raw binary rather than hex: formatting in guest code would cost more interpreted instructions than
 * the sequences themselves; the test formats values as hex when it reports.
 */
import { NUM_V, NUM_X_INPUTS, WINDOW_HALF, type Sequence } from "../random-gen.js";

/** Input record: x0..x27, nzcv, sequence index, q0..q7. */
export const IN_NZCV = 8 * NUM_X_INPUTS; // 224
export const IN_INDEX = IN_NZCV + 8; // 232
export const IN_V = IN_INDEX + 8; // 240
export const IN_SIZE = IN_V + 16 * NUM_V; // 368

/** Output record: header (magic << 32 | index), x0..x28, nzcv, pad, q0..q7, [window]. */
export const OUT_X = 8;
export const OUT_NZCV = OUT_X + 8 * 29; // 240
export const OUT_V = OUT_NZCV + 16; // 256
export const OUT_WINDOW = OUT_V + 16 * NUM_V; // 384
export const OUT_SIZE = OUT_WINDOW; // 384
export const OUT_SIZE_MEM = OUT_WINDOW + 2 * WINDOW_HALF; // 896
export const MAGIC = 0x58454e4f; // "XENO"

const quad = (v: bigint) => "0x" + BigInt.asUintN(64, v).toString(16);
const adrl = (reg: string, sym: string) => [`adrp ${reg}, ${sym}`, `add ${reg}, ${reg}, :lo12:${sym}`];

function dumpBody(withMem: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < 28; i += 2) out.push(`stp x${i}, x${i + 1}, [sp, #${OUT_X + 8 * i}]`);
  out.push(`str x28, [sp, #${OUT_X + 8 * 28}]`);
  out.push("mrs x0, nzcv", `str x0, [sp, #${OUT_NZCV}]`, `str xzr, [sp, #${OUT_NZCV + 8}]`);
  out.push(`ldr x0, [x29, #${IN_INDEX}]`, `movz x1, #${MAGIC >>> 16}, lsl #48`, `movk x1, #${MAGIC & 0xffff}, lsl #32`);
  out.push("orr x0, x0, x1", "str x0, [sp]");
  for (let i = 0; i < NUM_V; i += 2) out.push(`stp q${i}, q${i + 1}, [sp, #${OUT_V + 16 * i}]`);
  if (withMem) {
    out.push(...adrl("x0", "membuf"), "add x1, sp, #" + OUT_WINDOW);
    for (let i = 0; i < (2 * WINDOW_HALF) / 16; i++) out.push("ldp x2, x3, [x0], #16", "stp x2, x3, [x1], #16");
  }
  out.push(`mov x2, #${withMem ? OUT_SIZE_MEM : OUT_SIZE}`, "mov x0, #1", "mov x1, sp", "mov x8, #64", "svc #0", "ret");
  return out;
}

function loadBody(): string[] {
  const out: string[] = [];
  for (let i = 0; i < NUM_V; i += 2) out.push(`ldp q${i}, q${i + 1}, [x29, #${IN_V + 16 * i}]`);
  out.push(`ldr x0, [x29, #${IN_NZCV}]`, "msr nzcv, x0", "msr fpcr, xzr"); // sequences may change FPCR
  out.push(...adrl("x28", "membuf"), `add x28, x28, #${WINDOW_HALF}`);
  for (let i = 0; i < NUM_X_INPUTS; i += 2) out.push(`ldp x${i}, x${i + 1}, [x29, #${8 * i}]`);
  out.push("ret");
  return out;
}

/** The whole program for `seqs` (their `index` fields are the indices used in records and argv[1]). */
export function emitProgram(seqs: readonly Sequence[], window: Uint8Array): string {
  const L: string[] = [];
  const ins = (xs: string[]) => { for (const x of xs) L.push("\t" + x); };
  L.push("\t.arch armv8-a", "\t.text", "\t.global _start", "_start:");
  // Parse argv[1] (decimal) into x19 = first local sequence to run.
  ins(["mov x19, #0", "ldr x0, [sp]", "cmp x0, #2", "b.lt 2f", "ldr x1, [sp, #16]", "mov x3, #10"]);
  L.push("1:");
  ins(["ldrb w2, [x1], #1", "cbz w2, 2f", "sub w2, w2, #48", "madd x19, x19, x3, x2", "b 1b"]);
  L.push("2:");
  ins([`movz x3, #${seqs.length & 0xffff}`, `movk x3, #${seqs.length >>> 16}, lsl #16`, "cmp x19, x3", "csel x19, x19, x3, ls"]);
  ins([...adrl("x0", "outrec"), "mov sp, x0", "msr fpcr, xzr"]);
  ins([...adrl("x1", "seq_table"), "ldr x2, [x1, x19, lsl #3]", "br x2"]);
  L.push("load_in_mem:");
  ins([...adrl("x0", "mem_init"), ...adrl("x1", "membuf")]);
  for (let i = 0; i < (2 * WINDOW_HALF) / 16; i++) ins(["ldp x2, x3, [x0], #16", "stp x2, x3, [x1], #16"]);
  L.push("load_in:");
  ins(loadBody());
  L.push("dump:");
  ins(dumpBody(false));
  L.push("dump_mem:");
  ins(dumpBody(true));
  seqs.forEach((s, i) => {
    L.push(`seq_${i}:`);
    ins([...adrl("x29", `in_${i}`), s.mem ? "bl load_in_mem" : "bl load_in"]);
    L.push(`g_${i}:`); // start of the generated code: each non-label line is one 4-byte instruction (screen.ts)
    for (const u of s.units) for (const line of u.lines) L.push(line.endsWith(":") ? line : "\t" + line);
    L.push(`e_${i}:`);
    ins([s.mem ? "bl dump_mem" : "bl dump"]);
  });
  L.push("seq_end:");
  ins(["mov x0, #0", "mov x8, #93", "svc #0"]);

  L.push("\t.data", "\t.balign 16", "seq_table:");
  for (let i = 0; i < seqs.length; i++) L.push(`\t.quad seq_${i}`);
  L.push("\t.quad seq_end", "\t.balign 16", "mem_init:");
  for (let i = 0; i < window.length; i += 16) L.push("\t.byte " + Array.from(window.subarray(i, i + 16)).join(","));
  seqs.forEach((s, i) => {
    const q = [...s.x, BigInt(s.nzcv), BigInt(s.index), ...s.v].map(quad);
    L.push("\t.balign 16", `in_${i}:`, "\t.quad " + q.join(","));
  });
  L.push("\t.bss", "\t.balign 16", "membuf:", `\t.skip ${2 * WINDOW_HALF}`, "\t.balign 16", "outrec:", `\t.skip ${OUT_SIZE_MEM}`);
  return L.join("\n") + "\n";
}
