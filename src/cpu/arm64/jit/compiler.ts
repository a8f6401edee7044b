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
 * share it), started when the first engine there turns on asynchronous compilation; until it has loaded, engines
 * compile on their own thread. Results carry the engine's id; `take` hands each engine
 * its own, in submission order (one worker compiles in order).
 */
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from "node:worker_threads";

import type { MemLimits } from "./batch.js";

/**
 * A batch for the worker, one Int32Array: [n, then n × (page, slot, generation, RAM word index of the page),
 * then (page, slot) pairs where blocks started on those pages already]. The first job of an engine also
 * carries its memory (shared) and the memory type its modules import.
 */
export interface CompileJob { engine: number; id: number; fences: boolean; job: Int32Array<ArrayBuffer>; memory?: WebAssembly.Memory; mem?: MemLimits }
/** Tells the worker to drop what it holds for an engine (its memory). */
export interface ForgetJob { forget: number }

/**
 * A result the worker posted for batch `id` of engine `engine`: the module, whose function k is block k of
 * `blocks` as (page, slot, generation, instructions, end) quintuples (continuations included; end: the slot of
 * the untranslatable instruction that ended it, or -1) and its size in bytes, or why it failed.
 */
export interface CompileResult { engine: number; id: number; module: WebAssembly.Module | null; blocks: Int32Array; error: string | null; size: number }

class CompileWorker {
  private readonly port: MessagePort;
  /** [0]: results posted by the worker so far; [1]: 1 once the worker has loaded (it takes jobs then). */
  private readonly posted: Int32Array;
  private seen = 0;
  /** Results taken from the port for engines that have not collected them yet. */
  private readonly waiting = new Map<number, CompileResult[]>();

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.posted = new Int32Array(new SharedArrayBuffer(8));
    const w = new Worker(new URL("./compile-worker.js", import.meta.url), {
      workerData: { port: port2, posted: this.posted }, transferList: [port2],
    });
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

  submit(engine: number, id: number, memory: WebAssembly.Memory, mem: MemLimits, fences: boolean, job: Int32Array<ArrayBuffer>): void {
    const m: CompileJob = { engine, id, fences, job };
    if (!this.known.has(engine)) { this.known.add(engine); m.memory = memory; m.mem = mem; }
    this.port.postMessage(m, [job.buffer]);
  }

  /** The next result for `engine`, or null if none has arrived. */
  take(engine: number): CompileResult | null {
    const q = this.waiting.get(engine);
    if (q !== undefined && q.length > 0) return q.shift()!;
    if (this.posted[0] === this.seen) return null;
    for (;;) {
      const m = receiveMessageOnPort(this.port);
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
      const m = receiveMessageOnPort(this.port);
      if (m === undefined) return;
      this.seen++;
      const r = m.message as CompileResult;
      let q = this.waiting.get(r.engine);
      if (q === undefined) this.waiting.set(r.engine, q = []);
      q.push(r);
      if (r.engine === engine) return;
    }
  }

  /** Drops what is kept for an engine that is gone, here and in the worker (its memory). */
  forget(engine: number): void {
    this.waiting.delete(engine);
    if (this.known.delete(engine)) this.port.postMessage({ forget: engine } satisfies ForgetJob);
  }
}

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

export type { CompileWorker };
