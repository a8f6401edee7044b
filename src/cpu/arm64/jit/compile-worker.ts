/**
 * The compile worker (compiler.ts): translates each batch from the words in its engine's memory (batch.ts, as
 * the vCPU's thread would), compiles the module, posts it (or the error) back on the port it was given, then
 * bumps the shared counter the vCPU's thread polls. Batches are done in the order they came.
 *
 * Clients: the thread that started the worker (workerData), and any thread whose port the parent hands over later
 * (`{ port, posted }` on the parent port: the hypervisor runs one compile worker for the process and gives every
 * domain thread a port to it, compiler.ts compileWorkerClient).
 *
 * Engines that compile on their own thread (the default: JitEngine.flush) use the cache too: they ask it for a
 * batch's blocks first (a `lookup` job: answered from kept modules only, nothing translated) and offer what they
 * then compiled themselves (OfferJob: the module, its blocks, and the words each was translated from).
 *
 * The code cache (shared compiled modules): every module compiled here is kept, with the guest words each of its
 * blocks was translated from, for as long as some engine has one of its blocks installed (engines release it,
 * compiler.ts). A batch's queued block at RAM word `slot` of page `page` is served from a kept module with a
 * block at that same place (same memory type and fence setting, i.e. the same translation) when every block of
 * that module on that page was translated from exactly the words the asking domain's memory holds there now —
 * the words are compared, not a hash — and then the module's other blocks of the page come with it (they may
 * tail-call each other). The engine instantiates the same WebAssembly.Module over its own memory (V8 shares the
 * machine code between threads), so nothing is translated or compiled for those blocks. The words are compared
 * after the block was queued, so a write to the page since (the only way they could differ from what the block
 * was queued for) changed the page's generation and the engine drops the block at install, as for any batch.
 * Blocks are translated from a private copy of their page here, so a kept module's words are exactly what its
 * code was made from even if the guest wrote the page meanwhile.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
import type { MemLimits, Pending } from "./batch.js";
import type { CompileJob, CompileResult, ForgetJob, OfferJob, ReleaseJob, SharedUse } from "./compiler.js";

/**
 * The translator and its decoder (the emulator's CPU modules), loaded on the first job that translates: a
 * hypervisor whose engines compile on their own threads (the default) only asks this worker for kept modules and
 * offers its own, and the isolate stays small (~10 MiB of V8 heap less, bench/density).
 */
let batch: typeof import("./batch.js") | null = null;
let translator: import("./batch.js").Translator | null = null;
/** Jobs that came while the translator loads, in order (per client port, results must keep their order). */
let loading: Promise<void> | null = null;
function loadTranslator(): Promise<void> {
  loading ??= (async () => {
    const [b, cpu] = await Promise.all([import("./batch.js"), import("../cpu.js")]);
    translator = new b.Translator(cpu.sharedDecoder());
    batch = b;
  })();
  return loading;
}

/** A module kept for sharing: its blocks as (page, slot, instructions, end) per function, and their words. */
interface Kept {
  id: number; module: WebAssembly.Module; size: number; layout: string;
  blocks: Int32Array; words: Int32Array[];
  /** Engines (client · 2^20 + engine) holding one of its blocks. */
  users: Set<number>;
}
const kept = new Map<number, Kept>();
/** Per memory layout (`layoutOf`): RAM word position (page · 1024 + slot) → kept modules with a block there. */
const index = new Map<string, Map<number, Kept[]>>();
/** Kept modules' ids, shared with the clients (which number the modules they offer from the same counter). */
const start = workerData as { port: MessagePort; posted: Int32Array; ids: Int32Array };
const ids = start.ids;

/** What a module's code depends on besides the guest words: the memory it imports and the fence setting. */
function layoutOf(mem: MemLimits, fences: boolean): string { return `${mem.pages}/${mem.maxPages}/${mem.shared ? 1 : 0}/${fences ? 1 : 0}`; }

function keep(layout: string, module: WebAssembly.Module, size: number, p: readonly Pending[], user: number): number {
  const b = batch!.blockWords(p);
  return keepBlocks(Atomics.add(ids, 0, 1) + 1, layout, module, size, b.blocks, b.words, user);
}

function keepBlocks(id: number, layout: string, module: WebAssembly.Module, size: number, blocks: Int32Array,
  words: Int32Array[], user: number): number {
  const k: Kept = { id, module, size, layout, blocks, words, users: new Set([user]) };
  kept.set(k.id, k);
  let at = index.get(layout);
  if (at === undefined) index.set(layout, at = new Map());
  for (let j = 0; j < words.length; j++) {
    if (blocks[4 * j + 2] === 0) continue;
    const pos = blocks[4 * j] * 1024 + blocks[4 * j + 1];
    const list = at.get(pos);
    if (list === undefined) at.set(pos, [k]); else list.push(k);
  }
  return k.id;
}

function unkeep(k: Kept): void {
  kept.delete(k.id);
  const at = index.get(k.layout)!;
  for (let j = 0; j < k.words.length; j++) {
    const pos = k.blocks[4 * j] * 1024 + k.blocks[4 * j + 1], list = at.get(pos);
    if (list === undefined) continue;
    const i = list.indexOf(k);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) at.delete(pos);
  }
}

function release(user: number, id: number): void {
  const k = kept.get(id);
  if (k === undefined) return;
  k.users.delete(user);
  if (k.users.size === 0) unkeep(k);
}

/** Whether every block of `k` on `page` was translated from the words `mem` holds there now (page at `base`). */
function sameWords(k: Kept, page: number, mem: Int32Array, base: number): boolean {
  for (let j = 0; j < k.words.length; j++) {
    if (k.blocks[4 * j] !== page) continue;
    const w = k.words[j], at = base + k.blocks[4 * j + 1];
    for (let i = 0; i < w.length; i++) if (mem[at + i] !== w[i]) return false;
  }
  return true;
}

let nextClient = 0;

function attach(port: MessagePort, posted: Int32Array): void {
  const client = nextClient++;
  /** Per engine: its memory as words, and the memory type its modules import. */
  const engines = new Map<number, { words: Int32Array; mem: MemLimits }>();
  port.on("message", (m: CompileJob | ForgetJob | ReleaseJob | OfferJob) => {
    if ("forget" in m) {
      engines.delete(m.forget);
      const user = client * 2 ** 20 + m.forget;
      for (const k of [...kept.values()]) if (k.users.has(user)) release(user, k.id);
      return;
    }
    if ("release" in m) { release(client * 2 ** 20 + m.release, m.mid); return; }
    if ("offer" in m) {
      keepBlocks(m.offer, layoutOf(m.mem, m.fences), m.module, m.size, m.blocks, m.words, client * 2 ** 20 + m.engine);
      return;
    }
    if (m.memory !== undefined) engines.set(m.engine, { words: new Int32Array(m.memory.buffer), mem: m.mem! });
    const answer = (): void => {
      port.postMessage(job(m, engines.get(m.engine), client * 2 ** 20 + m.engine));
      Atomics.add(posted, 0, 1);
      Atomics.notify(posted, 0); // an engine may wait for a lookup's answer (JitEngine.flush)
    };
    // A job that translates waits for the translator, and so does everything after it from this client.
    if (m.lookup === true && queue.length === 0) { answer(); return; }
    queue.push(answer);
    if (queue.length === 1) void loadTranslator().then(() => { for (const f of queue) f(); queue.length = 0; });
  });
  const queue: (() => void)[] = [];
  // The client's thread ended (its domains gone or moved): whatever its engines held is released, or the kept
  // modules — and their machine code — would stay here for the life of the process.
  port.on("close", () => {
    for (const k of [...kept.values()]) for (const u of [...k.users]) if (Math.floor(u / 2 ** 20) === client) release(u, k.id);
  });
  Atomics.store(posted, 1, 1); // loaded: jobs are taken from now on
}

function job(m: CompileJob, e: { words: Int32Array; mem: MemLimits } | undefined, user: number): CompileResult {
  let module: WebAssembly.Module | null = null, error: string | null = null, blocks = new Int32Array(0), size = 0, mid = -1;
  const shared: SharedUse[] = [];
  try {
    if (e === undefined) throw new Error(`engine ${m.engine}: no memory`);
    const j = m.job, n = j[0], kn = j.subarray(1 + 4 * n);
    const layout = layoutOf(e.mem, m.fences), at = index.get(layout);
    const queued = new Set<number>(), taken = new Set<number>(), known = new Set<number>();
    for (let k = 0; k < n; k++) queued.add(j[1 + 4 * k] * 1024 + j[2 + 4 * k]);
    for (let k = 0; k < kn.length; k += 2) known.add(kn[k] * 1024 + kn[k + 1]);
    const use = new Map<number, { k: Kept; blocks: number[] }>();
    const copies = new Map<number, Int32Array>();
    const p: Pending[] = [];
    for (let q = 0; q < n; q++) {
      const page = j[1 + 4 * q], slot = j[2 + 4 * q], gen = j[3 + 4 * q], base = j[4 + 4 * q], pos = page * 1024 + slot;
      if (taken.has(pos)) continue;
      const hit = at?.get(pos)?.find((k) => sameWords(k, page, e.words, base));
      if (hit === undefined) {
        // Translated from a copy of the page (see the header).
        let copy = copies.get(page);
        if (copy === undefined) copies.set(page, copy = e.words.slice(base, base + 1024));
        p.push({ page, slot, gen, words: copy, base: 0, n: 0, body: null, end: -1 });
        continue;
      }
      let u = use.get(hit.id);
      if (u === undefined) { use.set(hit.id, u = { k: hit, blocks: [] }); hit.users.add(user); }
      for (let b = 0; b < hit.words.length; b++) {
        if (hit.blocks[4 * b] !== page) continue;
        const bpos = page * 1024 + hit.blocks[4 * b + 1];
        if (taken.has(bpos) || (known.has(bpos) && !queued.has(bpos))) continue;
        taken.add(bpos);
        u.blocks.push(page, hit.blocks[4 * b + 1], gen, hit.blocks[4 * b + 2], hit.blocks[4 * b + 3], b);
      }
    }
    for (const u of use.values()) shared.push({ id: u.k.id, module: u.k.module, blocks: Int32Array.from(u.blocks), size: u.k.size });
    if (p.length > 0 && m.lookup !== true) {
      const t = translator!, b = batch!;
      t.fences = m.fences;
      b.translateBatch(t, p, (page, slot) => known.has(page * 1024 + slot) || taken.has(page * 1024 + slot));
      const bytes = b.batchModule(p, e.mem);
      size = bytes.length;
      module = new WebAssembly.Module(bytes);
      blocks = Int32Array.from(p.flatMap((b) => [b.page, b.slot, b.gen, b.n, b.end]));
      mid = keep(layout, module, size, p, user);
    }
  } catch (err) {
    error = (err as Error).message;
    module = null;
  }
  return { engine: m.engine, id: m.id, module, blocks, error, size, mid, shared };
}

attach(start.port, start.posted);
parentPort?.on("message", (m: { port: MessagePort; posted: SharedArrayBuffer }) => attach(m.port, new Int32Array(m.posted)));
