/**
 * xenod's socket against a client that sends and never reads (issue 14, F1): 200,000 requests forwarded to the
 * real hypervisor; xenod reads no more of them than it may answer (64 in flight, 1 MiB unread), so its RSS stays
 * within 64 MiB of what it was while another client is answered; once the client reads, every request is
 * answered in turn.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { connectXenod, XENOD_MAIN, type XenodClient } from "../../src/toolstack/client.js";

const RSS_BOUND_MIB = 64;
const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

test("a xenod client that never reads: xenod's RSS stays bounded, others are answered", { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-xflood-"));
  const xenod: ChildProcess = spawn(process.execPath, [XENOD_MAIN, "--run-dir", dir, "--foreground"], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  xenod.stderr!.on("data", (b: Buffer) => { log += b.toString(); });
  let c: XenodClient | undefined;
  let sock: Socket | undefined;
  try {
    for (let i = 0; i < 300 && c === undefined; i++) {
      try { c = await connectXenod({ runDir: dir }); } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
    assert.ok(c, `xenod did not come up: ${log}`);
    const N = 200_000;
    sock = createConnection(join(dir, "xenod.sock"));
    await new Promise<void>((resolve, reject) => { sock!.once("connect", () => resolve()); sock!.once("error", reject); });
    sock.pause();
    const before = rssMiB(xenod.pid!);
    let lines = "";
    for (let i = 1; i <= N; i++) lines += `{"id":${i},"op":"dmesg"}\n`;
    sock.write(lines); // ~5 MB of requests; their answers (~0.4 KB each) would be ~80 MB unread
    let slowest = 0;
    for (let k = 0; k < 20; k++) {
      const t0 = performance.now();
      assert.ok((await c.request("list")).length >= 1);
      slowest = Math.max(slowest, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 100));
    }
    const grew = rssMiB(xenod.pid!) - before;
    process.stderr.write(`# ${N} unread requests to xenod: xenod RSS +${grew.toFixed(1)} MiB; list answered in at most ${slowest.toFixed(0)} ms\n`);
    assert.ok(grew < RSS_BOUND_MIB, `xenod grew ${grew.toFixed(1)} MiB (bound ${RSS_BOUND_MIB} MiB)`);
    assert.ok(slowest < 5000, `list took ${slowest.toFixed(0)} ms meanwhile`); // generous: CI runs two test files at once
    let answered = 0, buf = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => { buf += d; const parts = buf.split("\n"); buf = parts.pop()!; answered += parts.length; });
    sock.resume();
    for (let i = 0; i < 900 && answered < N; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(answered, N);
  } finally {
    sock?.destroy();
    c?.close();
    xenod.kill("SIGTERM");
    try { process.kill(Number(readFileSync(join(dir, "hv.pid"), "utf8")), "SIGTERM"); } catch { /* gone */ }
    await new Promise((r) => setTimeout(r, 1000));
    rmSync(dir, { recursive: true, force: true });
  }
});
