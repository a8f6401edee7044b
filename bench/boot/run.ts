/**
 * bench/boot: time from spawn to the guest's marker line (XENO-GUEST-READY, printed by the initramfs's /init)
 * for the same Debian kernel, initramfs and command line under Xeno (`xeno create -c`) and under
 * `qemu-system-aarch64 -M virt -cpu cortex-a72` (TCG), alternated, median of N runs each, and the ratio.
 *
 *   node dist/bench/boot/run.js [--runs N] [--memory MiB] [--vcpus N] [--timeout SEC] [--baseline DIR] [--threads-ab]
 *                               [--ab "VAR=VALUE … --node-flag …"] [--no-qemu] [--thread-cpu]
 *
 * `--baseline DIR`: also boot the Xeno built in DIR (another checkout, e.g. `git worktree add /tmp/base REV &&
 * (cd /tmp/base && npm ci && scripts/build.sh)`) in the same alternation, for an A/B of a change in one run.
 * Besides wall time to the marker it reports each Xeno's CPU seconds (user + system of the process), which
 * other load on the machine disturbs less than wall time.
 *
 * `--vcpus N`: a guest (and qemu -smp) with N vCPUs. `--threads-ab`: this build twice per run, alternated, with
 * XENO_VCPU_THREADS=0 (every vCPU time-sliced in the domain's thread) and =1 (vCPUs 1..N-1 on threads of their
 * own, src/hv/vcpu-thread.ts), for an A/B of the two. `--ab "…"`: this build once more per run, alternated, with
 * the given environment variables (VAR=VALUE words) and Node/V8 flags (words starting with `--`, put before the
 * script), for an A/B of a setting without a second checkout. `--no-qemu`: skip qemu. `--thread-cpu`: after each
 * run, each Xeno boot's CPU at the marker by thread name (main, the domain's thread, V8's platform threads).
 *
 * Timings never decide pass/fail; record results in docs/benchmarks.md.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function arg(name: string, def: number): number {
  const k = process.argv.indexOf(name);
  return k >= 0 ? Number(process.argv[k + 1]) : def;
}

function argStr(name: string): string | undefined {
  const k = process.argv.indexOf(name);
  return k >= 0 ? process.argv[k + 1] : undefined;
}

/** CPU seconds (user + system) of process `pid` so far, from /proc (0 where /proc is absent). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/**
 * CPU seconds of process `pid`'s threads so far, summed by thread name (/proc/PID/task/TID/stat: V8's platform
 * threads are "V8 Worker"/"node", the domain's thread "xeno-vm" when named), busiest first; "" without /proc.
 */
function threadCpu(pid: number | undefined): string {
  try {
    const by = new Map<string, number>();
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const st = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "latin1");
      const name = tid === String(pid) ? "main" : st.slice(st.indexOf("(") + 1, st.lastIndexOf(")"));
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      by.set(name, (by.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    }
    return [...by].filter(([, s]) => s >= 0.05).sort((a, b) => b[1] - a[1]).map(([n, s]) => `${n} ${s.toFixed(2)}`).join(", ");
  } catch {
    return "";
  }
}

/** Seconds of wall time and of the process's CPU until the marker appeared, and that CPU by thread. */
interface Timing { wall: number; cpu: number; threads: string }

/** Spawns a command and resolves with the time until `marker` appears on its stdout (then kills it). */
function timeToMarker(cmd: string, args: string[], timeoutSec: number, env: NodeJS.ProcessEnv = process.env): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env });
    let seen = "";
    let done = false;
    const finish = (err: Error | null, secs = 0): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const cpu = cpuSeconds(p.pid), threads = threadCpu(p.pid);
      p.kill("SIGKILL");
      if (err) reject(err); else resolve({ wall: secs, cpu, threads });
    };
    const timer = setTimeout(() => finish(new Error(`${cmd}: no marker after ${timeoutSec} s`)), timeoutSec * 1000);
    p.stdout.on("data", (d: Buffer) => {
      seen = (seen + d.toString("latin1")).slice(-4096);
      if (seen.includes(GUEST_READY_MARKER)) finish(null, (performance.now() - t0) / 1000);
    });
    p.stderr.on("data", () => {});
    p.on("exit", (code) => finish(new Error(`${cmd} exited (${code}) before the marker`)));
    p.on("error", (e) => finish(new Error(`${cmd}: ${e.message}${cmd.startsWith("qemu") ? " (install Debian's qemu-system-arm)" : ""}`)));
  });
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const runs = arg("--runs", 5), mem = arg("--memory", 256), timeout = arg("--timeout", 600), vcpus = arg("--vcpus", 1);
  const threadsAb = process.argv.includes("--threads-ab"), noQemu = process.argv.includes("--no-qemu");
  const threadCpuOn = process.argv.includes("--thread-cpu");
  const img = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const cmdline = "console=ttyAMA0 rdinit=/init";
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xeno-bench-boot-"));
  const cfg = path.join(dir, "bench.cfg");
  fs.writeFileSync(cfg, `name = "bench"\ntype = "pvh"\nmemory = ${mem}\nvcpus = ${vcpus}\n` +
    `kernel = "${img.kernel}"\nramdisk = "${img.initrd}"\ncmdline = "${cmdline}"\non_reboot = "destroy"\n`);
  const xeno = [path.join(root, "dist/src/cli/main.js"), "create", "--standalone", "-c", cfg];
  const qemu = ["-M", "virt", "-cpu", "cortex-a72", "-m", String(mem), "-smp", String(vcpus), "-nographic", "-no-reboot", "-nic", "none",
    "-kernel", img.kernel, "-initrd", img.initrd, "-append", cmdline];
  const baseDir = argStr("--baseline");
  const base = baseDir === undefined ? null : [path.join(path.resolve(baseDir), "dist/src/cli/main.js"), "create", "--standalone", "-c", cfg];
  if (base !== null && !fs.existsSync(base[0]!)) throw new Error(`--baseline ${baseDir}: no ${base[0]} (build that checkout first)`);
  const tx: Timing[] = [], tq: Timing[] = [], tb: Timing[] = [], tt: Timing[] = [], ta: Timing[] = [];
  // --ab: the variant's environment (VAR=VALUE words) and node flags (--words), on this build.
  const abSpec = argStr("--ab"), abWords = abSpec === undefined ? [] : abSpec.split(/\s+/).filter((w) => w !== "");
  const abFlags = abWords.filter((w) => w.startsWith("--"));
  const abEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const w of abWords) if (!w.startsWith("--")) { const eq = w.indexOf("="); if (eq <= 0) throw new Error(`--ab: ${w} is neither VAR=VALUE nor --flag`); abEnv[w.slice(0, eq)] = w.slice(eq + 1); }
  const envOff = { ...process.env, XENO_VCPU_THREADS: "0" }, envOn = { ...process.env, XENO_VCPU_THREADS: "1" };
  const f = (t: Timing): string => `${t.wall.toFixed(2)} s (cpu ${t.cpu.toFixed(2)} s)`;
  for (let k = 0; k < runs; k++) {
    if (!noQemu) tq.push(await timeToMarker("qemu-system-aarch64", qemu, timeout));
    // With --threads-ab the two orders alternate too, so neither always boots first after qemu.
    if (threadsAb && k % 2 === 1) tt.push(await timeToMarker(process.execPath, xeno, timeout, envOn));
    tx.push(await timeToMarker(process.execPath, xeno, timeout, threadsAb ? envOff : process.env));
    if (threadsAb && k % 2 === 0) tt.push(await timeToMarker(process.execPath, xeno, timeout, envOn));
    if (base !== null) tb.push(await timeToMarker(process.execPath, base, timeout));
    if (abSpec !== undefined) ta.push(await timeToMarker(process.execPath, [...abFlags, ...xeno], timeout, abEnv));
    process.stderr.write(`run ${k + 1}/${runs}: ` + (noQemu ? "" : `qemu ${tq[k]!.wall.toFixed(2)} s, `) +
      `xeno${threadsAb ? " (threads off)" : ""} ${f(tx[k]!)}` + (threadsAb ? `, xeno (threads on) ${f(tt[k]!)}` : "") +
      (base !== null ? `, baseline ${f(tb[k]!)}` : "") + (abSpec !== undefined ? `, variant ${f(ta[k]!)}` : "") +
      `; load ${os.loadavg()[0]!.toFixed(1)}\n`);
    // Where each Xeno boot's CPU went, by thread (--thread-cpu).
    if (threadCpuOn) for (const [label, t] of [["xeno", tx[k]], ["baseline", tb[k]], ["variant", ta[k]]] as const) {
      if (t !== undefined && t.threads !== "") process.stderr.write(`  ${label} threads: ${t.threads}\n`);
    }
  }
  const mx = median(tx.map((t) => t.wall)), cx = median(tx.map((t) => t.cpu));
  console.log(`boot to marker (${img.kernelVersion}, ${mem} MiB, ${vcpus} vCPU${vcpus > 1 ? "s" : ""}), median of ${runs}:`);
  if (!noQemu) console.log(`  qemu-system-aarch64 -M virt -cpu cortex-a72 (TCG): ${median(tq.map((t) => t.wall)).toFixed(2)} s`);
  console.log(`  xeno create -c${threadsAb ? ", XENO_VCPU_THREADS=0" : ""}:                                   ${mx.toFixed(2)} s (cpu ${cx.toFixed(2)} s)`);
  if (threadsAb) {
    const mt = median(tt.map((t) => t.wall)), ct = median(tt.map((t) => t.cpu));
    console.log(`  xeno create -c, XENO_VCPU_THREADS=1:                                   ${mt.toFixed(2)} s (cpu ${ct.toFixed(2)} s)`);
    console.log(`  threads on vs off: wall ${((mt / mx - 1) * 100).toFixed(1)} %, cpu ${((ct / cx - 1) * 100).toFixed(1)} %`);
  }
  if (!noQemu) console.log(`  ratio xeno/qemu: ${(mx / median(tq.map((t) => t.wall))).toFixed(2)}x`);
  if (base !== null) {
    const mb = median(tb.map((t) => t.wall)), cb = median(tb.map((t) => t.cpu));
    console.log(`  baseline ${baseDir}:  ${mb.toFixed(2)} s (cpu ${cb.toFixed(2)} s)`);
    console.log(`  this build vs baseline: wall ${((mx / mb - 1) * 100).toFixed(1)} %, cpu ${((cx / cb - 1) * 100).toFixed(1)} %`);
  }
  if (abSpec !== undefined) {
    const ma = median(ta.map((t) => t.wall)), ca = median(ta.map((t) => t.cpu));
    console.log(`  variant "${abSpec}":  ${ma.toFixed(2)} s (cpu ${ca.toFixed(2)} s)`);
    console.log(`  variant vs this build: wall ${((ma / mx - 1) * 100).toFixed(1)} %, cpu ${((ca / cx - 1) * 100).toFixed(1)} %`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => { process.stderr.write(`bench/boot: ${(e as Error).message}\n`); process.exitCode = 1; });
