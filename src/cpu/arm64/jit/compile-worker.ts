/**
 * The compile worker (compiler.ts): translates each batch from the words in its engine's memory (batch.ts, as
 * the vCPU's thread would), compiles the module, posts it (or the error) back on the port it was given, then
 * bumps the shared counter the vCPU's thread polls. Batches are done in the order they came.
 */
import { workerData } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
import { Translator, batchModule, translateBatch, type MemLimits, type Pending } from "./batch.js";
import { sharedDecoder } from "../cpu.js";
import type { CompileJob, ForgetJob } from "./compiler.js";

const { port, posted } = workerData as { port: MessagePort; posted: Int32Array };
const translator = new Translator(sharedDecoder());
/** Per engine: its memory as words, and the memory type its modules import. */
const engines = new Map<number, { words: Int32Array; mem: MemLimits }>();

port.on("message", (m: CompileJob | ForgetJob) => {
  if ("forget" in m) { engines.delete(m.forget); return; }
  if (m.memory !== undefined) engines.set(m.engine, { words: new Int32Array(m.memory.buffer), mem: m.mem! });
  let module: WebAssembly.Module | null = null, error: string | null = null, blocks = new Int32Array(0), size = 0;
  try {
    const e = engines.get(m.engine);
    if (e === undefined) throw new Error(`engine ${m.engine}: no memory`);
    const j = m.job, n = j[0];
    const p: Pending[] = [];
    for (let k = 0; k < n; k++) {
      p.push({ page: j[1 + 4 * k], slot: j[2 + 4 * k], gen: j[3 + 4 * k], words: e.words, base: j[4 + 4 * k], n: 0, body: null, end: -1 });
    }
    const kn = j.subarray(1 + 4 * n);
    translator.fences = m.fences;
    translateBatch(translator, p, (page, slot) => {
      for (let k = 0; k < kn.length; k += 2) if (kn[k] === page && kn[k + 1] === slot) return true;
      return false;
    });
    const bytes = batchModule(p, e.mem);
    size = bytes.length;
    module = new WebAssembly.Module(bytes);
    blocks = Int32Array.from(p.flatMap((b) => [b.page, b.slot, b.gen, b.n, b.end]));
  } catch (e) {
    error = (e as Error).message;
  }
  port.postMessage({ engine: m.engine, id: m.id, module, blocks, error, size });
  Atomics.add(posted, 0, 1);
});
Atomics.store(posted, 1, 1); // loaded: jobs are taken from now on
