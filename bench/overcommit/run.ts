/**
 * bench/overcommit: one Xen DomU booted as if it shared its pCPU with many others, in minutes instead of hours.
 *
 *   node dist/bench/overcommit/run.js [--run MS] [--gap MS] [--runs N] [--limit S] [--memory MiB] [--out DIR]
 *
 * The domain's clock (common/domain-clock.ts) runs on a warped host clock: the guest runs --run ms of host CPU
 * (default 30), then its clock jumps on to --gap ms (default 1500) after the start of that run, as if it had
 * waited for the other domains; when every vCPU waits, the clock jumps to its next timer (an idle domain). So the
 * guest sees the time pattern of a --gap/--run overcommit (50x by default: bench/density at 100 domains on 2
 * pCPUs gave each domain ~30 ms every ~1.5 s) while the host runs it flat out. Each run prints whether the ready
 * marker came within --limit seconds of host time (default 300), the guest's clock, the instructions retired,
 * the soft-lockup reports, and whether the last of those show the same PC and registers (no progress: the
 * interrupted task never ran between reports). Consoles go to --out (default: a temp directory).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { DomainClock, COUNTER_HZ } from "../../src/common/domain-clock.js";
import { hostNowMs } from "../../src/common/host-clock.js";

const arg = (name: string, def: number): number => { const k = process.argv.indexOf(name); return k >= 0 ? Number(process.argv[k + 1]) : def; };
const RUN_MS = arg("--run", 30), GAP_MS = arg("--gap", 1500), RUNS = arg("--runs", 1), LIMIT_S = arg("--limit", 300);
const MEM = arg("--memory", 64);
const outDir = process.argv.includes("--out") ? process.argv[process.argv.indexOf("--out") + 1]! : mkdtempSync(join(tmpdir(), "xeno-overcommit-"));

const images = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
const kernel = readFileSync(images.kernel), initrd = readFileSync(images.initrd);
console.log(`overcommit ${(GAP_MS / RUN_MS).toFixed(0)}x: ${RUN_MS} ms of CPU per ${GAP_MS} ms of guest time; consoles in ${outDir}`);
for (let k = 1; k <= RUNS; k++) {
  let warp = 0, out = "";
  const clock = new DomainClock(() => hostNowMs() + warp);
  const m = new Machine({ memMiB: MEM, vcpus: 1, xen: true, kernel, initrd, cmdline: "console=hvc0", clock,
    consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); } });
  const t0 = performance.now();
  let busy = 0, idle = 0;
  while (!out.includes(GUEST_READY_MARKER) && m.state === "running" && performance.now() - t0 < LIMIT_S * 1000) {
    const s = performance.now();
    let w = 0;
    while (performance.now() - s < RUN_MS) { w = m.runSlice(); if (w !== 0) break; }
    if (w > 0) { warp += w; idle++; } else { warp += GAP_MS - (performance.now() - s); busy++; }
  }
  m.flushOut();
  const file = join(outDir, `console-${k}.txt`);
  writeFileSync(file, out);
  // The soft-lockup reports' "pc :" and register lines: identical ones mean the interrupted task never ran.
  const reports = out.split(/watchdog: BUG: soft lockup/).slice(1);
  const regs = reports.map((r) => r.split("\n").filter((l) => /\] (pc :|x2[0-9]:)/.test(l)).map((l) => l.replace(/^\[[^\]]*\] /, "")).join("|"));
  const tail = regs.slice(-5);
  const stuck = tail.length >= 3 && tail.every((x) => x === tail[0] && x !== "");
  console.log(`run ${k}: ${out.includes(GUEST_READY_MARKER) ? "ready" : m.state !== "running" ? `stopped (${m.state}: ${m.reason})` : "NOT ready"} ` +
    `after ${((performance.now() - t0) / 1000).toFixed(1)} s host, guest clock ${(clock.now() / COUNTER_HZ).toFixed(0)} s, ` +
    `${(m.retired / 1e6).toFixed(0)} M instructions, ${busy} busy runs / ${idle} idle jumps, ${reports.length} soft-lockup reports` +
    `${stuck ? ", the last ones with identical PC and registers (no progress)" : ""}; ${file}`);
  m.dispose();
}
process.exit(0);
