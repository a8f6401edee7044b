/**
 * Three busy 1-vCPU DomUs on two pCPUs (the hypervisor process, real guests): at start two of them share a
 * worker thread, so they would split one pCPU (50/50/100). The balancer (src/hv/balance.ts) moves one of the
 * pair to a thread of its own while they run, and the credit scheduler then gives each about two thirds of a
 * pCPU, as Xen does. Asserted: the move happened (vmMoves, three threads) and the shares are even (the
 * unbalanced split has a max/min ratio of 2); the measured shares are printed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages } from "../../src/images/index.js";
import type { DomainInfo, HostInfo } from "../../src/hv/protocol.js";
import { ConsoleTap, HvClient, connectHv, stopHv } from "./hv-client.js";
import { shellGuests } from "./shell-guest.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

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
      for (const t of taps) await t.run("while :; do :; done & echo LOOP-$((1+1))", /^LOOP-2\r?$/m);
      // The balancer looks every second and holds a moved domain 5 s: give it time to settle.
      const deadline = Date.now() + 60_000;
      let info = await c.ok<HostInfo>("info");
      while ((info.vmMoves ?? 0) < 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1000));
        info = await c.ok<HostInfo>("info");
      }
      assert.ok((info.vmMoves ?? 0) >= 1, `the balancer moved a domain (${JSON.stringify(info)})\n${log.slice(-2000)}`);
      assert.equal(info.vmThreads, 3, "a thread per busy domain");
      await new Promise((r) => setTimeout(r, 2000));
      const cpu = async (): Promise<Map<number, number>> => new Map((await c!.ok<DomainInfo[]>("list")).map((d) => [d.domid, d.cpuSeconds]));
      const l0 = await cpu();
      await new Promise((r) => setTimeout(r, 20_000));
      const l1 = await cpu();
      const shares = ids.map((id) => (l1.get(id)! - l0.get(id)!) / 20);
      process.stderr.write(`# three busy domains on 2 pCPUs over 20 s: ${shares.map((s) => `${(s * 100).toFixed(1)}%`).join(", ")} ` +
        `of a pCPU (Xen: ~67% each); moves ${info.vmMoves}\n`);
      const max = Math.max(...shares), min = Math.min(...shares);
      assert.ok(max / min < 1.5, `even shares (unbalanced would be 2:1): ${shares.join(", ")}`);
      assert.ok(min > 0.3, `each runs: ${shares.join(", ")}`);
      for (const t of taps) await t.run("echo $((6*7))", /^42\r?$/m); // every shell still answers
    } finally {
      for (const t of taps) t.close();
      c?.close();
      await stopHv(hv, dir);
      if (process.env.XENO_TEST_VERBOSE) process.stderr.write(log);
    }
  });
