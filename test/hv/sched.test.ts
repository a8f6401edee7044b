/**
 * The credit scheduler with real guests in the hypervisor process: two DomUs pinned to pCPU 0 with weights 512
 * and 256, each running a CPU-bound shell loop, share that pCPU about 2:1; then one is unpinned and capped at
 * 25% and uses about a quarter of a pCPU although pCPU 1 is free. Bounds are generous (a loaded host); the
 * measured figures are printed (and recorded in docs/benchmarks.md). The guests come from the suite's snapshots
 * (shell-guest.ts; balance-guests uses the same two): the scheduling, not the boot, is under test; their weights
 * and pinning are set by sched-credit and vcpu-pin before the loops start.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages } from "../../src/images/index.js";
import type { DomainInfo } from "../../src/hv/protocol.js";
import { ConsoleTap, HvClient, connectHv, stopHv } from "./hv-client.js";
import { shellGuests } from "./shell-guest.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

test("credit scheduler: weights 512:256 on one pCPU ≈ 2:1; cap=25 ≈ a quarter of a pCPU", { timeout: 15 * 60_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xeno-sched-"));
  const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "1024", "--pcpus", "2"],
    { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  hv.stderr!.on("data", (d) => { log += d; });
  const taps: ConsoleTap[] = [];
  let c: HvClient | undefined;
  try {
    const sock = join(dir, "hv.sock");
    c = await connectHv(dir);
    const guests = await shellGuests(c, sock, { memMiB: 96, vcpus: 1, kernel: images.kernel, ramdisk: images.initrd, cmdline: "console=hvc0" },
      ["heavy", "light"]);
    process.stderr.write(`# guests at their shells: ${guests.map((g) => `${g.restored ? "restored" : "booted"} in ${(g.ms / 1000).toFixed(1)} s`).join(", ")}\n`);
    const [a, b] = guests.map((g) => g.domid) as [number, number];
    for (const g of guests) taps.push(g.tap);
    for (const [id, weight] of [[a, 512], [b, 256]] as const) {
      await c.ok("sched-credit", { domid: id, weight });
      await c.ok("vcpu-pin", { domid: id, cpus: [0] });
    }
    for (const t of taps) await t.run("while :; do :; done & echo LOOP-$((1+1))", /^LOOP-2\r?$/m);

    const cpu = async (): Promise<Map<number, DomainInfo>> => new Map((await c!.ok<DomainInfo[]>("list")).map((d) => [d.domid, d]));
    const window = async (ms: number): Promise<[number, number]> => {
      const l0 = await cpu();
      await new Promise((r) => setTimeout(r, ms));
      const l1 = await cpu();
      return [l1.get(a)!.slotSeconds! - l0.get(a)!.slotSeconds!, l1.get(b)!.slotSeconds! - l0.get(b)!.slotSeconds!];
    };
    await new Promise((r) => setTimeout(r, 2000));
    const [ua, ub] = await window(20_000);
    const l = await cpu();
    process.stderr.write(`# pinned to pCPU 0 over 20 s: weight 512 → ${ua.toFixed(2)} s, weight 256 → ${ub.toFixed(2)} s of slot time, ratio ${(ua / ub).toFixed(2)}\n`);
    assert.deepEqual(l.get(a)!.sched, { weight: 512, cap: 0, affinity: [0] });
    // Measured in slot time (DomainInfo.slotSeconds: what the scheduler granted and charged), not in CPU time,
    // which on a loaded host is a fraction of it (the scheduler's decisions are under test here). Loose bounds:
    // slot time is the wall time of a domain's slices, so when the host is loaded (another test booting guests
    // beside this one) slices stretch, the slice still running at a switch overlaps the next domain's, and the
    // ratio is pulled towards 1 — measured 1.32 and a 24.8 s sum under such load. Two domains each on a pCPU of
    // its own would show ~40 s and a ratio of ~1.
    assert.ok(ua / ub > 1.2 && ua / ub < 3.0, `ratio ${ua / ub}`);
    assert.ok(ua + ub < 20 * 1.45, `the two share one pCPU: ${ua + ub} s of CPU in 20 s`);

    // Unpin the heavy one and cap it at 25%: it could have pCPU 1 to itself, the cap holds it near a quarter.
    await c.ok("vcpu-pin", { domid: a, cpus: null });
    assert.deepEqual(await c.ok("sched-credit", { domid: a, cap: 25 }), { weight: 512, cap: 25, affinity: null });
    assert.match(JSON.stringify(await c.call("sched-credit", { domid: a, weight: 0 })), /EINVAL/);
    assert.match(JSON.stringify(await c.call("vcpu-pin", { domid: a, cpus: [7] })), /EINVAL.*pCPU 7/);
    await new Promise((r) => setTimeout(r, 2000));
    const [ca, cb] = await window(20_000);
    process.stderr.write(`# cap=25 over 20 s: capped ${ca.toFixed(2)} s of slot time (${(ca / 20 * 100).toFixed(1)}% of a pCPU), other ${cb.toFixed(2)} s\n`);
    assert.ok(ca / 20 > 0.12 && ca / 20 < 0.38, `capped share ${ca / 20}`);
    assert.ok(cb / 20 > 0.6, `the uncapped one keeps its pCPU: ${cb / 20}`);
  } finally {
    for (const t of taps) t.close();
    c?.close();
    await stopHv(hv, dir);
    if (process.env.XENO_TEST_VERBOSE) process.stderr.write(log);
  }
});
