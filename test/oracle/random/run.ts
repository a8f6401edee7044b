/**
 * Building and running the random-sequence binaries under an emulator, restarting after a crash so that one
 * unimplemented instruction does not hide every later sequence of the binary.
 */
import { spawn } from "node:child_process";
import type { Sequence } from "../random-gen.js";
import { parseRecords } from "./compare.js";

export interface Proc { code: number | null; signal: string | null; stdout: Buffer; stderr: string; timedOut: boolean; ms: number }

export function runProc(cmd: string, args: string[], opts: { timeoutMs: number; cwd?: string }): Promise<Proc> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(cmd, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; p.kill("SIGKILL"); }, opts.timeoutMs);
    p.stdout.on("data", (d: Buffer) => out.push(d));
    p.stderr.on("data", (d: Buffer) => { if (err.length < 20000) err += d.toString(); });
    p.on("error", (e) => { err += String(e); });
    p.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, timedOut, ms: Date.now() - t0 });
    });
  });
}

/** Run tasks with at most `limit` in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const res: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => { while (next < items.length) { const i = next++; res[i] = await fn(items[i]!, i); } };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return res;
}

/** An emulator run that did not reach the end of the binary. */
export interface Stop {
  /** Global index of the sequence that produced no record (the emulator died in it, or hung). */
  index: number;
  detail: string;
}

export interface BinaryRun {
  records: Map<number, Buffer>;
  stops: Stop[];
  /** Global indices never run because the restart budget ran out. */
  skipped: number[];
  exitCodes: (number | null)[];
  runs: number;
  ms: number;
}

export interface RestartBudget { restarts: number; deadline: number }

/**
 * Run `cmd [...args, BINARY, start]` from start = 0; whenever the emulator stops early, note the sequence it
 * stopped in and restart from the one after it, while the shared budget allows.
 */
export async function runBinary(cmd: string, args: string[], binary: string, seqs: readonly Sequence[],
                                budget: RestartBudget, timeoutMs: number): Promise<BinaryRun> {
  const byIndex = new Map(seqs.map((s) => [s.index, s]));
  const res: BinaryRun = { records: new Map(), stops: [], skipped: [], exitCodes: [], runs: 0, ms: 0 };
  let start = 0;
  for (;;) {
    const p = await runProc(cmd, [...args, binary, String(start)], { timeoutMs });
    res.runs++; res.ms += p.ms;
    res.exitCodes.push(p.code);
    const parsed = parseRecords(p.stdout, byIndex);
    for (const [k, v] of parsed.records) res.records.set(k, v);
    // Records come in order; the first local index after the last record is where the run stopped.
    let stopLocal = start;
    if (parsed.order.length) stopLocal = parsed.order[parsed.order.length - 1]! - seqs[0]!.index + 1;
    if (p.code === 0 && !p.timedOut && !parsed.error && stopLocal >= seqs.length) break;
    if (stopLocal >= seqs.length) {
      res.stops.push({ index: seqs[seqs.length - 1]!.index, detail: describe(p, parsed.error, "after the last sequence") });
      break;
    }
    res.stops.push({ index: seqs[stopLocal]!.index, detail: describe(p, parsed.error, "") });
    start = stopLocal + 1;
    if (start >= seqs.length) break;
    if (budget.restarts <= 0 || Date.now() > budget.deadline) {
      for (let i = start; i < seqs.length; i++) res.skipped.push(seqs[i]!.index);
      break;
    }
    budget.restarts--;
  }
  return res;
}

function describe(p: Proc, parseError: string | undefined, where: string): string {
  const why = p.timedOut ? "timed out" : p.signal ? `killed by ${p.signal}` : `exit code ${p.code}`;
  const tail = p.stderr.trim().split("\n").slice(-6).join("\n        ");
  return `${why}${where ? " " + where : ""}${parseError ? `; output: ${parseError}` : ""}${tail ? `\n        stderr: ${tail}` : ""}`;
}
