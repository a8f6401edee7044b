/**
 * Per-vCPU history for a real guest: the demo guest with 2 vCPUs (their runs counted by the board's run loop,
 * src/machine/board.ts homeRunS, published by vm-worker.ts STAT_VCPU_S) runs two busy loops; /rrd_updates then has
 * `AVERAGE:vm:UUID:cpu0` and `cpu1` (xcp-rrdd's names, what Xen Orchestra's VM CPU graph reads) with known points,
 * each within 0..1, both busy while the loops ran, and in every row cpu0 + cpu1 = 2 × cpu_usage (the domain's CPU
 * time over its vCPUs): the per-vCPU seconds add up to the domain's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages } from "../../src/images/index.js";
import { linkStableImages } from "../../src/images/stable-links.js";
import { CLI, ROOT } from "../machine/cli-domain.js";
import { makeUsers } from "./api-helpers.js";

const BOOT_MS = 8 * 60_000;
/** Values are written with 4 decimals: a sum of three may be off by 2e-4; a little more for the capped rows. */
const SUM_TOLERANCE = 2e-3;

test("/rrd_updates: a 2-vCPU demo guest has cpu0 and cpu1 series that add up to the domain's CPU time", { timeout: 20 * 60_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  await linkStableImages(images.cacheDir);
  const run = mkdtempSync(join(tmpdir(), "xeno-vcpu-rrd-"));
  const apiDir = join(run, "api");
  await makeUsers(apiDir, [["ro", "read-only", "ro-pass"]]);
  const env = { ...process.env, XENO_RUN_DIR: run, XENO_API_LISTEN: "http://127.0.0.1:0", XENO_API_DIR: apiDir };
  const cfg = join(run, "demo2.cfg");
  const demo = readFileSync(join(ROOT, "examples/demo.cfg"), "utf8");
  assert.match(demo, /^vcpus = 1$/m);
  writeFileSync(cfg, demo.replace(/^vcpus = 1$/m, "vcpus = 2"));
  const child = spawn(process.execPath, [CLI, "create", "-c", cfg], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.setEncoding("latin1").on("data", (d: string) => { out += d; });
  child.stderr.setEncoding("utf8").on("data", (d: string) => { err += d; });
  const waitFor = async (re: RegExp, from: number, ms: number, what: string): Promise<void> => {
    const end = Date.now() + ms;
    while (!re.test(out.slice(from))) {
      if (child.exitCode !== null) assert.fail(`${what}: xeno create exited ${child.exitCode}\n${err}\n${out.slice(-2000)}`);
      if (Date.now() > end) assert.fail(`${what}: not seen\n${err}\n${out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  try {
    await waitFor(/XENO-GUEST-READY/, 0, BOOT_MS, "guest ready");
    // Both vCPUs online, then two busy loops of 12 s (Linux spreads them over the two vCPUs): at least two
    // complete 5 s rows with both vCPUs busy.
    let from = out.length;
    child.stdin.write("grep -c ^processor /proc/cpuinfo; echo CPUS-$((1+1))-SEEN\n");
    await waitFor(/CPUS-2-SEEN/, from, 60_000, "cpuinfo");
    assert.match(out.slice(from), /^2\r?$/m, "the guest sees 2 CPUs");
    from = out.length;
    child.stdin.write("for i in 1 2; do (e=$(($(date +%s)+12)); while [ $(date +%s) -lt $e ]; do :; done) & done; wait; echo BUSY-$((2+2))-DONE\n");
    await waitFor(/BUSY-4-DONE/, from, 180_000, "busy loops");
    const url = (JSON.parse(readFileSync(join(run, "api.json"), "utf8")) as { urls: string[] }).urls[0]!;
    const sid = await (await fetch(`${url}/jsonrpc`, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "session.login_with_password", params: ["ro", "ro-pass"] }) })).json() as { result: string };
    type Export = { meta: { legend: string[]; step: number }; data: { t: number; values: string[] }[] };
    let x: Export | null = null, cols = { u: -1, c0: -1, c1: -1 }, busy0 = 0, busy1 = 0;
    // Poll until the rows covering the busy loops are complete (a row closes at its 5 s boundary after a sample),
    // and there are a few rows to compare.
    for (const end = Date.now() + 90_000; ;) {
      x = await (await fetch(`${url}/rrd_updates?session_id=${sid.result}&start=-600&interval=5&json=true`)).json() as Export;
      // The guest's (Domain-0 has cpu_usage but no cpuN: the hypervisor counts no vCPUs of its own).
      const c0 = x.meta.legend.findIndex((l) => /^AVERAGE:vm:[0-9a-f-]{36}:cpu0$/.test(l));
      assert.ok(c0 >= 0, `a cpu0 series: ${x.meta.legend.join(" ")}`);
      const vm = x.meta.legend[c0]!.split(":")[2]!;
      assert.notEqual(vm, "00000000-0000-0000-0000-000000000000");
      cols = { u: x.meta.legend.indexOf(`AVERAGE:vm:${vm}:cpu_usage`), c0, c1: x.meta.legend.indexOf(`AVERAGE:vm:${vm}:cpu1`) };
      assert.ok(cols.u >= 0 && cols.c1 >= 0, `cpu_usage and cpu1 series of ${vm}: ${x.meta.legend.join(" ")}`);
      assert.ok(!x.meta.legend.some((l) => /:cpu2$/.test(l)), "no cpu2 for a 2-vCPU VM");
      busy0 = Math.max(0, ...x.data.map((r) => Number(r.values[cols.c0]) || 0));
      busy1 = Math.max(0, ...x.data.map((r) => Number(r.values[cols.c1]) || 0));
      const rows = x.data.filter((r) => r.values[cols.c0] !== "NaN" && r.values[cols.c1] !== "NaN" && r.values[cols.u] !== "NaN").length;
      if (busy0 > 0.1 && busy1 > 0.1 && rows >= 3) break;
      if (Date.now() > end) assert.fail(`cpu0 at most ${busy0}, cpu1 at most ${busy1} after the busy loops, ${rows} rows known`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(x.meta.step, 5);
    const known = x.data.filter((r) => r.values[cols.c0] !== "NaN" && r.values[cols.c1] !== "NaN" && r.values[cols.u] !== "NaN");
    assert.ok(known.length >= 3, `${known.length} rows with cpu0, cpu1 and cpu_usage known`);
    let worst = 0;
    for (const r of known) {
      const c0 = Number(r.values[cols.c0]), c1 = Number(r.values[cols.c1]), u = Number(r.values[cols.u]);
      for (const v of [c0, c1, u]) assert.ok(v >= 0 && v <= 1, `row ${r.t}: ${v} outside 0..1`);
      worst = Math.max(worst, Math.abs(c0 + c1 - 2 * u));
      assert.ok(Math.abs(c0 + c1 - 2 * u) <= SUM_TOLERANCE, `row ${r.t}: cpu0 ${c0} + cpu1 ${c1} ≠ 2 × cpu_usage ${u}`);
    }
    // Without vCPU threads (XENO_VCPU_THREADS) both vCPUs share the domain's one thread: together at most one CPU.
    if (process.env.XENO_VCPU_THREADS !== "1") for (const r of known) assert.ok(2 * Number(r.values[cols.u]) <= 1 + SUM_TOLERANCE, `row ${r.t}: two vCPUs on one thread used ${2 * Number(r.values[cols.u])} CPUs`);
    process.stderr.write(`# ${known.length} rows (t cpu0 cpu1 cpu_usage): ${known.map((r) => `${r.t} ${r.values[cols.c0]} ${r.values[cols.c1]} ${r.values[cols.u]}`).join("; ")}; ` +
      `|cpu0 + cpu1 − 2 × cpu_usage| ≤ ${worst.toFixed(4)}\n`);
  } finally {
    child.kill();
    for (const f of ["xenod.pid", "hv.pid"]) {
      const pf = join(run, f);
      if (existsSync(pf)) { try { process.kill(Number(readFileSync(pf, "utf8").trim()), "SIGTERM"); } catch { /* gone */ } }
    }
    // The daemons' exit (they remove their pid files) before the run directory goes.
    for (const end = Date.now() + 10_000; Date.now() < end && ["xenod.pid", "hv.pid"].some((f) => existsSync(join(run, f)));) await new Promise((r) => setTimeout(r, 100));
    rmSync(run, { recursive: true, force: true });
  }
});
