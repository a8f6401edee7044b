/**
 * CPU benchmark: the same CPU-bound AArch64 programs under Xeno (`xeno run-user`, as `node dist/src/cli/main.js
 * run-user` after one build: bin/xeno's per-call build check is no part of either program) and qemu-aarch64-static,
 * runs alternated, median of N runs each; prints both medians, the ratio, and Xeno's guest instructions per
 * second (from the `xeno-stats: instructions=N seconds=S` line that XENO_STATS=1 makes the runner print).
 *
 *   node dist/bench/cpu/run.js [--runs N] [--only NAME[,NAME]] [--scale F] [--no-qemu] [--timeout SEC] [--baseline DIR]
 *
 * `--baseline DIR`: also run the Xeno built in DIR (another checkout, e.g. `git worktree add /tmp/base REV &&
 * (cd /tmp/base && npm ci && scripts/build.sh)`) in the same alternation, for an A/B of a change in one run.
 *
 * Each run also reports its CPU time (user + system, from /usr/bin/time), and a `busybox true` run ("startup")
 * gives start-up alone, printed apart from the workloads.
 *
 * Workloads: gzip round trip of a few MiB (busybox gzip -c | gunzip -c, as two runs), sha256sum of 16 MiB
 * (busybox), and test/oracle/programs/coremark_like.c (compiled with aarch64-linux-gnu-gcc -static -O2).
 */
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path, { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const OUT = path.join(ROOT, "build/bench-cpu");

interface Options { runs: number; only?: string[]; scale: number; qemu: boolean; timeoutMs: number; baseline?: string }

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 5, scale: 1, qemu: true, timeoutMs: 1800_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--runs") o.runs = Math.max(1, parseInt(val(), 10));
    else if (a === "--only") o.only = val().split(",");
    else if (a === "--scale") o.scale = Math.max(0.001, Number(val()));
    else if (a === "--no-qemu") o.qemu = false;
    else if (a === "--timeout") o.timeoutMs = Number(val()) * 1000;
    else if (a === "--baseline") o.baseline = path.resolve(val());
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: node dist/bench/cpu/run.js [--runs N] [--only gzip,sha256,kernel] [--scale F] [--no-qemu] [--timeout SEC] [--baseline DIR]\n");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

interface Workload { name: string; program: string; args: string[]; stdin?: string; describe: string }

interface Run { seconds: number; cpu: number; status: number | null; stdoutHash: string; instructions?: number; guestSeconds?: number; stderrTail: string }

/**
 * Each run goes through /usr/bin/time, which prints the child's user + system CPU seconds on this line (stderr):
 * on a shared, loaded host CPU time says more than wall time.
 */
const CPU_TAG = "bench-cpu-time:";

function runOnce(cmd: string[], w: Workload, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const child = spawn("/usr/bin/time", ["-f", `${CPU_TAG} %U %S`, ...cmd, w.program, ...w.args], { env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    const hash = createHash("sha256");
    let err = "";
    const timer = setTimeout(() => { try { process.kill(-child.pid!, "SIGKILL"); } catch { child.kill("SIGKILL"); } }, timeoutMs);
    child.stdout.on("data", (b: Buffer) => hash.update(b));
    child.stderr.on("data", (b: Buffer) => { err = (err + b.toString("latin1")).slice(-4000); });
    child.stdin.on("error", () => {});
    child.on("close", (code) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const m = /xeno-stats: instructions=(\d+) seconds=([\d.eE+-]+)/.exec(err);
      const t = new RegExp(`${CPU_TAG} ([\\d.]+) ([\\d.]+)`).exec(err);
      resolve({ seconds, cpu: t ? Number(t[1]) + Number(t[2]) : NaN, status: code, stdoutHash: hash.digest("hex").slice(0, 16), instructions: m ? Number(m[1]) : undefined,
        guestSeconds: m ? Number(m[2]) : undefined,
        stderrTail: err.split("\n").filter((l) => !l.startsWith("xeno-stats:") && !l.startsWith(CPU_TAG) && !l.startsWith("Command exited")).slice(-3).join(" | ") });
    });
    if (w.stdin) {
      const rs = readFileSync(w.stdin);
      child.stdin.end(rs);
    } else child.stdin.end();
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Deterministic input data: text-like and binary mixed so gzip has real work. */
function makeInput(file: string, bytes: number): void {
  if (existsSync(file) && readFileSync(file).length === bytes) return;
  const b = Buffer.alloc(bytes);
  let s = 0x12345678;
  const words = ["lorem", "ipsum", "dolor", "sit", "amet", "xeno", "qemu", "aarch64", "kernel", "page", "\n"];
  let i = 0;
  while (i < bytes) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    if ((s & 7) === 0) { b[i++] = s >>> 24; continue; }
    const w = words[(s >>> 8) % words.length];
    for (let k = 0; k < w.length && i < bytes; k++) b[i++] = w.charCodeAt(k);
    if (i < bytes) b[i++] = 32;
  }
  writeFileSync(file, b);
}

function compileKernel(): string {
  const src = path.join(ROOT, "test/oracle/programs/coremark_like.c"); // the oracle suite proves it correct
  const tag = createHash("sha256").update(readFileSync(src)).digest("hex").slice(0, 12);
  const out = path.join(OUT, `kernel-O2-${tag}`);
  if (!existsSync(out)) {
    execFileSync("aarch64-linux-gnu-gcc", ["-static", "-O2", "-o", `${out}.tmp`, src], { stdio: "inherit" });
    renameSync(`${out}.tmp`, out);
  }
  return out;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  mkdirSync(OUT, { recursive: true });
  const busybox = execFileSync(path.join(ROOT, "scripts/fetch-busybox.sh"), { encoding: "utf8" }).trim();
  const gzMiB = Math.max(1, Math.round(4 * o.scale));
  const shaMiB = Math.max(1, Math.round(16 * o.scale));
  const gzIn = path.join(OUT, `gzip-input-${gzMiB}MiB.bin`);
  const shaIn = path.join(OUT, `sha-input-${shaMiB}MiB.bin`);
  makeInput(gzIn, gzMiB << 20);
  makeInput(shaIn, shaMiB << 20);
  const gzOut = path.join(OUT, `gzip-input-${gzMiB}MiB.bin.gz`);
  if (!existsSync(gzOut)) writeFileSync(gzOut, execFileSync("qemu-aarch64-static", [busybox, "gzip", "-c", gzIn], { maxBuffer: 1 << 28 }));
  const kernel = compileKernel();
  const kernelIters = String(Math.max(1, Math.round(300 * o.scale)));
  const all: Workload[] = [
    { name: "gzip", program: busybox, args: ["gzip", "-c", gzIn], describe: `busybox gzip -c, ${gzMiB} MiB` },
    { name: "gunzip", program: busybox, args: ["gunzip", "-c", gzOut], describe: `busybox gunzip -c of the above` },
    { name: "sha256", program: busybox, args: ["sha256sum", shaIn], describe: `busybox sha256sum, ${shaMiB} MiB` },
    { name: "kernel", program: kernel, args: [kernelIters], describe: `coremark_like.c -O2, ${kernelIters} iterations` },
  ];
  const work = o.only ? all.filter((w) => o.only!.some((n) => w.name.startsWith(n))) : all;
  // Node on the built CLI, as bin/xeno runs it but without its per-call build check (bash and scripts/build.sh's
  // `find` over the sources: 0.02–0.2 s of each run's wall time, in neither program's work). The build check
  // happens once, below (and the baseline must have been built: checked below).
  const cli = (root: string): string[] => [process.execPath, "--max-old-space-size=4096", path.join(root, "dist/src/cli/main.js"), "run-user"];
  const xeno = cli(ROOT);
  const qemu = ["qemu-aarch64-static", "-cpu", "cortex-a57"];
  const base = o.baseline === undefined ? null : cli(o.baseline);
  if (base !== null && !existsSync(path.join(o.baseline!, "dist/src/cli/main.js"))) throw new Error(`--baseline ${o.baseline}: not built (scripts/build.sh there)`);
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, LC_ALL: "C", XENO_STATS: "1" };
  // Build once up front so bin/xeno's staleness check does not land inside the first timed run.
  execFileSync(path.join(ROOT, "scripts/build.sh"), { stdio: "inherit" });
  process.stdout.write(`xeno CPU benchmark: ${o.runs} runs each, alternated${o.qemu ? "" : " (xeno only)"}\n`);
  const rows: string[] = [];
  // Start-up on its own: `busybox true` (8,712 guest instructions in the runs of 2026-12-08), so what each workload's time holds
  // of Node's start, module loading and the runner's set-up can be read beside it.
  const startup: Workload = { name: "startup", program: busybox, args: ["true"], describe: "busybox true: start-up, module loading, exit" };
  for (const w of [startup, ...work]) {
    const xs: number[] = [], qs: number[] = [], ips: number[] = [], bs: number[] = [];
    const xc: number[] = [], qc: number[] = [], bc: number[] = [];
    let note = "";
    for (let r = 0; r < o.runs; r++) {
      const x = await runOnce(xeno, w, o.timeoutMs, env);
      xs.push(x.seconds); xc.push(x.cpu);
      if (x.instructions !== undefined) ips.push(x.instructions / (x.guestSeconds && x.guestSeconds > 0 ? x.guestSeconds : x.seconds));
      let q: Run | undefined;
      if (o.qemu) { q = await runOnce(qemu, w, o.timeoutMs, env); qs.push(q.seconds); qc.push(q.cpu); }
      let b: Run | undefined;
      if (base !== null) {
        b = await runOnce(base, w, o.timeoutMs, env);
        bs.push(b.seconds); bc.push(b.cpu);
        if (b.stdoutHash !== x.stdoutHash) note = " OUTPUT DIFFERS from the baseline";
      }
      if (x.status !== 0) note = ` xeno exit ${x.status}: ${x.stderrTail}`;
      else if (q && q.stdoutHash !== x.stdoutHash) note = " OUTPUT DIFFERS from qemu";
      const both = (v: Run): string => `${v.seconds.toFixed(3)} s (${v.cpu.toFixed(2)} s CPU)`;
      process.stdout.write(`  ${w.name} run ${r + 1}: xeno ${both(x)}${q ? `, qemu ${both(q)}` : ""}` +
        `${b ? `, baseline ${both(b)}` : ""}${x.instructions !== undefined ? `, ${x.instructions} instructions` : ""}\n`);
    }
    const mx = median(xs), mq = qs.length ? median(qs) : NaN;
    const mips = ips.length ? `${(median(ips) / 1e6).toFixed(1)} M guest insn/s` : "no xeno-stats line";
    const mb = bs.length ? median(bs) : NaN;
    const mxc = median(xc), mqc = qc.length ? median(qc) : NaN, mbc = bc.length ? median(bc) : NaN;
    const vsBase = Number.isNaN(mb) ? "" : `   baseline ${mb.toFixed(3)} s (this build ${((mx / mb - 1) * 100).toFixed(1)} %), CPU ${mbc.toFixed(2)} s (this build ${((mxc / mbc - 1) * 100).toFixed(1)} %)`;
    const row = `${w.name.padEnd(7)} xeno ${mx.toFixed(3).padStart(9)} s (CPU ${mxc.toFixed(2)} s)   qemu ${Number.isNaN(mq) ? "      n/a" : mq.toFixed(3).padStart(9)} s (CPU ${mqc.toFixed(2)} s)   ` +
      `ratio ${Number.isNaN(mq) ? "n/a" : (mx / mq).toFixed(1).padStart(6)}x wall, ${Number.isNaN(mqc) ? "n/a" : (mxc / Math.max(mqc, 0.005)).toFixed(1)}x CPU   ${mips}${vsBase}   (${w.describe})${note}`;
    if (w === startup) process.stdout.write(`start-up, medians: ${row}\n`);
    else rows.push(row);
  }
  process.stdout.write(`medians:\n${rows.map((r) => `  ${r}`).join("\n")}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/cpu: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
