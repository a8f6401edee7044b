/**
 * Compiled code shared between domains running the same kernel (the code cache, src/cpu/arm64/jit/compile-worker.ts):
 * two Xen DomUs of the same size boot the stock kernel one after the other in this thread, both compiling through
 * one compile worker the way the hypervisor's domain threads do (compileWorkerClient + useCompileWorker). The
 * second must install blocks from modules the first compiled (its counters), and both must compute right. That
 * the cache refuses a module whose words differ from the asking domain's memory is test/unit/code-share.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { framedCommand, framedOutput, machineRunner } from "./run-machine.js";

// Read by engine.ts when it loads: wait for the cache's answers however loaded the host is (see
// test/unit/code-share.test.ts); the hypervisor waits 2 ms and compiles for itself after that.
process.env.XENO_JIT_SHARE_WAIT_MS = "20000";
const { compileWorkerClient, existingCompileWorker, useCompileWorker } = await import("../../src/cpu/arm64/jit/compiler.js");
const { Machine } = await import("../../src/hv/machine.js");
type Machine = InstanceType<typeof Machine>;

const BOOT_MS = 9 * 60_000;

async function boot(kernel: Uint8Array, initrd: Uint8Array): Promise<{ m: Machine; sh: (cmd: string) => Promise<string> }> {
  let out = "";
  const m = new Machine({ memMiB: 96, vcpus: 1, xen: true, kernel, initrd, cmdline: "console=hvc0",
    consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); } });
  const runUntil = machineRunner(m, () => out, Date.now() + BOOT_MS);
  await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
  let n = 0;
  const sh = async (cmd: string): Promise<string> => {
    const k = ++n + 4000, from = out.length;
    m.input(Buffer.from(framedCommand(cmd, k)));
    await runUntil(() => framedOutput(out.slice(from), k) !== undefined, `output of: ${cmd}`);
    return framedOutput(out.slice(from), k)!;
  };
  return { m, sh };
}

test("a second domain of the same kernel installs blocks compiled for the first; both compute right",
  { timeout: 2 * BOOT_MS + 120_000 }, async (t) => {
    if (process.env.XENO_JIT === "0" || process.env.XENO_JIT_SHARE === "0") { t.skip("no compiler or no code cache"); return; }
    useCompileWorker(compileWorkerClient());
    const w = existingCompileWorker()!;
    while (!w.ready) await new Promise((r) => setTimeout(r, 10));
    const images = await ensureImages({ onProgress: (msg) => process.stderr.write(`# images: ${msg}\n`) });
    const kernel = readFileSync(images.kernel), initrd = readFileSync(images.initrd);
    const loop = "i=0; s=0; while [ $i -lt 3000 ]; do i=$((i+1)); s=$(((s*31+i)%1000003)); done; echo S=$s";
    let s = 0;
    for (let i = 1; i <= 3000; i++) s = (s * 31 + i) % 1000003;
    const a = await boot(kernel, initrd);
    let b: Awaited<ReturnType<typeof boot>> | null = null;
    try {
      assert.equal((await a.sh(loop)).trim(), `S=${s}`);
      const sa = a.m.board.jitStats()!;
      b = await boot(kernel, initrd);
      assert.equal((await b.sh(loop)).trim(), `S=${s}`);
      assert.equal((await b.sh("echo $((6*7))")).trim(), "42");
      assert.equal((await a.sh(loop)).trim(), `S=${s}`);
      const sb = b.m.board.jitStats()!;
      t.diagnostic(`first: ${sa.modules} modules compiled, ${sa.blocks} blocks, ${sa.sharedBlocks} shared; ` +
        `second: ${sb.modules} compiled, ${sb.blocks} blocks, ${sb.sharedBlocks} from ${sb.sharedModules} shared modules, ${sb.shareLate} late lookups`);
      assert.ok(sb.sharedBlocks > 0 && sb.sharedModules > 0, `the second domain shared nothing: ${JSON.stringify(sb)}`);
      assert.equal(sb.failed, 0);
      assert.equal(sa.failed, 0);
    } finally {
      a.m.dispose();
      b?.m.dispose();
    }
  });
