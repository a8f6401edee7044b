/**
 * Translating and compiling off the vCPU's thread. On the vCPU's thread, `new WebAssembly.Module` of a batch
 * waited ~10 % of a boot (V8 compiles on its helper threads meanwhile), and translation ran mostly before V8
 * had optimized the translator (~10–18 µs per guest instruction cold, 0.7 µs warm). A worker thread does both
 * here while the vCPU goes on interpreting, and posts the compiled module back (a WebAssembly.Module crosses
 * threads without being compiled again). The vCPU's thread instantiates it over its memory and imports.
 *
 * The threads running vCPUs never return to their event loop (they loop in Cpu.run, blocking in Atomics.wait),
 * so results are not delivered as events: the worker bumps a counter in shared memory after each result, and
 * the vCPU's thread takes the results with receiveMessageOnPort when the counter has moved — one plain read of
 * a shared word per poll.
 *
 * One compile worker per thread that runs compiled code (a domain worker hosts several domains' engines: they
 * share it), started when the first engine there turns on asynchronous compilation — or, in the hypervisor, one
 * for the whole process, each domain thread holding a port to it (compileWorkerClient, useCompileWorker); until
 * it has loaded, engines compile on their own thread. The worker keeps compiled modules for sharing between
 * engines (compile-worker.ts, the code cache). Results carry the engine's id; `take` hands each engine
 * its own, in submission order (one worker compiles in order).
 */
import type { Worker, MessagePort } from "node:worker_threads";
import type * as WorkerThreads from "node:worker_threads";
import { createRequire } from "node:module";

import type { MemLimits } from "./batch.js";

/** node:worker_threads, loaded when a worker or channel is first made: loading it costs ~13 ms of each start of
 * a `xeno run-user`, which never starts the compile worker unless XENO_JIT_ASYNC=1. */
let wt: typeof WorkerThreads | null = null;
const threads = (): typeof WorkerThreads => (wt ??= createRequire(import.meta.url)("node:worker_threads") as typeof WorkerThreads);

/**
 * A batch for the worker, one Int32Array: [n, then n × (page, slot, generation, RAM word index of the page),
 * then (page, slot) pairs where blocks started on those pages already]. The first job of an engine also
 * carries its memory (shared) and the memory type its modules import.
 */
export interface CompileJob {
  engine: number; id: number; fences: boolean; job: Int32Array<ArrayBuffer>; memory?: WebAssembly.Memory; mem?: MemLimits;
  /** Only serve what the code cache has (compile-worker.ts); translate nothing. */
  lookup?: boolean;
}
/**
 * A module an engine compiled on its own thread, for the worker's code cache: its id (from the shared counter),
 * blocks as (page, slot, instructions, end) per function and the words each was translated from.
 */
export interface OfferJob {
  offer: number; engine: number; mem: MemLimits; fences: boolean; module: WebAssembly.Module; size: number;
  blocks: Int32Array; words: Int32Array[];
}
/** Tells the worker to drop what it holds for an engine (its memory). */
export interface ForgetJob { forget: number }
/** Tells the worker an engine no longer holds any block of kept module `mid` (compile-worker.ts, the code cache). */
export interface ReleaseJob { release: number; mid: number }
/**
 * A kept module a batch's blocks are served from (compile-worker.ts): its id, the module, and the blocks to
 * install as (page, slot, generation, instructions, end, function index) sextuples.
 */
export interface SharedUse { id: number; module: WebAssembly.Module; blocks: Int32Array; size: number }

/**
 * A result the worker posted for batch `id` of engine `engine`: the module, whose function k is block k of
 * `blocks` as (page, slot, generation, instructions, end) quintuples (continuations included; end: the slot of
 * the untranslatable instruction that ended it, or -1) and its size in bytes, or why it failed; `mid`: its id in
 * the worker's code cache (-1: none); `shared`: blocks served from modules compiled before (for this engine or
 * another), each to be released when the engine no longer holds a block of it.
 */
export interface CompileResult {
  engine: number; id: number; module: WebAssembly.Module | null; blocks: Int32Array; error: string | null; size: number;
  mid: number; shared: SharedUse[];
}

class CompileWorker {
  private readonly port: MessagePort;
  /** [0]: results posted by the worker so far; [1]: 1 once the worker has loaded (it takes jobs then). */
  private readonly posted: Int32Array;
  /** The code cache's module ids (shared with the worker and its other clients). */
  private readonly ids: Int32Array;
  private seen = 0;
  /** Results taken from the port for engines that have not collected them yet. */
  private readonly waiting = new Map<number, CompileResult[]>();

  /** A worker of this thread's own, or (`client`) a port to one another thread started (compileWorkerClient). */
  constructor(client?: CompileClient) {
    if (client !== undefined) {
      this.port = client.port;
      this.posted = new Int32Array(client.posted);
      this.ids = new Int32Array(client.ids);
      this.port.unref();
      return;
    }
    const { port1, port2 } = new (threads().MessageChannel)();
    this.posted = new Int32Array(new SharedArrayBuffer(8));
    this.ids = new Int32Array(new SharedArrayBuffer(4));
    const w = new (threads().Worker)(WORKER_URL, { workerData: { port: port2, posted: this.posted, ids: this.ids }, transferList: [port2] });
    // Neither keeps the process alive: a runner that is done exits with batches in flight.
    w.unref();
    port1.unref();
    this.port = port1;
  }

  /**
   * Whether the worker has loaded: starting one takes ~50–100 ms (a new isolate importing the translator), during
   * which engines compile on their own thread rather than let hot code wait.
   */
  get ready(): boolean { return this.posted[1] === 1; }

  /** Engines whose memory the worker has. */
  private readonly known = new Set<number>();

  submit(engine: number, id: number, memory: WebAssembly.Memory, mem: MemLimits, fences: boolean, job: Int32Array<ArrayBuffer>,
    lookup = false): void {
    const m: CompileJob = { engine, id, fences, job };
    if (lookup) m.lookup = true;
    if (!this.known.has(engine)) { this.known.add(engine); m.memory = memory; m.mem = mem; }
    this.port.postMessage(m, [job.buffer]);
  }

  /** The next result for `engine`, or null if none has arrived. */
  take(engine: number): CompileResult | null {
    const q = this.waiting.get(engine);
    if (q !== undefined && q.length > 0) return q.shift()!;
    if (this.posted[0] === this.seen) return null;
    for (;;) {
      const m = threads().receiveMessageOnPort(this.port);
      if (m === undefined) break;
      this.seen++;
      const r = m.message as CompileResult;
      if (r.engine === engine) {
        // Anything after it stays queued for the next take (results of one engine arrive in order).
        this.drainFor(engine);
        return r;
      }
      let other = this.waiting.get(r.engine);
      if (other === undefined) this.waiting.set(r.engine, other = []);
      other.push(r);
    }
    return null;
  }

  private drainFor(engine: number): void {
    for (;;) {
      const m = threads().receiveMessageOnPort(this.port);
      if (m === undefined) return;
      this.seen++;
      const r = m.message as CompileResult;
      let q = this.waiting.get(r.engine);
      if (q === undefined) this.waiting.set(r.engine, q = []);
      q.push(r);
      if (r.engine === engine) return;
    }
  }

  /**
   * Waits up to `ms` for the answer to `engine`'s job `id` (a lookup: JitEngine.flush); null if it did not come
   * in time (it is released when it does). Answers to earlier jobs that came late are released here.
   */
  await(engine: number, id: number, ms: number): CompileResult | null {
    const end = performance.now() + ms;
    for (;;) {
      const seen = this.posted[0];
      for (let r = this.take(engine); r !== null; r = this.take(engine)) {
        if (r.id === id) return r;
        this.releaseResult(r);
      }
      const left = end - performance.now();
      if (left <= 0) return null;
      Atomics.wait(this.posted, 0, seen, left);
    }
  }

  /** Offers a module compiled on the engine's thread to the code cache; returns its id there. */
  offer(m: Omit<OfferJob, "offer">): number {
    const id = Atomics.add(this.ids, 0, 1) + 1;
    this.port.postMessage({ ...m, offer: id } satisfies OfferJob);
    return id;
  }

  /** Engine `engine` holds no block of the worker's kept module `mid` any more (see ReleaseJob). */
  release(engine: number, mid: number): void {
    if (mid >= 0) this.port.postMessage({ release: engine, mid } satisfies ReleaseJob);
  }

  /** Releases every kept module a result names (one the engine will not install). */
  releaseResult(r: CompileResult): void {
    this.release(r.engine, r.mid);
    for (const s of r.shared) this.release(r.engine, s.id);
  }

  /** Drops what is kept for an engine that is gone, here and in the worker (its memory). */
  forget(engine: number): void {
    this.waiting.delete(engine);
    if (this.known.delete(engine)) this.port.postMessage({ forget: engine } satisfies ForgetJob);
  }
}

const WORKER_URL = new URL("./compile-worker.js", import.meta.url);

let worker: CompileWorker | null = null;
let workerFailed = false;
let nextEngine = 1;
/** Results kept for an engine that was collected with batches in flight are dropped with it. */
const gone = new FinalizationRegistry<number>((id) => worker?.forget(id));

/** A new engine id for submit/take; `owner` is the engine (its results are dropped when it is collected). */
export function compilerEngineId(owner: object): number {
  const id = nextEngine++;
  gone.register(owner, id);
  return id;
}

/** This thread's compile worker, created on first use; null where workers cannot be started. */
export function compileWorker(): CompileWorker | null {
  if (worker !== null || workerFailed) return worker;
  try {
    worker = new CompileWorker();
  } catch (e) {
    workerFailed = true;
    console.error(`xeno: no compile worker (${(e as Error).message}); modules are compiled on the vCPU's thread`);
  }
  return worker;
}

/** The process's compile worker started by compileWorkerClient (the hypervisor's main thread). */
let hub: Worker | null = null;

/**
 * A port to this process's one compile worker for another thread (started here on first use): the hypervisor
 * gives one to every domain thread (useCompileWorker there), so that all domains compile on one worker — one
 * isolate instead of one per domain thread — and share its code cache (compile-worker.ts).
 */
export function compileWorkerClient(): CompileClient {
  const { port1, port2 } = new (threads().MessageChannel)();
  const posted = new SharedArrayBuffer(8);
  if (hub === null) {
    hubIds = new SharedArrayBuffer(4);
    hub = new (threads().Worker)(WORKER_URL, { workerData: { port: port2, posted: new Int32Array(posted), ids: new Int32Array(hubIds) }, transferList: [port2] });
    hub.unref();
  } else hub.postMessage({ port: port2, posted }, [port2]);
  return { port: port1, posted, ids: hubIds! };
}
let hubIds: SharedArrayBuffer | null = null;

/** A port to a compile worker another thread started, its result counter and the code cache's id counter. */
export interface CompileClient { port: MessagePort; posted: SharedArrayBuffer; ids: SharedArrayBuffer }

/** Makes this thread's engines use the compile worker behind `client` (compileWorkerClient) instead of their own. */
export function useCompileWorker(client: CompileClient): void {
  if (worker === null) worker = new CompileWorker(client);
}

/** This thread's compile worker if it has one already (none is started). */
export function existingCompileWorker(): CompileWorker | null { return worker; }

export type { CompileWorker };
