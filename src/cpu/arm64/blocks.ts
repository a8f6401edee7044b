/**
 * Block compilation: a straight run of hot instructions on one page is turned into a single JavaScript
 * function that calls each instruction's handler with its instruction word as a constant. Every call site in
 * the generated function always calls the same handler with the same word, so V8 can inline the handler and
 * fold the field extraction away — the interpreter's dispatch and decode costs disappear on hot code, while
 * the semantics stay exactly the handlers' (nothing is re-implemented here).
 *
 * Contract with Cpu.run: the block is entered with PC = the first instruction; before each further
 * instruction it advances PC by 4 (so a fault or exception sees the right PC); it returns the number of
 * instructions executed, stopping right after one that set `jumped`. A block never crosses its page.
 */
import type { Handler } from "./decoder.js";
import type { Cpu } from "./cpu.js";
import { PC2 } from "./state.js";

export type BlockFn = (c: Cpu) => number;

/** Longest block, in instructions. */
export const MAX_BLOCK = 48;

/**
 * True for instructions that end a block: the branch/exception/system class (op0 = 0b101x: B, BL, B.cond,
 * CBZ, TBZ, BR, RET, SVC, HVC, MSR, MRS, hints, barriers, SYS). Most of them change PC or context, and
 * compiling past them would only waste work.
 */
export function endsBlock(w: number): boolean { return ((w >>> 26) & 7) === 5; }

/**
 * Compiles the instructions `words[0..n)` with their handlers. The generated code only references the
 * handlers (passed as parameters) and integer constants.
 */
export function compileBlock(words: ArrayLike<number>, handlers: Handler[], n: number): BlockFn {
  const params: string[] = [];
  let body = "const r = c.r;\n";
  for (let k = 0; k < n; k++) {
    params.push("h" + k);
    body += `h${k}(c, ${words[k] | 0}); if (c.jumped !== 0) return ${k + 1};\n`;
    body += `r[${PC2}] = (r[${PC2}] + 4) | 0;\n`;
  }
  body += `return ${n};`;
  // eslint-disable-next-line no-new-func -- the JIT: code generated from trusted templates and integers only
  const factory = new Function(...params, `return function block(c) {\n${body}\n};`) as (...h: Handler[]) => BlockFn;
  return factory(...handlers.slice(0, n));
}
