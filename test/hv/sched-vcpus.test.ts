/**
 * The credit scheduler places vCPUs (src/hv/credit.ts, sched-words.ts), with real guests in the hypervisor
 * process and vCPUs on threads of their own (XENO_VCPU_THREADS=1): a 2-vCPU DomU running two CPU-bound shell
 * loops uses more than 1.5 pCPUs of two; pinned to pCPU 0 (vcpu-pin) its two vCPUs share that one slot and it
 * uses about one. (With one permit per domain, as before, a pinned 2-vCPU domain still ran on two pCPUs.) CPU
 * figures are the domain's cpuSeconds (its threads' CPU time); the bounds allow a loaded host.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages } from "../../src/images/index.js";
import type { DomainInfo } from "../../src/hv/protocol.js";
import { ConsoleTap, HvClient, connectHv, stopHv } from "./hv-client.js";
import { shellGuest } from "./shell-guest.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/** Busy seconds of the whole host so far (/proc/stat "cpu" line: all but idle and iowait), USER_HZ = 100. */
function hostBusy(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!) / 100;
}

test("credit scheduler places vCPUs: vcpus=2 with two busy loops uses > 1.5 pCPUs, pinned to one pCPU about 1", { timeout: 15 * 60_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xeno-sched-vcpus-"));
  const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "512", "--pcpus", "2"],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, XENO_VCPU_THREADS: "1" } });
  let log = "";
  hv.stderr!.on("data", (d) => { log += d; });
  let tap: ConsoleTap | undefined;
  let c: HvClient | undefined;
  try {
    c = await connectHv(dir);
    // The guest at its shell: restored from the suite's snapshot of this spec, or booted (test/hv/shell-guest.ts).
    const g = await shellGuest(c, join(dir, "hv.sock"), { name: "smp", memMiB: 128, vcpus: 2, kernel: images.kernel, ramdisk: images.initrd, cmdline: "console=hvc0" });
    const id = g.domid;
    tap = g.tap;
    process.stderr.write(`# guest at its shell in ${(g.ms / 1000).toFixed(1)} s (${g.restored ? "restored from the suite's snapshot" : "booted"})\n`);
    assert.equal((await tap.run("echo C$(grep -c ^processor /proc/cpuinfo)C", /^C(\d+)C\r?$/m))[1], "2");
    await tap.run("for i in 1 2; do (while :; do :; done) & done; echo LOOPS-$((1+1))", /^LOOPS-2\r?$/m);

    const cpu = async (): Promise<number> => (await c!.ok<DomainInfo[]>("list")).find((d) => d.domid === id)!.cpuSeconds;
    /** pCPUs the domain used over `ms`, and what the rest of the host used meanwhile. */
    const window = async (ms: number): Promise<{ used: number; others: number }> => {
      const c0 = await cpu(), h0 = hostBusy(), t0 = performance.now();
      await new Promise((r) => setTimeout(r, ms));
      const c1 = await cpu(), h1 = hostBusy(), secs = (performance.now() - t0) / 1000;
      const used = (c1 - c0) / secs;
      return { used, others: Math.max(0, (h1 - h0) / secs - used) };
    };
    await new Promise((r) => setTimeout(r, 2000));
    const free = await window(10_000);
    const cores = Math.min(2, availableParallelism());
    // As test/machine/boot.test.ts: > 1.5 of 2 pCPUs with the host to itself, 3/4 of what others left otherwise.
    const want = Math.min(1.5, 0.75 * (cores - free.others));
    process.stderr.write(`# vcpus=2, two busy loops, unpinned: ${free.used.toFixed(2)} pCPUs over 10 s (others ${free.others.toFixed(2)}; want > ${want.toFixed(2)})\n`);
    assert.ok(free.used > want, `the 2-vCPU domain used ${free.used.toFixed(2)} pCPUs (want > ${want.toFixed(2)}; others used ${free.others.toFixed(2)})`);
    // vcpu-list's view (DomainInfo.vcpuSched): each vCPU runnable, on a pCPU of its own.
    const placed = async (): Promise<DomainInfo> => (await c!.ok<DomainInfo[]>("list")).find((d) => d.domid === id)!;
    const both = (await placed()).vcpuSched;
    assert.equal(both?.length, 2, "a vCPU-by-vCPU view of the domain");
    assert.ok(both!.every((v) => v.runnable), `both busy vCPUs runnable: ${JSON.stringify(both)}`);
    assert.deepEqual(both!.map((v) => v.pcpu).sort(), [0, 1], `each busy vCPU holds a pCPU of its own: ${JSON.stringify(both)}`);

    // Pinned to pCPU 0: vCPU 0's home thread and vCPU 1's thread take turns on that one slot.
    await c.ok("vcpu-pin", { domid: id, cpus: [0] });
    await new Promise((r) => setTimeout(r, 2000));
    const pinned = await window(10_000);
    process.stderr.write(`# vcpus=2, two busy loops, pinned to pCPU 0: ${pinned.used.toFixed(2)} pCPUs over 10 s (others ${pinned.others.toFixed(2)})\n`);
    // About 1 (CPU time, so less when the host is loaded: the lower bound is loose).
    assert.ok(pinned.used < 1.3, `pinned to one pCPU the domain used ${pinned.used.toFixed(2)} pCPUs: its vCPUs were not placed on that slot`);
    // At least 0.4 of the one pCPU, of what the rest of the host left of it.
    const pinLow = 0.4 * Math.min(1, Math.max(0.3, cores - pinned.others));
    assert.ok(pinned.used > pinLow, `pinned to one pCPU the domain used only ${pinned.used.toFixed(2)} pCPUs (want > ${pinLow.toFixed(2)}; others used ${pinned.others.toFixed(2)})`);
    const turns = await placed();
    assert.deepEqual(turns.vcpuSched!.map((v) => v.lastPcpu), [0, 0], `pinned, both vCPUs ran last on pCPU 0: ${JSON.stringify(turns.vcpuSched)}`);
    assert.ok(turns.vcpuCpuSeconds!.every((s) => s > 0), `each vCPU has CPU time of its own: ${JSON.stringify(turns.vcpuCpuSeconds)}`);
  } finally {
    tap?.close();
    c?.close();
    await stopHv(hv, dir);
    if (process.env.XENO_TEST_VERBOSE) process.stderr.write(log);
  }
});
