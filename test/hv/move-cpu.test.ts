/**
 * A domain's CPU seconds across a move between worker threads, with vCPU threads (set on here: the worker
 * threads inherit XENO_VCPU_THREADS): vCPU 1's thread adds its run time to a word in the domain memory, which
 * moves with the domain, and each worker charges the domain what that word grew by since its last look. The new
 * worker must start from the word's value at the move, not from 0 — else everything vCPU 1 ran before the move
 * is charged again (the domain's CPU time, `xeno list`'s Time(s), would jump by it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { XenStore } from "../../src/xenstore/index.js";
import { FramePool } from "../../src/hv/frame-pool.js";
import { framedCommand, framedOutput } from "../xen/run-machine.js";

const BOOT_MS = 300_000;

test("vCPU threads: a move between worker threads does not charge vCPU 1's earlier time again", { timeout: BOOT_MS + 120_000 }, async () => {
  process.env.XENO_VCPU_THREADS = "1"; // before the worker threads start: they take the environment then
  const { DomainRunner, VmThread } = await import("../../src/hv/vm-host.js");
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const t1 = new VmThread(), t2 = new VmThread();
  const r = new DomainRunner();
  let out = "", stopped = "";
  r.on("output", (b) => { out += Buffer.from(b).toString("latin1"); });
  r.on("stopped", (s) => { stopped = `${s.state}: ${s.reason}`; });
  const until = async (pred: () => boolean, what: string, ms = 120_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (stopped !== "") assert.fail(`${what}: the domain stopped (${stopped})\n${out.slice(-3000)}`);
      if (Date.now() > end) assert.fail(`${what}: not seen in time\n${out.slice(-3000)}`);
      await new Promise((res) => setTimeout(res, 20));
    }
  };
  const sh = async (cmd: string, n: number): Promise<string> => {
    r.input(Buffer.from(framedCommand(cmd, n)));
    await until(() => framedOutput(out, n) !== undefined, cmd);
    return framedOutput(out, n)!;
  };
  try {
    r.start({ memMiB: 128, vcpus: 2, kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd), cmdline: "console=hvc0",
      xen: true, name: "cpu-mover", domid: 9, store: new XenStore(), pool: new FramePool(1 << 16) }, t1);
    await until(() => out.includes(GUEST_READY_MARKER), "guest ready marker", BOOT_MS);
    // Some work on vCPU 1, so that its thread has run a while before the move.
    await sh("taskset -c 1 sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'; echo busy-done", 1);
    await new Promise((res) => setTimeout(res, 300)); // the worker's next step has counted it
    const v1 = r.vcpuSeconds(2)[1]!, c0 = r.cpuSeconds, w0 = performance.now();
    assert.ok(v1 >= 0.5, `vCPU 1 ran ${v1.toFixed(2)} s before the move: too little for this test to show a double count`);
    await r.moveTo(t2);
    await new Promise((res) => setTimeout(res, 300));
    const c1 = r.cpuSeconds, v1After = r.vcpuSeconds(2)[1]!, wall = (performance.now() - w0) / 1000;
    process.stderr.write(`# vCPU 1 ${v1.toFixed(2)} s before the move; across it (${wall.toFixed(2)} s) the domain's CPU time ` +
      `${c0.toFixed(2)} → ${c1.toFixed(2)} s, vCPU 1's ${v1.toFixed(2)} → ${v1After.toFixed(2)} s\n`);
    // Two vCPUs can run at most 2 s per second of wall time (+ slack for the counters' granularity).
    assert.ok(c1 - c0 <= 2 * wall + 0.25, `the domain's CPU time grew by ${(c1 - c0).toFixed(2)} s in ${wall.toFixed(2)} s of wall time`);
    assert.ok(v1After - v1 <= wall + 0.25, `vCPU 1's CPU time grew by ${(v1After - v1).toFixed(2)} s in ${wall.toFixed(2)} s of wall time`);
    assert.match(await sh("echo $((6*7))", 2), /^42$/m, "the shell answers after the move");
  } finally {
    await r.destroy();
    await t1.close();
    await t2.close();
  }
});
