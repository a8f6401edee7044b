/**
 * The compiled-code budget with the real kernel (JitEngine.evict, docs/cpu-internals.md "Eviction and the code
 * budget"): boots the stock kernel as a Xen DomU with a budget of 256 KiB of wasm (a booted domain holds ~1.6–1.8
 * MiB by default), so the decode cache's sweeps evict modules all through the boot and the code they held is
 * interpreted and compiled again. The guest must boot and compute as usual, the budget must hold once the
 * domain idles, and the engine's counts of what it holds must add up.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { framedCommand, framedOutput, machineRunner } from "./run-machine.js";

// Read by src/cpu/arm64/cpu.ts when it loads: set before the machine's modules are imported.
process.env.XENO_JIT_CODE_BUDGET = String(256 << 10);
const { Machine } = await import("../../src/hv/machine.js");

const BOOT_MS = 9 * 60_000;
const BUDGET = 256 << 10;

test("a 256 KiB code budget: modules are evicted through the boot, the guest boots and computes, the budget holds when idle",
  { timeout: BOOT_MS + 240_000 }, async (t) => {
    if (process.env.XENO_JIT === "0") { t.skip("XENO_JIT=0: no compiler"); return; }
    const images = await ensureImages({ onProgress: (msg) => process.stderr.write(`# images: ${msg}\n`) });
    let out = "";
    const m = new Machine({
      memMiB: 128, vcpus: 1, xen: true,
      kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd), cmdline: "console=hvc0",
      consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
    });
    try {
      const runUntil = machineRunner(m, () => out, Date.now() + BOOT_MS + 180_000);
      await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
      let n = 0;
      const sh = async (cmd: string): Promise<string> => {
        const k = ++n + 3000, from = out.length;
        m.input(Buffer.from(framedCommand(cmd, k)));
        await runUntil(() => framedOutput(out.slice(from), k) !== undefined, `output of: ${cmd}`);
        return framedOutput(out.slice(from), k)!;
      };
      const loop = "i=0; s=0; while [ $i -lt 4000 ]; do i=$((i+1)); s=$(((s*31+i)%1000003)); done; echo S=$s";
      // The same sum computed in TypeScript: the shell's arithmetic is 64-bit, the values stay far below 2^53.
      let s = 0;
      for (let i = 1; i <= 4000; i++) s = (s * 31 + i) % 1000003;
      assert.equal((await sh(loop)).trim(), `S=${s}`);
      const st0 = m.board.jitStats()!;
      assert.ok(st0.evicted > 0, `modules evicted during the boot: ${st0.evicted} (of ${st0.modules})`);
      // Idle: the sweeps (every 5–10 s) evict until what is held fits the budget.
      await runUntil(() => { const st = m.board.jitStats()!; return st.evicted > st0.evicted && st.liveBytes <= BUDGET; },
        "the budget held after idle sweeps");
      const st1 = m.board.jitStats()!;
      assert.ok(st1.liveBytes <= BUDGET, `held ${st1.liveBytes} bytes of wasm`);
      assert.ok(st1.liveModules <= st1.modules && st1.liveBlocks <= st1.blocks, JSON.stringify(st1));
      assert.ok((st1.liveModules === 0) === (st1.liveBytes === 0), JSON.stringify(st1));
      // And the evicted code still computes right, compiled again.
      assert.equal((await sh(loop)).trim(), `S=${s}`);
      assert.equal((await sh("echo $((6*7))")).trim(), "42");
      const st2 = m.board.jitStats()!;
      assert.ok(st2.blocks > st1.blocks, `blocks compiled again after the eviction: ${st1.blocks} → ${st2.blocks}`);
      assert.equal(st2.failed, 0);
    } finally {
      m.dispose();
    }
  });
