/**
 * A batch: the queued blocks translated together into one module (engine.ts on the vCPU's thread, or
 * compile-worker.ts beside it). Each block may tail-call any block of the batch on its page (same generation);
 * a straight run the block length or an untranslatable instruction cuts goes on in a continuation that joins
 * the batch.
 */
import { Translator, BLOCK_LOCALS, MAX_BLOCK, type ChainLookup } from "./translate.js";
import { moduleBytes, I32, type FuncBody, type FuncType } from "./wasm.js";

const BLOCK_TYPE: FuncType = { params: [I32, I32, I32, I32, I32, I32], results: [I32] };
export const TYPES: FuncType[] = [
  BLOCK_TYPE, // 0: block
  { params: [I32, I32, I32], results: [I32] }, // 1: rd(lo, hi, size)
  { params: [I32, I32, I32, I32, I32], results: [I32] }, // 2: wr(lo, hi, size, vlo, vhi); size 64: DC ZVA
];
export const IMPORTS = [{ name: "rd", type: 1 }, { name: "wr", type: 2 }];
export { BLOCK_TYPE };

/** Blocks per module when the queue is flushed for size; the most a batch grows to with continuations. */
export const BATCH = Number(process.env.XENO_JIT_BATCH ?? 64), MAX_PENDING = 4 * BATCH;

/**
 * XENO_JIT_NAMES=1: each block's function is named b<RAM address>_<instructions> in the module's name section,
 * so a `node --cpu-prof` profile shows which guest block the time went to.
 */
const NAMES = typeof process !== "undefined" && (process.env.XENO_JIT_NAMES ?? "") !== "";

/** A queued block: translated when the batch is, so that it can chain to every block of the batch. */
export interface Pending {
  page: number; slot: number; gen: number; words: Int32Array; base: number; n: number; body: FuncBody | null;
  /** The slot of the untranslatable instruction that ended the block, or -1. */
  end: number;
}

/** The memory a batch's module imports. */
export interface MemLimits { pages: number; maxPages: number; shared: boolean }

/** Whether the instruction at words[at] can start a block. */
export function startsBlock(t: Translator, words: Int32Array, at: number): boolean {
  return t.translate(words, at, 1, () => -1) !== 0;
}

/**
 * Translates every block of `p` (growing it with continuations); `known(page, slot)` says whether a block
 * starts there already (compiled, or on its way), so no continuation is queued for it.
 */
export function translateBatch(t: Translator, p: Pending[], known: (page: number, slot: number) => boolean): void {
  for (let at = 0; at < p.length; at++) {
    const e = p[at];
    const chain: ChainLookup = (s) => {
      for (let k = 0; k < p.length; k++) if (p[k].page === e.page && p[k].slot === s && p[k].gen === e.gen) return IMPORTS.length + k;
      return -1;
    };
    const max = Math.min(MAX_BLOCK, 1024 - e.slot);
    e.n = t.translate(e.words, e.base + e.slot, max, chain);
    e.end = t.untranslatableAt >= 0 ? e.slot + t.untranslatableAt : -1;
    // Not translatable (its page changed since it was queued: it will be dropped): a block that returns.
    let code = e.n === 0 ? new Uint8Array([0x20, 4, 0x0b]) : t.c.buf.slice(0, t.c.len);
    // A straight run longer than a block, or one an untranslatable instruction interrupts, goes on where this
    // block stops: that code is as hot as this block, so it joins the batch now (rather than after HOT more
    // entries there), and a block cut at the length limit is translated again to chain to it.
    if (e.n > 0 && !t.branched && p.length < MAX_PENDING) {
      const next = e.end >= 0 ? e.end + 1 : e.slot + e.n;
      const have = next >= 1024 || known(e.page, next) || p.some((q) => q.page === e.page && q.slot === next && q.gen === e.gen);
      if (!have && startsBlock(t, e.words, e.base + next)) {
        p.push({ page: e.page, slot: next, gen: e.gen, words: e.words, base: e.base, n: 0, body: null, end: -1 });
        if (e.end < 0) {
          e.n = t.translate(e.words, e.base + e.slot, max, chain);
          code = t.c.buf.slice(0, t.c.len);
        }
      }
    }
    e.body = { type: 0, locals: BLOCK_LOCALS, code };
  }
}

/** The module of a translated batch: function k (export "k") is block p[k]. */
export function batchModule(p: readonly Pending[], mem: MemLimits): Uint8Array<ArrayBuffer> {
  const names = NAMES ? p.map((e) => `b${(e.page * 4096 + e.slot * 4).toString(16)}_${e.n}`) : undefined;
  return moduleBytes(TYPES, IMPORTS, mem, p.map((e) => e.body!), -1, names);
}

/**
 * A translated batch's blocks as (page, slot, instructions, end) per function, and the words each was translated
 * from: its instructions and the one after (where it stopped).
 * The code cache keeps them with the module (compile-worker.ts).
 */
export function blockWords(p: readonly Pending[]): { blocks: Int32Array; words: Int32Array[] } {
  const blocks = new Int32Array(4 * p.length), words: Int32Array[] = [];
  p.forEach((e, k) => {
    blocks[4 * k] = e.page; blocks[4 * k + 1] = e.slot; blocks[4 * k + 2] = e.n; blocks[4 * k + 3] = e.end;
    words.push(e.words.slice(e.base + e.slot, e.base + Math.min(1024, e.slot + e.n + 1)));
  });
  return { blocks, words };
}

export { Translator };
