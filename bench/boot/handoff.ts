/**
 * bench/boot/handoff: where a threaded SMP boot waits. Boots the bench/boot guest (the same kernel, initramfs and
 * command line) with vCPU threads and the hand-off counters on (XENO_VCPU_THREADS=1, XENO_HANDOFF_STATS: src/
 * machine/handoff-stats.ts) until its ready marker, then prints, per thread, each kind of cross-thread hand-off:
 * how many, their total and mean time, and the largest.
 *
 *   node dist/bench/boot/handoff.js [--vcpus N] [--memory MiB] [--timeout SEC] [--threads 0|1] [--console FILE] [--poweroff]
 *
 * `--poweroff`: after the marker, `poweroff -f` in the guest and wait for the process to end instead of killing
 * it. `--prof DIR`: run it under `node --cpu-prof --cpu-prof-dir DIR` (one profile per thread), with --poweroff.
 *   node dist/bench/boot/handoff.js --read DIR      (print the counters another run left in DIR)
 *
 * Diagnostics only: the counters cost a clock read per event, so the boot's own time here is not a benchmark.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import type { HandoffDump } from "../../src/machine/handoff-stats.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function arg(name: string, def: string): string {
  const k = process.argv.indexOf(name);
  return k >= 0 ? process.argv[k + 1]! : def;
}

/** Prints the counters the threads left in `dir`. */
export function report(dir: string): void {
  const dumps = fs.readdirSync(dir).filter((f) => f.startsWith("handoff-") && f.endsWith(".json"))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as HandoffDump)
    .sort((a, b) => a.thread.localeCompare(b.thread));
  for (const d of dumps) {
    console.log(`${d.thread}: ${(d.instructions / 1e6).toFixed(1)} M instructions, CPU ${d.cpuS.toFixed(2)} s, waited for a host CPU ${d.runqueueS.toFixed(2)} s`);
    for (const [name, e] of Object.entries(d.events)) {
      const mean = e.n > 0 ? e.ms / e.n : 0;
      console.log(`  ${name.padEnd(16)} ${String(e.n).padStart(9)}  ${(e.ms / 1000).toFixed(3).padStart(9)} s  mean ${(mean * 1000).toFixed(1).padStart(8)} µs  max ${e.maxMs.toFixed(2).padStart(8)} ms`);
    }
    if (d.ran) console.log(`  ran: ${(d.ran.compiled / 1e6).toFixed(1)} M instructions compiled, ${(d.ran.interpreted / 1e6).toFixed(1)} M interpreted (XENO_JIT_PROFILE=1)`);
    if (d.jit) console.log(`  compiled: ${d.jit.blocks} blocks, ${d.jit.modules} modules, ${d.jit.insns} instructions, ${(d.jit.compileMs / 1000).toFixed(2)} s compiling (translating ${((d.jit.translateMs ?? 0) / 1000).toFixed(2)}, new Module ${((d.jit.moduleMs ?? 0) / 1000).toFixed(2)}, new Instance ${((d.jit.instanceMs ?? 0) / 1000).toFixed(2)}, waiting for the code cache ${((d.jit.shareWaitMs ?? 0) / 1000).toFixed(2)} s, ${d.jit.shareLate} late), ${d.jit.dropped} dropped, slow paths ${d.jit.slowReads} reads / ${d.jit.slowWrites} writes`);
    const hc = Object.entries(d.hypercalls).sort((a, b) => b[1].n - a[1].n);
    if (hc.length > 0) console.log(`  hypercalls (x16: count, s): ${hc.map(([op, h]) => `${op}: ${h.n}, ${(h.ms / 1000).toFixed(3)}`).join("; ")}`);
  }
}

async function main(): Promise<void> {
  const read = process.argv.indexOf("--read");
  if (read >= 0) { report(process.argv[read + 1]!); return; }
  const vcpus = arg("--vcpus", "2"), mem = arg("--memory", "256"), timeout = Number(arg("--timeout", "600")), threads = arg("--threads", "1");
  const img = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xeno-handoff-"));
  const cfg = path.join(dir, "bench.cfg");
  fs.writeFileSync(cfg, `name = "bench"\ntype = "pvh"\nmemory = ${mem}\nvcpus = ${vcpus}\n` +
    `kernel = "${img.kernel}"\nramdisk = "${img.initrd}"\ncmdline = "console=ttyAMA0 rdinit=/init"\non_reboot = "destroy"\n`);
  const env = { ...process.env, XENO_VCPU_THREADS: threads, XENO_HANDOFF_STATS: dir };
  const t0 = performance.now();
  const prof = arg("--prof", "");
  const p = spawn(process.execPath, [...(prof !== "" ? ["--cpu-prof", "--cpu-prof-dir", prof] : []), path.join(root, "dist/src/cli/main.js"), "create", "--standalone", "-c", cfg], { stdio: ["pipe", "pipe", "inherit"], env });
  const consoleFile = arg("--console", "");
  const out = consoleFile !== "" ? fs.createWriteStream(consoleFile) : null;
  await new Promise<void>((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`no marker after ${timeout} s`)); }, timeout * 1000);
    p.stdout.on("data", (d: Buffer) => {
      out?.write(d);
      seen = (seen + d.toString("latin1")).slice(-4096);
      if (seen.includes(GUEST_READY_MARKER)) { clearTimeout(timer); resolve(); }
    });
    p.on("exit", (code) => { clearTimeout(timer); reject(new Error(`exited (${code}) before the marker`)); });
  });
  const wall = (performance.now() - t0) / 1000;
  // The threads write their files at most a second apart: let the last ones land before the kill.
  await new Promise((r) => setTimeout(r, 1200));
  if (process.argv.includes("--poweroff") || prof !== "") {
    p.removeAllListeners("exit");
    const ended = new Promise((r) => p.on("exit", r));
    p.stdin.write("poweroff -f\n");
    await Promise.race([ended, new Promise((r) => setTimeout(r, 120_000))]);
  }
  p.kill("SIGKILL");
  out?.end();
  console.log(`boot to marker with ${vcpus} vCPUs, XENO_VCPU_THREADS=${threads}: ${wall.toFixed(2)} s wall (counters on); load ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  report(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => { process.stderr.write(`bench/boot/handoff: ${(e as Error).message}\n`); process.exitCode = 1; });
