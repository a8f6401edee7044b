/**
 * bench/save/cli: `xeno restore FILE` end to end, in parts — the CLI process (node's start, its modules), its
 * request through xenod to the hypervisor, the hypervisor's restore (read and checked, store, build: thread,
 * machine) and the domain's first guest instruction — with the CPU time of each process.
 *
 *   node dist/bench/save/cli.js FILE [--runs N] [--idle SEC]
 *
 * FILE: a save file of an idle guest (bench/save/run.js --keep FILE). A hypervisor and xenod are started in a
 * new run directory; each round runs `xeno restore FILE` (timed with /usr/bin/time: wall, user, system), reads
 * the hypervisor's parts from the request's answer (its log line), then destroys the domain. Baselines in the
 * same rounds: `node -e ''` (a bare node process) and `xeno list` (the CLI with one request through xenod).
 * Timings never decide pass/fail; record results in docs/benchmarks.md.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const CLI = path.join(root, "dist/src/cli/main.js");
const arg = (name: string, def: number): number => { const k = process.argv.indexOf(name); return k >= 0 ? Number(process.argv[k + 1]) : def; };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => { const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b); return s[s.length >> 1] ?? NaN; };

interface Timed { wall: number; user: number; sys: number; out: string; err: string; code: number | null }

/** Runs `node ARGS…` under /usr/bin/time (its figures in ms), with XENO_RUN_DIR=dir. */
function timed(dir: string, args: string[]): Promise<Timed> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn("/usr/bin/time", ["-f", "TIME %e %U %S", process.execPath, ...args], { env: { ...process.env, XENO_RUN_DIR: dir }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (b: Buffer) => { out += b.toString(); });
    p.stderr.on("data", (b: Buffer) => { err += b.toString(); });
    p.on("exit", (code) => {
      const wall = performance.now() - t0;
      const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(err);
      resolve({ wall, user: m ? Number(m[2]) * 1000 : NaN, sys: m ? Number(m[3]) * 1000 : NaN, out, err: err.replace(/TIME .*\n?/, ""), code });
    });
  });
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (file === undefined || file.startsWith("--") || !fs.existsSync(file)) throw new Error("usage: cli.js FILE [--runs N] (FILE: a save file)");
  const runs = arg("--runs", 5), idle = arg("--idle", 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xeno-bench-cli-"));
  const logFd = fs.openSync(path.join(dir, "hv.log"), "w");
  const hv = spawn(process.execPath, [path.join(root, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "1024"], { stdio: ["ignore", "ignore", logFd] });
  fs.closeSync(logFd);
  const rows: Record<string, number>[] = [];
  try {
    for (let i = 0; i < 100 && !fs.existsSync(path.join(dir, "hv.pid")); i++) await sleep(100);
    const first = await timed(dir, [CLI, "list"]); // starts xenod
    if (first.code !== 0) throw new Error(`xeno list: ${first.err}`);
    process.stderr.write(`xenod started by the first 'xeno list': ${first.wall.toFixed(0)} ms\n`);
    const abs = path.resolve(file);
    for (let k = 0; k < runs; k++) {
      const bare = await timed(dir, ["-e", ""]);
      const list = await timed(dir, [CLI, "list"]);
      const logBefore = fs.readFileSync(path.join(dir, "hv.log"), "utf8").length;
      const r = await timed(dir, [CLI, "restore", "-d", abs]);
      if (r.code !== 0) throw new Error(`xeno restore: ${r.err}`);
      const log = fs.readFileSync(path.join(dir, "hv.log"), "utf8").slice(logBefore);
      const m = /restored from .*?, (\d+) ms: read and checked ([\d.]+) \(CPU ([\d.]+)[^)]*\), store ([\d.]+), build ([\d.]+) \(thread ([\d.]+), machine ([\d.]+)\)(?:; first guest instruction ([\d.]+) ms)?/.exec(log);
      const name = /"name":"([^"]+)"/.exec(fs.readFileSync(abs).subarray(0, 65536).toString("latin1"))?.[1] ?? "bench";
      const row: Record<string, number> = {
        bareWall: bare.wall, bareCpu: bare.user + bare.sys, listWall: list.wall, listCpu: list.user + list.sys,
        restoreWall: r.wall, restoreCpu: r.user + r.sys,
        hvBuilt: m ? Number(m[1]) : NaN, read: m ? Number(m[2]) : NaN, readCpu: m ? Number(m[3]) : NaN, store: m ? Number(m[4]) : NaN,
        build: m ? Number(m[5]) : NaN, thread: m ? Number(m[6]) : NaN, machine: m ? Number(m[7]) : NaN, running: m?.[8] !== undefined ? Number(m[8]) : NaN,
      };
      rows.push(row);
      const f = (x: number): string => x.toFixed(1);
      process.stderr.write(`${k + 1}/${runs}: node -e '' ${f(row.bareWall!)} ms [CPU ${f(row.bareCpu!)}]; xeno list ${f(row.listWall!)} [CPU ${f(row.listCpu!)}]; ` +
        `xeno restore ${f(row.restoreWall!)} [CPU ${f(row.restoreCpu!)}]: hypervisor to running ${f(row.running!)} (read ${f(row.read!)} [CPU ${f(row.readCpu!)}], ` +
        `store ${f(row.store!)}, build ${f(row.build!)}: thread ${f(row.thread!)}, machine ${f(row.machine!)})\n`);
      const d = await timed(dir, [CLI, "destroy", name]);
      if (d.code !== 0) throw new Error(`xeno destroy ${name}: ${d.err}`);
      await sleep(idle * 1000);
    }
    const col = (k: string): string => median(rows.map((r) => r[k]!)).toFixed(1);
    console.log(`xeno restore of ${path.basename(file)}, median of ${runs} (ms; load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}):`);
    console.log(`  node -e '': wall ${col("bareWall")}, CPU ${col("bareCpu")}; xeno list: wall ${col("listWall")}, CPU ${col("listCpu")}`);
    console.log(`  xeno restore: wall ${col("restoreWall")}, CLI CPU ${col("restoreCpu")}; in the hypervisor: request → first guest instruction ${col("running")} ` +
      `(read and checked ${col("read")} [CPU ${col("readCpu")}], store ${col("store")}, build ${col("build")}: thread ${col("thread")}, machine ${col("machine")})`);
  } finally {
    try { process.kill(Number(fs.readFileSync(path.join(dir, "xenod.pid"), "utf8")), "SIGTERM"); } catch { /* not started */ }
    hv.kill("SIGTERM");
    await new Promise((r) => hv.once("exit", r));
    if (process.env.XENO_BENCH_LOG) fs.copyFileSync(path.join(dir, "hv.log"), process.env.XENO_BENCH_LOG);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { process.stderr.write(`bench/save/cli: ${(e as Error).stack}\n`); process.exitCode = 1; });
