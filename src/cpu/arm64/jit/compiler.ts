/**
 * Compiling modules off the vCPU's thread. `new WebAssembly.Module` of a batch of blocks costs ~1.8 ms on this
 * machine's cores (10 % of a boot's CPU profile when the vCPU's thread did it); a worker thread does it here,
 * while the vCPU goes on interpreting, and posts the compiled module back (a WebAssembly.Module crosses threads
 * without being compiled again). The vCPU's thread instantiates it over its memory and imports.
 *
 * The threads running vCPUs never return to their event loop (they loop in Cpu.run, blocking in Atomics.wait),
 * so results are not delivered as events: the worker bumps a counter in shared memory after each result, and
 * the vCPU's thread takes the results with receiveMessageOnPort when the counter has moved — one plain read of
 * a shared word per poll.
 *
 * One compile worker per thread that runs compiled code (a domain worker hosts several domains' engines: they
 * share it), created when the first batch is submitted. Results carry the engine's id; `take` hands each engine
 * its own, in submission order (one worker compiles in order).
 */
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from "node:worker_threads";

/** A result the worker posted: the module for batch `id` of engine `engine`, or why it failed. */
export interface CompileResult { engine: number; id: number; module: WebAssembly.Module | null; error: string | null }

class CompileWorker {
  private readonly port: MessagePort;
  /** [0]: results posted by the worker so far. */
  private readonly posted: Int32Array;
  private seen = 0;
  /** Results taken from the port for engines that have not collected them yet. */
  private readonly waiting = new Map<number, CompileResult[]>();

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.posted = new Int32Array(new SharedArrayBuffer(4));
    const w = new Worker(new URL("./compile-worker.js", import.meta.url), {
      workerData: { port: port2, posted: this.posted }, transferList: [port2],
    });
    // Neither keeps the process alive: a runner that is done exits with batches in flight.
    w.unref();
    port1.unref();
    this.port = port1;
  }

  /** Posts a copy of `bytes` (the caller keeps them, to compile itself should the worker not answer). */
  submit(engine: number, id: number, bytes: Uint8Array<ArrayBuffer>): void {
    this.port.postMessage({ engine, id, bytes });
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

  /** Drops results kept for an engine that is gone. */
  forget(engine: number): void { this.waiting.delete(engine); }
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
