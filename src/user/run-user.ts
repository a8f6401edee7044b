/**
 * `xeno run-user [--mem MiB] PROGRAM [ARGS...]`: runs a static AArch64 Linux program on the interpreter, with
 * this process's stdin/stdout/stderr, environment and exit status passed through (exit 128+N when the guest
 * dies of signal N). XENO_STATS=1 prints `xeno-stats: instructions=N seconds=S mips=M` on stderr at exit; with
 * XENO_JIT_PROFILE=1 as well, the share of instructions run compiled and the most-run interpreted encodings.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserProcess } from "./process.js";
import { jitProfile } from "../cpu/arm64/cpu.js";
import { VERIFY, verifyStats } from "../cpu/arm64/jit/verify.js";

const USAGE = "usage: xeno run-user [--mem MiB] PROGRAM [ARGS...]\n";

export async function runUserMain(args: string[]): Promise<number> {
  let mem = 1024;
  while (args.length > 0 && args[0].startsWith("--")) {
    const a = args.shift()!;
    if (a === "--") break;
    if (a === "--mem") {
      const v = Number(args.shift());
      if (!Number.isInteger(v) || v < 16 || v > 2000) { process.stderr.write(`xeno run-user: --mem wants MiB between 16 and 2000\n`); return 2; }
      mem = v;
    } else if (a === "--help") { process.stdout.write(USAGE); return 0; }
    else { process.stderr.write(`xeno run-user: unknown option ${a}\n${USAGE}`); return 2; }
  }
  const prog = args[0];
  if (prog === undefined) { process.stderr.write(USAGE); return 2; }
  // Like a shell: a bare name is looked up on PATH, a name with a slash is a path.
  let file = prog;
  if (!prog.includes("/")) {
    const found = (process.env.PATH ?? "").split(":").map((d) => path.join(d || ".", prog)).find((p) => fs.existsSync(p));
    if (found !== undefined) file = found;
  }
  let image: Uint8Array;
  try { image = fs.readFileSync(file); }
  catch (e) { process.stderr.write(`xeno run-user: cannot read ${prog}: ${(e as Error).message}\n`); return 127; }
  const env = Object.entries(process.env).filter(([k]) => !k.startsWith("XENO_")).map(([k, v]) => `${k}=${v}`);
  let p: UserProcess;
  try {
    p = new UserProcess({ memBytes: mem * 1024 * 1024, argv: args, env, execPath: file, image });
  } catch (e) {
    process.stderr.write(`xeno run-user: ${(e as Error).message}\n`);
    return 126;
  }
  const t0 = performance.now();
  const code = p.run();
  if (process.env.XENO_STATS) {
    const s = (performance.now() - t0) / 1000;
    const j = p.jit.stats;
    process.stderr.write(`xeno-stats: instructions=${p.cpu.retired} seconds=${s.toFixed(3)} mips=${(p.cpu.retired / s / 1e6).toFixed(1)}` +
      ` jit-blocks=${j.blocks} jit-modules=${j.modules} jit-compile-ms=${j.compileMs.toFixed(1)} jit-failed=${j.failed} slow-reads=${j.slowReads} slow-writes=${j.slowWrites}\n`);
    if (VERIFY) {
      const v = verifyStats;
      process.stderr.write(`xeno-stats: verify mode: ${v.calls} compiled calls, ${v.insns} instructions checked against the interpreter, ` +
        `${v.skipped} calls not checked (they reached a device), ${v.pages} pages compared, ` +
        `${v.partial} stopped at a page-crossing store's fault (its bytes before the fault set aside)\n`);
    }
    const prof = jitProfile();
    if (prof !== null) {
      const total = prof.compiled + prof.interpreted;
      const top = [...prof.byName].sort((a, b) => b[1] - a[1]).slice(0, 25);
      process.stderr.write(`xeno-stats: compiled ${(100 * prof.compiled / total).toFixed(1)} %, interpreted ${(100 * prof.interpreted / total).toFixed(1)} %, ` +
        `${(prof.compiled / Math.max(1, prof.calls)).toFixed(1)} instructions per block call; interpreted by encoding:\n` +
        top.map(([n, c]) => `  ${n} ${(100 * c / total).toFixed(2)} %`).join("\n") + "\n");
    }
  }
  return code;
}
