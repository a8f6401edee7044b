/**
 * bench/density/probe: where the hypervisor process's memory goes, per domain (issue 5's density goal).
 *
 *   node dist/bench/density/probe.js [--domains N] [--memory MiB] [--per-thread N] [--paused] [--settle SEC] [--sequential]
 *
 * --per-thread N: xeno-hv --domains-per-thread N (default: the hypervisor's, 8).
 * --sequential: boot the domains one after the other (each unpaused once the one before answered on its console),
 *   printing each one's boot wall time and the hypervisor process's CPU for it — the later ones boot with the
 *   first one's compiled code in the code cache (src/cpu/arm64/jit/compile-worker.ts). Default: all at once.
 * The hypervisor process's CPU time (user + system, all threads) over the boot is printed either way.
 * The hypervisor is started with the environment xenod gives it (src/hv/malloc-env.ts: glibc's malloc settings;
 * XENO_MALLOC_ENV=0 for glibc's defaults, or set the variables to try others). XENO_PROBE_HV_LOG=FILE: its log there.
 *
 * Starts `xeno-hv`, reads /proc/PID/smaps with no domain, after creating N domains (paused: worker thread,
 * machine and images loaded, no guest instruction run), and — unless --paused — after unpausing them, every
 * console showing the ready marker and --settle seconds of idle (default 5; the decode cache drops boot-only
 * code pages at its sweeps in the first tens of seconds of idle, see Machine.sweepCode). Each time it sorts the
 * resident memory into:
 *   guest RAM  — anonymous mappings at least the size of a domain's RAM: its WebAssembly.Memory (the pages the guest
 *                touched, and of what follows RAM there — vCPU state, TLB and compiler areas, boardTailBytes: 1.4 MiB
 *                for one vCPU — the pages in use)
 *   V8 heap    — 256 KiB-aligned anonymous mappings of V8 pages (every isolate: main thread and one per worker)
 *   executable — anonymous mappings with execute permission: V8's JIT code and the wasm code spaces (compiled
 *                guest code, src/cpu/arm64/jit)
 *   other anon — malloc arenas (ArrayBuffers, decode caches' typed arrays), thread stacks, code space; printed
 *                with the part in glibc's thread arenas and in the brk heap (smaps.ts)
 *   file       — the node binary and libraries (shared by all threads)
 * and prints the growth per domain, then each thread's CPU over 10 s of idle (main thread vs workers). The kinds
 * are by mapping size, so approximate: the kernel merges adjacent anonymous mappings of the same protection, and a
 * merged one lands in "other anon". A measuring tool: numbers go to docs/benchmarks.md by hand.
 */
import { mkdtempSync, openSync, readFileSync, readdirSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { ConsoleTap, connectHv, stopHv } from "../../test/hv/hv-client.js";
import { type Breakdown, smapsBreakdown } from "./smaps.js";
import { hvSpawnEnv, mallocEnvSummary } from "../../src/hv/malloc-env.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const arg = (name: string, def: number): number => { const k = process.argv.indexOf(name); return k >= 0 ? Number(process.argv[k + 1]) : def; };

/** Sorts the resident pages of `pid` by mapping kind (see the header; smaps.ts). */
function smaps(pid: number, ramBytes: number): Breakdown {
  return smapsBreakdown(pid, ramBytes, 4096);
}

/** CPU ticks per thread of `pid` by kind: the main thread (tid = pid), else the thread's name (comm). */
function threadTicks(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try { stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"); } catch { continue; }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const kind = Number(tid) === pid ? "main thread" : comm;
    m.set(kind, (m.get(kind) ?? 0) + Number(f[11]) + Number(f[12]));
  }
  return m;
}

/** CPU seconds (user + system) of process `pid` so far. */
function processCpuS(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, "utf8"), f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  const clk = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
  return (Number(f[11]) + Number(f[12])) / clk;
}

const mib = (k: number): string => (k / 1024).toFixed(1);

function show(what: string, b: Breakdown, base: Breakdown | null, n: number): void {
  const per = (k: keyof Omit<Breakdown, "big" | "arenas">): string => base === null ? "" : ` (+${mib((b[k] - base[k]) / n)}/dom)`;
  console.log(`${what}: RSS ${mib(b.rssKiB)} MiB${per("rssKiB")}; guest RAM ${mib(b.ramKiB)}${per("ramKiB")}; ` +
    `V8 heap ${mib(b.v8KiB)}${per("v8KiB")}; executable anon ${mib(b.execKiB)}${per("execKiB")}; other anon ${mib(b.otherKiB)}${per("otherKiB")} ` +
    `[of it: ${b.arenas} thread arenas ${mib(b.arenaKiB)}${per("arenaKiB")}, brk heap ${mib(b.brkKiB)}${per("brkKiB")}]; file ${mib(b.fileKiB)}${per("fileKiB")}`);
  if (process.argv.includes("--verbose")) for (const l of b.big) console.log(`    ${l}`);
}

async function main(): Promise<void> {
  const n = arg("--domains", 2), mem = arg("--memory", 64), perThread = arg("--per-thread", 0), settle = arg("--settle", 5);
  const pausedOnly = process.argv.includes("--paused");
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xeno-probe-"));
  const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", String(Math.max(1024, n * (mem + 8))),
    ...(perThread > 0 ? ["--domains-per-thread", String(perThread)] : [])],
    { stdio: ["ignore", "ignore", process.env.XENO_PROBE_HV_LOG ? openSync(process.env.XENO_PROBE_HV_LOG, "w") : "ignore"],
      env: hvSpawnEnv() }); // as xenod starts it (src/hv/malloc-env.ts)
  console.log(`hypervisor's malloc: ${mallocEnvSummary(hvSpawnEnv())}`);
  try {
    const c = await connectHv(dir);
    await new Promise((r) => setTimeout(r, 1000));
    const ramBytes = mem * 2 ** 20;
    const base = smaps(hv.pid!, ramBytes);
    show("no domain", base, null, 1);
    const ids: number[] = [];
    const taps: ConsoleTap[] = [];
    let createMs = 0;
    for (let i = 1; i <= n; i++) {
      const c0 = performance.now();
      const { domid } = await c.ok<{ domid: number }>("create", { spec: { name: `p${i}`, memMiB: mem, vcpus: 1, kernel: images.kernel,
        ramdisk: images.initrd, cmdline: "console=hvc0", xen: true, disks: [], vifs: [], paused: true } });
      createMs += performance.now() - c0;
      ids.push(domid);
      taps.push(await ConsoleTap.open(join(dir, "hv.sock"), domid));
    }
    await new Promise((r) => setTimeout(r, 2000));
    console.log(`create call: ${(createMs / n).toFixed(1)} ms per domain`);
    show(`${n} created, paused`, smaps(hv.pid!, ramBytes), base, n);
    if (!pausedOnly) {
      const t0 = performance.now(), cpu0 = processCpuS(hv.pid!);
      const boot = async (i: number): Promise<void> => {
        await taps[i]!.waitFor(new RegExp(GUEST_READY_MARKER), 0, 3600_000, `p${i + 1}`);
        await taps[i]!.run(`echo ANSWER-${i + 1}`, new RegExp(`^ANSWER-${i + 1}\\r?$`, "m"), 300_000);
      };
      if (process.argv.includes("--sequential")) {
        for (let i = 0; i < n; i++) {
          const t1 = performance.now(), c1 = processCpuS(hv.pid!);
          await c.ok("unpause", { domid: ids[i] });
          await boot(i);
          console.log(`domain ${i + 1} booted in ${((performance.now() - t1) / 1000).toFixed(1)} s, hypervisor CPU ${(processCpuS(hv.pid!) - c1).toFixed(1)} s`);
        }
      } else {
        for (const id of ids) await c.ok("unpause", { domid: id });
        await Promise.all(taps.map((_, i) => boot(i)));
      }
      console.log(`booted in ${((performance.now() - t0) / 1000).toFixed(0)} s, hypervisor CPU ${(processCpuS(hv.pid!) - cpu0).toFixed(1)} s (user + system), load ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
      await new Promise((r) => setTimeout(r, settle * 1000));
      show(`${n} booted, idle ${settle} s`, smaps(hv.pid!, ramBytes), base, n);
      const hi = await c.ok<{ vmThreads?: number; vmMoves?: number; vmSpareThread?: boolean }>("info");
      console.log(`threads holding domains: ${hi.vmThreads}, spare: ${hi.vmSpareThread}, moves so far: ${hi.vmMoves}`);
      const clk = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
      const a = threadTicks(hv.pid!), w0 = performance.now();
      await new Promise((r) => setTimeout(r, 10_000));
      const b = threadTicks(hv.pid!), secs = (performance.now() - w0) / 1000;
      const parts: string[] = [];
      let total = 0;
      for (const [k, v] of b) { const d = v - (a.get(k) ?? 0); total += d; if (d > 0) parts.push(`${k} ${((d / clk / secs) * 100).toFixed(2)} %`); }
      console.log(`idle CPU over ${secs.toFixed(0)} s: ${((total / clk / secs) * 100).toFixed(2)} % of a core (${((total / clk / secs) * 100 / n).toFixed(2)} %/dom): ${parts.join(", ")}`);
    }
    for (const t of taps) t.close();
    c.close();
  } finally {
    await stopHv(hv, dir, 2000);
  }
}

main().catch((e) => { process.stderr.write(`bench/density/probe: ${(e as Error).stack ?? e}\n`); process.exitCode = 1; });
