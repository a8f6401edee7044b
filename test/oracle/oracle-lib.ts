/**
 * Shared helpers for the oracle tests: run the same static AArch64 program under qemu-aarch64 (the oracle) and under
 * `xeno run-user`, and compare stdout, stderr and exit status byte for byte.
 *
 * Environment knobs (all optional):
 *   XENO_ORACLE_JOBS=2          processes run at once (qemu and xeno runs share the pool)
 *   XENO_ORACLE_TIMEOUT=180     seconds before a Xeno run is killed (qemu gets a third of it, at least 30 s)
 *   XENO_ORACLE_MODE=compare    'compare' (default) or 'qemu': run qemu twice and compare (determinism check,
 *                               useful while `xeno run-user` is not ready)
 *   XENO_ORACLE_FILTER=regex    only run invocations whose name matches
 *   XENO_ORACLE_XENO="cmd ..."  command used instead of `node dist/src/cli/main.js run-user` (split on spaces).
 *                               The default skips bin/xeno's staleness check: with sources being edited
 *                               concurrently it would rebuild mid-suite and print "compiling" on stderr;
 *                               ensureBuilt() builds once before the suite instead.
 *   XENO_ORACLE_QEMU="cmd ..."  command used instead of `qemu-aarch64-static -cpu cortex-a57`
 */
import { spawn, execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { constants as osConstants, tmpdir } from "node:os";
import path, { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

/** Repository root, found relative to this file compiled at dist/test/oracle/oracle-lib.js. */
export const ROOT = path.resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const PROGRAMS_DIR = path.join(ROOT, "test/oracle/programs");
export const BUILD_DIR = path.join(ROOT, "build/oracle");

export const JOBS = Math.max(1, Number(process.env.XENO_ORACLE_JOBS ?? 2) || 2);
export const TIMEOUT_MS = Math.max(5, Number(process.env.XENO_ORACLE_TIMEOUT ?? 180) || 180) * 1000;
export const MODE: "compare" | "qemu" = process.env.XENO_ORACLE_MODE === "qemu" ? "qemu" : "compare";
const FILTER = process.env.XENO_ORACLE_FILTER ? new RegExp(process.env.XENO_ORACLE_FILTER) : undefined;

export function selected(name: string): boolean {
  return FILTER === undefined || FILTER.test(name);
}

/** A counting semaphore: at most `n` holders at once (shared by every run in this process). */
class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
const limiter = new Limiter(JOBS);

export interface RunResult {
  stdout: Buffer;
  stderr: Buffer;
  /** exit code, or null when killed by a signal */
  status: number | null;
  signal: string | null;
  ms: number;
  timedOut: boolean;
  /** set when the process could not be started at all */
  spawnError?: string;
}

/** Spawn `argv` with the given stdin, collecting output. Never rejects. */
export function runProcess(argv: string[], opts: { stdin?: Buffer; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  return limiter.run(
    () =>
      new Promise<RunResult>((resolve) => {
        const start = process.hrtime.bigint();
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let timedOut = false;
        let spawnError: string | undefined;
        const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env ?? oracleEnv(), stdio: ["pipe", "pipe", "pipe"], detached: true });
        const timer = setTimeout(() => {
          timedOut = true;
          // The runner may have children (bin/xeno is a shell script that execs node): kill the process group.
          try {
            if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
          } catch {
            child.kill("SIGKILL");
          }
        }, opts.timeoutMs);
        child.stdout.on("data", (b: Buffer) => out.push(b));
        child.stderr.on("data", (b: Buffer) => err.push(b));
        child.stdin.on("error", () => {}); // EPIPE when the program does not read its stdin
        child.on("error", (e) => { spawnError = e.message; });
        child.on("close", (code, signal) => {
          clearTimeout(timer);
          resolve({
            stdout: Buffer.concat(out), stderr: Buffer.concat(err), status: code, signal,
            ms: Number(process.hrtime.bigint() - start) / 1e6, timedOut, spawnError,
          });
        });
        child.stdin.end(opts.stdin ?? Buffer.alloc(0));
      }),
  );
}

/** A small fixed environment, identical for both emulators (the guest sees it through both runners). */
export function oracleEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", LC_ALL: "C", LANG: "C", TZ: "UTC", ...extra };
}

/**
 * The environment of the `xeno run-user` side: oracleEnv() plus this process's XENO_JIT_* settings (the
 * compiler's switches: programs-jit and busybox-jit set XENO_JIT_HOT=1, verify-page-cross XENO_JIT_VERIFY=1).
 * run-user keeps XENO_* out of the guest's environment, so the guest still sees what it sees under qemu. Until
 * 2026-12-07 (session 25) they were not passed: those suites ran at the default threshold.
 */
export function xenoEnv(): NodeJS.ProcessEnv {
  const jit: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith("XENO_JIT_")) jit[k] = v;
  return oracleEnv(jit);
}

export function qemuCommand(): string[] {
  return process.env.XENO_ORACLE_QEMU ? process.env.XENO_ORACLE_QEMU.split(/\s+/).filter(Boolean) : ["qemu-aarch64-static", "-cpu", "cortex-a57"];
}

export function xenoCommand(): string[] {
  if (process.env.XENO_ORACLE_XENO) return process.env.XENO_ORACLE_XENO.split(/\s+/).filter(Boolean);
  // What bin/xeno does after its build step.
  return [process.execPath, "--max-old-space-size=4096", path.join(ROOT, "dist/src/cli/main.js"), "run-user"];
}

/** Build dist/ once (scripts/build.sh is quiet when nothing changed); call from a before() hook. */
export async function ensureBuilt(): Promise<void> {
  if (MODE === "qemu" || process.env.XENO_ORACLE_XENO) return;
  await execFileP(path.join(ROOT, "scripts/build.sh"), [], { maxBuffer: 1 << 22 });
}

/**
 * Compile test/oracle/programs/NAME.c with `aarch64-linux-gnu-gcc -static OPT` into build/oracle/bin/, cached by
 * a hash of the sources and flags. Returns the binary's path.
 */
const compiling = new Map<string, Promise<string>>();
export function compileProgram(name: string, opt = "-O2"): Promise<string> {
  const key = `${name} ${opt}`;
  let p = compiling.get(key);
  if (!p) {
    p = doCompile(name, opt);
    compiling.set(key, p);
  }
  return p;
}

async function doCompile(name: string, opt: string): Promise<string> {
  const src = path.join(PROGRAMS_DIR, `${name}.c`);
  const flags = ["-static", opt, "-std=gnu11", "-Wall", "-Wno-misleading-indentation", "-Wno-parentheses"];
  const h = createHash("sha256");
  h.update(flags.join(" "));
  h.update(readFileSync(src));
  h.update(readFileSync(path.join(PROGRAMS_DIR, "common.h")));
  const tag = h.digest("hex").slice(0, 12);
  const binDir = path.join(BUILD_DIR, "bin");
  mkdirSync(binDir, { recursive: true });
  const out = path.join(binDir, `${name}${opt}-${tag}`);
  if (existsSync(out)) return out;
  const tmp = `${out}.tmp${process.pid}`;
  await limiter.run(() => execFileP("aarch64-linux-gnu-gcc", [...flags, "-o", tmp, src, "-lm"], { maxBuffer: 1 << 22 }));
  renameSync(tmp, out);
  return out;
}

/** One program run, compared between the two emulators. */
export interface Invocation {
  /** label shown in test names and reports */
  name: string;
  /** path of the static AArch64 binary */
  program: string;
  /** arguments; the string "{tmp}" is replaced by a fresh empty directory for each run */
  args: string[];
  stdin?: Buffer | string;
  /** working directory (default: build/oracle) */
  cwd?: string;
}

export interface Comparison {
  ok: boolean;
  qemu: RunResult;
  other: RunResult;
  report: string;
}

export const summary = { compared: 0, passed: 0, failed: 0, qemuMs: 0, xenoMs: 0, failures: [] as string[] };

async function runOne(cmd: string[], inv: Invocation, timeoutMs: number, env: NodeJS.ProcessEnv = oracleEnv()): Promise<RunResult> {
  const needTmp = inv.args.includes("{tmp}");
  const dir = needTmp ? mkdtempSync(path.join(tmpdir(), "xeno-oracle-")) : undefined;
  try {
    const args = inv.args.map((a) => (a === "{tmp}" ? dir! : a));
    const cwd = inv.cwd ?? BUILD_DIR;
    mkdirSync(cwd, { recursive: true });
    const stdin = inv.stdin === undefined ? undefined : Buffer.isBuffer(inv.stdin) ? inv.stdin : Buffer.from(inv.stdin);
    return await runProcess([...cmd, inv.program, ...args], { stdin, cwd, timeoutMs, env });
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Run under qemu and under Xeno (or qemu again in XENO_ORACLE_MODE=qemu), and compare. */
export async function compare(inv: Invocation): Promise<Comparison> {
  const otherCmd = MODE === "qemu" ? qemuCommand() : xenoCommand();
  const [qemu, other] = await Promise.all([
    runOne(qemuCommand(), inv, Math.max(30_000, TIMEOUT_MS / 3)),
    runOne(otherCmd, inv, TIMEOUT_MS, MODE === "qemu" ? oracleEnv() : xenoEnv()),
  ]);
  const problems: string[] = [];
  if (qemu.spawnError || qemu.timedOut) problems.push(`oracle (qemu) itself failed: ${qemu.spawnError ?? "timed out"}`);
  if (!sameStatus(qemu, other)) problems.push(`exit status: qemu ${describeStatus(qemu)}, ${otherName()} ${describeStatus(other)}`);
  const d1 = firstDifference("stdout", qemu.stdout, other.stdout);
  if (d1) problems.push(d1);
  const d2 = firstDifference("stderr", guestStderr(qemu.stderr), other.stderr);
  if (d2) problems.push(d2);
  const ok = problems.length === 0;
  summary.compared++;
  summary.qemuMs += qemu.ms;
  summary.xenoMs += other.ms;
  if (ok) summary.passed++;
  else {
    summary.failed++;
    summary.failures.push(`${inv.name}: ${problems[0].split("\n")[0]}`);
  }
  const shown = inv.program.startsWith(`${ROOT}/`) ? path.relative(ROOT, inv.program) : inv.program;
  const cmdline = [shown, ...inv.args].map(shellQuote).join(" ");
  const header = `${inv.name}: ${cmdline}${inv.stdin !== undefined ? ` < (${Buffer.byteLength(inv.stdin)} bytes of stdin)` : ""}`;
  const timing = `qemu ${qemu.ms.toFixed(0)} ms, ${otherName()} ${other.ms.toFixed(0)} ms`;
  const report = ok ? `${header}\n  identical (${timing})` : `${header}\n  MISMATCH (${timing})\n${problems.map((p) => indent(p, "  ")).join("\n")}${tailOfStderr(other)}`;
  return { ok, qemu, other, report };
}

function otherName(): string {
  return MODE === "qemu" ? "qemu(2nd run)" : "xeno";
}

/**
 * Exit statuses compare equal when identical, or when one process died of signal N and the other exited with
 * 128+N: qemu re-raises a guest's fatal signal on itself, while `xeno run-user` (a Node process) reports it as
 * exit 128+N, the shell's convention.
 */
function sameStatus(a: RunResult, b: RunResult): boolean {
  if (a.timedOut || b.timedOut || b.spawnError) return false;
  return normalStatus(a) === normalStatus(b);
}

function normalStatus(r: RunResult): number | null {
  if (r.signal) {
    const n = osConstants.signals[r.signal as keyof typeof osConstants.signals];
    return n === undefined ? -1 : 128 + n;
  }
  return r.status;
}

/** qemu's own report of a guest's fatal signal is emulator chatter, not guest output: drop it before comparing. */
function guestStderr(b: Buffer): Buffer {
  const s = b.toString("latin1");
  if (!s.includes("qemu: uncaught target signal")) return b;
  return Buffer.from(s.replace(/^qemu: uncaught target signal [^\n]*\n?/gm, ""), "latin1");
}

function describeStatus(r: RunResult): string {
  if (r.spawnError) return `could not start (${r.spawnError})`;
  if (r.timedOut) return `timed out after ${(r.ms / 1000).toFixed(0)} s`;
  return r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
}

/** When Xeno's run fails, its own diagnostics (at the end of stderr) are the most useful thing to show. */
function tailOfStderr(r: RunResult): string {
  if (r.stderr.length === 0) return "";
  const lines = r.stderr.toString("utf8").trimEnd().split("\n");
  const tail = lines.slice(-8).map((l) => `    | ${truncate(l, 200)}`).join("\n");
  return `\n  last lines of ${otherName()} stderr:\n${tail}`;
}

/** Describe the first difference between two byte streams: line number, byte offset, and both lines. */
export function firstDifference(what: string, a: Buffer, b: Buffer): string | undefined {
  if (a.equals(b)) return undefined;
  let i = 0;
  const n = Math.min(a.length, b.length);
  while (i < n && a[i] === b[i]) i++;
  const lineNo = countNewlines(a, i) + 1;
  const lineA = lineAt(a, i);
  const lineB = lineAt(b, i);
  const lines = [
    `${what} differs at byte ${i} (line ${lineNo}); qemu ${a.length} bytes, ${otherName()} ${b.length} bytes`,
    `  qemu: ${i >= a.length ? "<end of output>" : JSON.stringify(truncate(lineA, 300))}`,
    `  ${otherName()}: ${i >= b.length ? "<end of output>" : JSON.stringify(truncate(lineB, 300))}`,
  ];
  const prev = previousLine(a, i);
  if (prev !== undefined) lines.splice(1, 0, `  (previous line, same in both: ${JSON.stringify(truncate(prev, 200))})`);
  return lines.join("\n");
}

function countNewlines(buf: Buffer, end: number): number {
  let c = 0;
  for (let k = 0; k < end; k++) if (buf[k] === 10) c++;
  return c;
}

function lineAt(buf: Buffer, pos: number): string {
  if (pos >= buf.length) return "";
  // (lastIndexOf with a negative offset would count from the end, hence the guard)
  const s = pos === 0 ? 0 : buf.lastIndexOf(10, pos - 1) + 1;
  let e = buf.indexOf(10, pos);
  if (e < 0) e = buf.length;
  return buf.subarray(s, e).toString("utf8");
}

function previousLine(buf: Buffer, pos: number): string | undefined {
  if (pos === 0) return undefined;
  const s = buf.lastIndexOf(10, pos - 1);
  if (s <= 0) return undefined;
  const ps = buf.lastIndexOf(10, s - 1) + 1;
  return buf.subarray(ps, s).toString("utf8");
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}

function indent(s: string, pre: string): string {
  return s.split("\n").map((l) => pre + l).join("\n");
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Print the run's totals (stderr, so it shows under `node --test` whichever reporter is used). */
export function printSummary(suite: string): void {
  const s = summary;
  const lines = [
    `${suite}: ${s.compared} invocations compared (mode ${MODE}), ${s.passed} identical, ${s.failed} different; ` +
      `qemu ${(s.qemuMs / 1000).toFixed(1)} s, ${otherName()} ${(s.xenoMs / 1000).toFixed(1)} s total`,
    ...s.failures.map((f) => `  FAIL ${f}`),
  ];
  process.stderr.write(`${lines.join("\n")}\n`);
  try {
    mkdirSync(BUILD_DIR, { recursive: true });
    writeFileSync(path.join(BUILD_DIR, `${suite}-summary.txt`), `${lines.join("\n")}\n`);
  } catch {
    // the summary file is a convenience only
  }
}

/** Run scripts/fetch-busybox.sh (idempotent) and return the busybox binary's path. */
export async function fetchBusybox(): Promise<string> {
  const { stdout } = await execFileP(path.join(ROOT, "scripts/fetch-busybox.sh"), [], { maxBuffer: 1 << 20 });
  const p = stdout.trim().split("\n").pop() ?? "";
  if (!existsSync(p)) throw new Error(`fetch-busybox.sh printed '${p}', which does not exist`);
  return p;
}
