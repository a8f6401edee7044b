/**
 * A compiled block that retires nothing (it hands its first instruction to the interpreter) must not be called
 * again before the interpreter has run that instruction, even with an interrupt line up that PSTATE masks: the
 * run loop once left its page loop on the line and forgot that the block had stalled, and called it forever
 * (found as a hang of the verify-mode boot with compiled exclusives). The scenario runs in a worker
 * (jit-stall-worker.ts) with the compiler forced (XENO_JIT_HOT=1), so a livelock fails the test after 60 s
 * instead of hanging it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";

test("a stalled compiled block gets its interpreted step with a masked interrupt pending", async () => {
  const w = new Worker(new URL("./jit-stall-worker.js", import.meta.url), { env: { ...process.env, XENO_JIT_HOT: "1" } });
  try {
    const r = await new Promise<{ n: number; blocks: number }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("run(8) did not return within 60 s: the run loop livelocked")), 60_000);
      w.once("message", (m) => { clearTimeout(t); resolve(m as { n: number; blocks: number }); });
      w.once("error", (e) => { clearTimeout(t); reject(e); });
    });
    assert.equal(r.n, 8, "run(8) retired its budget (the LDXR's alignment fault, then the vector's instructions)");
    assert.ok(r.blocks > 0, "the LDXR's block was compiled");
  } finally {
    await w.terminate();
  }
});
