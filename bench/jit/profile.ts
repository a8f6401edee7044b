/**
 * bench/jit/profile: where a kernel boot's instructions run — compiled blocks or the interpreter — and, for the
 * interpreted ones, which encodings they are (the translator's to-do list, by execution count).
 *
 *   XENO_JIT_PROFILE=1 node dist/bench/jit/profile.js [--insns N] [--vcpus N]
 *
 * Boots the demo images as a Xen DomU in this process (no toolstack) for N guest instructions (default 400 M),
 * then prints the share of instructions run compiled, the engine's counters, and the top interpreted encodings.
 * Profiling (XENO_JIT_PROFILE=1, read by src/cpu/arm64/cpu.ts) slows the interpreter; use it for shares, not time.
 */
import { readFileSync, readdirSync } from "node:fs";
import { ensureImages } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { jitProfile } from "../../src/cpu/arm64/cpu.js";

function arg(name: string, def: number): number {
  const k = process.argv.indexOf(name);
  return k >= 0 ? Number(process.argv[k + 1]) : def;
}

/**
 * User+system CPU seconds of each of this process's threads (Linux /proc), busiest first: the vCPU's thread is
 * the main one; the compile worker and V8's helpers are the others. Less disturbed by other load than wall time.
 */
function threadCpu(): string {
  const tick = 100; // USER_HZ
  try {
    const rows = readdirSync("/proc/self/task").map((tid) => {
      const st = readFileSync(`/proc/self/task/${tid}/stat`, "latin1");
      const name = st.slice(st.indexOf("(") + 1, st.lastIndexOf(")"));
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      return { name: tid === String(process.pid) ? "main" : name, s: (Number(f[11]) + Number(f[12])) / tick };
    }).filter((r) => r.s >= 0.05).sort((a, b) => b.s - a.s);
    return rows.map((r) => `${r.name} ${r.s.toFixed(2)}`).join(", ");
  } catch { return "(no /proc)"; }
}

const insns = arg("--insns", 400e6), vcpus = arg("--vcpus", 1);
const images = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
let out = "";
const m = new Machine({
  memMiB: 256, vcpus, xen: true,
  kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd), cmdline: "console=hvc0",
  consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
});
const t0 = performance.now();
let last = 0, lastInterp = 0, lastCompiled = 0, lastBlocks = 0, lastMs = 0;
while (m.board.retired < insns && m.state === "running") {
  m.runSlice();
  if (m.board.retired - last > 50e6) {
    last = m.board.retired;
    // Per phase (each ~50 M instructions): the interpreted share (XENO_JIT_PROFILE=1), blocks made, time compiling.
    const pr = jitProfile(), st = m.board.jitStats();
    let phase = "";
    if (pr !== null) {
      const di = pr.interpreted - lastInterp, dc = pr.compiled - lastCompiled;
      phase += `, interpreted ${(100 * di / Math.max(1, di + dc)).toFixed(1)} %`;
      lastInterp = pr.interpreted; lastCompiled = pr.compiled;
    }
    if (st !== null) {
      phase += `, +${st.blocks - lastBlocks} blocks, ${(st.compileMs - lastMs).toFixed(0)} ms compiling`;
      lastBlocks = st.blocks; lastMs = st.compileMs;
    }
    process.stderr.write(`${(last / 1e6).toFixed(0)} M instructions, ${((performance.now() - t0) / 1000).toFixed(1)} s${phase}\n`);
  }
}
const secs = (performance.now() - t0) / 1000;
const p = jitProfile();
console.log(`${m.board.retired} instructions in ${secs.toFixed(1)} s (${(m.board.retired / secs / 1e6).toFixed(1)} M/s); console tail: ${JSON.stringify(out.slice(-120))}`);
if (p !== null) {
  const total = p.compiled + p.interpreted;
  console.log(`compiled ${(100 * p.compiled / total).toFixed(1)} %, interpreted ${(100 * p.interpreted / total).toFixed(1)} %, block calls ${p.calls} (${(p.compiled / p.calls).toFixed(1)} instructions per call)`);
  const top = [...p.byName.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40);
  for (const [name, n] of top) console.log(`${(100 * n / total).toFixed(2).padStart(6)} %  ${name}`);
  // The instructions the translator refused where a hot block wanted them (CodeCache.ends): each ends a block.
  console.log(`untranslatable where hot: ${(100 * p.ends / total).toFixed(2)} % of all instructions, by encoding:`);
  const ends = [...p.endsByName.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
  for (const [name, n] of ends) console.log(`${(100 * n / total).toFixed(3).padStart(7)} %  ${name}`);
}
const s = m.board.jitStats();
if (s !== null) console.log(`engine: ${JSON.stringify(s)}`);
console.log(`decode cache: ${JSON.stringify(m.board.codeStats())}`);
console.log(`CPU seconds by thread: ${threadCpu()}`);
process.exit(0);
