/**
 * Three busy 1-vCPU DomUs on two pCPUs (the hypervisor process, real guests): at start two of them share a
 * worker thread, so they would split one pCPU (50/50/100). The balancer (src/hv/balance.ts) moves one of the
 * pair to a thread of its own while they run, and the credit scheduler then gives each about two thirds of a
 * pCPU, as Xen does. Asserted: the move happened (vmMoves, three threads), the shares are even (the unbalanced
 * split has a max/min ratio of 2), and each domain got 50–85 % of a pCPU over 20 s (issue 9's acceptance) — of
 * what the rest of the host left: on a host that others load, the bounds scale by the pCPUs the three domains
 * could have had (as test/hv/sched-vcpus does); the measured shares are printed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages } from "../../src/images/index.js";
import type { DomainInfo, HostInfo } from "../../src/hv/protocol.js";
import { ConsoleTap, HvClient, connectHv, stopHv } from "./hv-client.js";
import { shellGuests } from "./shell-guest.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/** Busy seconds of the whole host so far (/proc/stat "cpu" line: all but idle and iowait), USER_HZ = 100. */
function hostBusy(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!) / 100;
}

test("three busy domains on two pCPUs: the balancer moves one out of the shared thread, each gets about 2/3 of a pCPU",
  { timeout: 15 * 60_000 }, async () => {
    const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
    const dir = mkdtempSync(join(tmpdir(), "xeno-balance-"));
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
        ["busy1", "busy2", "busy3"]);
      process.stderr.write(`# guests at their shells: ${guests.map((g) => `${g.restored ? "restored" : "booted"} in ${(g.ms / 1000).toFixed(1)} s`).join(", ")}\n`);
      const ids = guests.map((g) => g.domid);
      for (const g of guests) taps.push(g.tap);
      for (const t of taps) {
        const cmd = "while :; do :; done & echo LOOP-$((1+1))";
        try {
          await t.run(cmd, /^LOOP-2\r?$/m, 60_000);
        } catch (e) {
          // Seen once (fresh clone, 2026-12-07): the guest echoed the first 15 characters of the command and
          // nothing more for 120 s, right after its boot and checkpoint. Likely the scheduler bug fixed in 8d3176f
          // (busy loops woken on the slots they kept while blocked held BOOST for ever, so a third domain never
          // ran); not proven. The domains' CPU seconds two seconds apart say whether it was running. Typed again
          // once; the balancer is what this test checks.
          const a = await c.ok<DomainInfo[]>("list");
          await new Promise((r) => setTimeout(r, 2000));
          const b = await c.ok<DomainInfo[]>("list");
          process.stderr.write(`# console command not answered in 60 s (${(e as Error).message.split("\n")[0]}); domains (id, state, CPU s then +2 s): ` +
            a.map((d) => `${d.domid} ${d.state} ${d.cpuSeconds.toFixed(2)}→${(b.find((x) => x.domid === d.domid)?.cpuSeconds ?? NaN).toFixed(2)}`).join("; ") +
            `; typing it again\n`);
          await t.run(cmd, /^LOOP-2\r?$/m, 120_000);
        }
      }
      // The balancer looks every second and holds a moved domain 5 s: give it time to settle. Wait for the
      // balanced state (a thread each), not for a move: guests booted one after the other may already have been
      // moved while the later ones booted, and a move counted then need not be the last one.
      const deadline = Date.now() + 90_000;
      let info = await c.ok<HostInfo>("info");
      while (((info.vmMoves ?? 0) < 1 || info.vmThreads !== 3) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1000));
        info = await c.ok<HostInfo>("info");
      }
      assert.ok((info.vmMoves ?? 0) >= 1, `the balancer moved a domain (${JSON.stringify(info)})\n${log.slice(-2000)}`);
      assert.equal(info.vmThreads, 3, `a thread per busy domain (${JSON.stringify(info)})\n${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 2000));
      const cpu = async (): Promise<Map<number, number>> => new Map((await c!.ok<DomainInfo[]>("list")).map((d) => [d.domid, d.cpuSeconds]));
      const l0 = await cpu(), h0 = hostBusy(), t0 = performance.now();
      await new Promise((r) => setTimeout(r, 20_000));
      const l1 = await cpu(), h1 = hostBusy(), secs = (performance.now() - t0) / 1000;
      const shares = ids.map((id) => (l1.get(id)! - l0.get(id)!) / secs);
      const used = shares.reduce((a, b) => a + b, 0);
      // What the rest of the host used meanwhile, and so the pCPUs the three could have had (2 on an idle host).
      // Shares are CPU time (src/common/thread-cpu.ts), so on a saturated host avail ≈ what the three used, and the
      // bounds below say each had about a third of it (fresh run at load 25: 5.7/5.1/6.2 % of a pCPU, others 1.83).
      const others = Math.max(0, (h1 - h0) / secs - used), avail = Math.max(0.05, Math.min(2, Math.min(2, availableParallelism()) - others));
      const lo = 0.75 * avail / 3, hi = 1.275 * avail / 3; // 50 % and 85 % of a pCPU when avail = 2
      process.stderr.write(`# three busy domains on 2 pCPUs over ${secs.toFixed(1)} s: ${shares.map((s) => `${(s * 100).toFixed(1)}%`).join(", ")} ` +
        `of a pCPU (Xen: ~67% each; others used ${others.toFixed(2)} pCPUs, so want ${(lo * 100).toFixed(1)}–${(hi * 100).toFixed(1)}%); moves ${info.vmMoves}\n`);
      const max = Math.max(...shares), min = Math.min(...shares);
      assert.ok(max / min < 1.5, `even shares (unbalanced would be 2:1): ${shares.join(", ")}`);
      assert.ok(min > 0.3 * avail / 2, `each runs: ${shares.join(", ")}`);
      for (const s of shares) assert.ok(s >= lo && s <= hi, `each domain 50–85 % of a pCPU (scaled to ${avail.toFixed(2)} free pCPUs: ${(lo * 100).toFixed(1)}–${(hi * 100).toFixed(1)} %): ${shares.join(", ")}`);
      for (const t of taps) await t.run("echo $((6*7))", /^42\r?$/m); // every shell still answers
    } finally {
      for (const t of taps) t.close();
      c?.close();
      await stopHv(hv, dir);
      if (process.env.XENO_TEST_VERBOSE) process.stderr.write(log);
    }
  });
