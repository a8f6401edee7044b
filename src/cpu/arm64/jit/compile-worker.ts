/**
 * The compile worker (compiler.ts): compiles each batch's module bytes in order, posts the module (or the
 * error) back on the port it was given, then bumps the shared counter the vCPU's thread polls.
 */
import { workerData } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";

const { port, posted } = workerData as { port: MessagePort; posted: Int32Array };

port.on("message", (m: { engine: number; id: number; bytes: Uint8Array<ArrayBuffer> }) => {
  let module: WebAssembly.Module | null = null, error: string | null = null;
  try {
    module = new WebAssembly.Module(m.bytes);
  } catch (e) {
    error = (e as Error).message;
  }
  port.postMessage({ engine: m.engine, id: m.id, module, error });
  Atomics.add(posted, 0, 1);
});
