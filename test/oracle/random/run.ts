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

export interface RunFrom {
  records: Map<number, Buffer>;
  /** Local index of the sequence the emulator stopped in (no record), or undefined when it ran to the end. */
  stopLocal?: number;
  /** Why it stopped (exit status, output error, stderr tail); also set when it ran to the end but exited badly. */
  detail?: string;
  /** Exited 0 with every record from `start` on. */
  clean: boolean;
  ms: number;
}

/** One run of `cmd [...args, BINARY, start]`; records come in order, so a stop is after the last record. */
export async function runFrom(cmd: string, args: readonly string[], binary: string, seqs: readonly Sequence[],
                              start: number, timeoutMs: number): Promise<RunFrom> {
  const byIndex = new Map(seqs.map((s) => [s.index, s]));
  const p = await runProc(cmd, [...args, binary, String(start)], { timeoutMs });
  const parsed = parseRecords(p.stdout, byIndex);
  let next = start;
  if (parsed.order.length) next = seqs.findIndex((s) => s.index === parsed.order[parsed.order.length - 1]) + 1;
  const clean = p.code === 0 && !p.timedOut && !parsed.error && next >= seqs.length;
  const res: RunFrom = { records: parsed.records, clean, ms: p.ms };
  if (!clean) res.detail = describe(p, parsed.error, next >= seqs.length ? "after the last sequence" : "");
  if (next < seqs.length) res.stopLocal = next;
  return res;
}

function describe(p: Proc, parseError: string | undefined, where: string): string {
  const why = p.timedOut ? "timed out" : p.signal ? `killed by ${p.signal}` : `exit code ${p.code}`;
  const tail = p.stderr.trim().split("\n").slice(-6).join("\n        ");
  return `${why}${where ? " " + where : ""}${parseError ? `; output: ${parseError}` : ""}${tail ? `\n        stderr: ${tail}` : ""}`;
}
