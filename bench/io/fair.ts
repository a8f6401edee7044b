/**
 * bench/io/fair: where a random reader loses next to a domain writing its disk flat out (issue 16's fairness
 * bound, test/hv/io-fair.test.ts) — B's 4 KiB random reads at queue depth 1 alone, next to a CPU hog in A and next
 * to A's flat-out writer, with each hypervisor thread's CPU time, run-queue wait and time slices over B's run
 * (/proc/PID/task/T/schedstat: ns on CPU, ns runnable but waiting for a CPU, slices — the host's scheduling, which
 * is where a domain whose every read needs two thread wake-ups loses on a busy 2-core host).
 *
 *   node dist/bench/io/fair.js [--rounds N] [--reads N] [--runs N] [--ab VAR=VALUE] [--alone]
 *
 * Each run starts `xeno-hv --pcpus 2` and boots domains A and B (1 vCPU, 128 MiB, a 32 MiB raw image each; the
 * demo kernel and initramfs with bench/io/blkbench.c appended), then --rounds rounds of: B alone, next to the hog,
 * next to the writer. Threads: A's and B's domain threads (the two first named xeno-vm: A is created first), each
 * disk's I/O thread (xeno-blk<domid>), the main thread, the rest; per read of B, its threads' CPU, times scheduled in
 * and wait for a CPU. --alone: B alone only (those per-read costs). With --ab, runs alternate between the defaults
 * and VAR=VALUE in the hypervisor's environment. Timings never decide anything; record results in
 * docs/benchmarks.md with the load.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { ConsoleTap, connectHv, stopHv } from "../../test/hv/hv-client.js";
import { Shell, initrdWithBlkbench } from "../../test/hv/blkbench-guest.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const AREA_MIB = 32;

/** Per thread "tid:comm": [ns on CPU, ns waiting to run, slices] (schedstat). */
type Sched = Map<string, [number, number, number]>;

function sched(pid: number): Sched {
  const m: Sched = new Map();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, "latin1").trim();
      const f = readFileSync(`/proc/${pid}/task/${t}/schedstat`, "latin1").trim().split(" ").map(Number);
      m.set(`${t}:${comm}`, [f[0]!, f[1]!, f[2]!]);
    } catch { /* ended */ }
  }
  return m;
}

/** After minus before, grouped: A's and B's domain threads, I/O threads per domain, main, others. */
function groups(a: Sched, b: Sched, pid: number, vmA: string, vmB: string, domA: number, domB: number): Map<string, [number, number, number]> {
  const out = new Map<string, [number, number, number]>();
  for (const [k, v] of b) {
    const o = a.get(k) ?? [0, 0, 0];
    const g = k === vmA ? "A-vm" : k === vmB ? "B-vm" : k.endsWith(`:xeno-blk${domA}`) ? "A-io" : k.endsWith(`:xeno-blk${domB}`) ? "B-io"
      : k.startsWith(`${pid}:`) ? "main" : "other";
    const s = out.get(g) ?? [0, 0, 0];
    for (let i = 0; i < 3; i++) s[i] += v[i]! - o[i]!;
    out.set(g, s);
  }
  return out;
}

const fmt = (g: Map<string, [number, number, number]>, secs: number): string =>
  ["B-vm", "B-io", "A-vm", "A-io", "main", "other"].map((k) => {
    const v = g.get(k) ?? [0, 0, 0];
    return `${k} ${(100 * v[0] / 1e9 / secs).toFixed(0)}%cpu wait ${(v[1] / 1e6 / secs).toFixed(0)}ms/s ${v[2] > 0 ? (v[1] / 1e3 / v[2]).toFixed(0) : "-"}us/slice`;
  }).join("; ");

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, def: number): number => { const i = argv.indexOf(name); return i < 0 ? def : Number(argv[i + 1]); };
  const rounds = opt("--rounds", 3), reads = opt("--reads", 1000), runs = opt("--runs", 1);
  const aloneOnly = argv.includes("--alone"); // B alone only: its CPU and wake-ups per read
  const abAt = argv.indexOf("--ab");
  const ab = abAt < 0 ? null : /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(argv[abAt + 1] ?? "");
  if (abAt >= 0 && ab === null) throw new Error("--ab VAR=VALUE");
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const sides = [{ name: "defaults", env: {} as Record<string, string> }, ...(ab ? [{ name: `${ab[1]}=${ab[2]}`, env: { [ab[1]!]: ab[2]! } }] : [])];
  const summary: string[] = [];
  for (let run = 0; run < runs; run++) for (const side of sides) {
    const dir = mkdtempSync(join(tmpdir(), "xeno-fair-"));
    const initrd = initrdWithBlkbench(ROOT, readFileSync(images.initrd), dir);
    const img = (name: string): string => { const p = join(dir, name); writeFileSync(p, ""); truncateSync(p, AREA_MIB << 20); return p; };
    const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "1024", "--pcpus", "2"],
      { stdio: ["ignore", "ignore", "ignore"], env: { ...process.env, ...side.env } });
    try {
      const c = await connectHv(dir);
      const spec = (name: string, path: string) => ({ name, memMiB: 128, vcpus: 1, kernel: images.kernel, ramdisk: initrd, cmdline: "console=hvc0",
        xen: true, disks: [{ path, devid: 51712, vdev: "xvda", readOnly: false }], vifs: [] });
      const a = (await c.ok<{ domid: number }>("create", { spec: spec("fair-a", img("a.img")) })).domid;
      const b = (await c.ok<{ domid: number }>("create", { spec: spec("fair-b", img("b.img")) })).domid;
      const taps = [await ConsoleTap.open(join(dir, "hv.sock"), a), await ConsoleTap.open(join(dir, "hv.sock"), b)];
      await Promise.all(taps.map((t) => t.waitFor(new RegExp(GUEST_READY_MARKER), 0, 10 * 60_000, "ready")));
      const vms = [...sched(hv.pid!).keys()].filter((k) => k.endsWith(":xeno-vm")).sort((x, y) => parseInt(x) - parseInt(y));
      const A = new Shell("A", taps[0]!), B = new Shell("B", taps[1]!);
      for (const s of [A, B]) await s.sh("for i in $(seq 1 120); do [ -b /dev/xvda ] && break; sleep 1; done");
      await B.bench("/dev/xvda", `seqwrite ${AREA_MIB} 7`);
      await B.bench("/dev/xvda", `randread ${AREA_MIB} 7 ${reads}`); // warm-up
      const hog = "(while :; do :; done) > /dev/null 2>&1 & echo $! > /tmp/w.pid";
      const writer = `(while :; do blkbench /dev/xvda seqwrite ${AREA_MIB} 9 >> /tmp/w.log; done) > /dev/null 2>&1 & echo $! > /tmp/w.pid`;
      const res: Record<string, number[]> = { alone: [], hog: [], writer: [], aMBps: [] };
      const perReadAll: Record<string, string[]> = { alone: [], hog: [], writer: [] };
      for (let r = 0; r < rounds; r++) {
        for (const [cond, job] of ([["alone", ""], ["hog", hog], ["writer", writer]] as const).filter(([c]) => !aloneOnly || c === "alone")) {
          if (job) { await A.sh(job); await new Promise((x) => setTimeout(x, 1000)); }
          const s0 = sched(hv.pid!), t0 = Date.now();
          const rr = await B.bench("/dev/xvda", `randread ${AREA_MIB} 7 ${reads}`);
          const secs = (Date.now() - t0) / 1000, g = groups(s0, sched(hv.pid!), hv.pid!, vms[0]!, vms[1]!, a, b);
          if (job) await A.sh("kill $(cat /tmp/w.pid); killall blkbench 2>/dev/null; sleep 0.5");
          const iops = rr.ops / rr.secs;
          res[cond]!.push(iops);
          let wrote = "";
          if (cond === "writer") {
            const mbps = [...(await A.sh("cat /tmp/w.log; rm -f /tmp/w.log")).matchAll(/MBps=([\d.]+)/g)].map((m) => Number(m[1]));
            wrote = ` (A's passes: ${mbps.map((x) => x.toFixed(0)).join(", ")} MB/s)`;
            res.aMBps!.push(...mbps);
          }
          // Per read, B's own threads: CPU and times scheduled in (wake-ups) — what the host's other load hardly changes.
          const bv = g.get("B-vm") ?? [0, 0, 0], bi = g.get("B-io") ?? [0, 0, 0];
          const perRead = `B per read: ${((bv[0] + bi[0]) / 1e3 / rr.ops).toFixed(0)} us CPU, ${((bv[2] + bi[2]) / rr.ops).toFixed(2)} slices, ` +
            `${((bv[1] + bi[1]) / 1e3 / rr.ops).toFixed(0)} us waiting for a CPU`;
          perReadAll[cond]!.push(perRead);
          process.stderr.write(`${side.name} run ${run + 1} round ${r + 1} ${cond}: ${iops.toFixed(0)} IOPS${wrote}; ${perRead}; ${fmt(g, secs)}; load ${loadavg()[0]!.toFixed(1)}\n`);
        }
      }
      const best = (v: number[]): number => Math.max(...v);
      const med = (v: number[]): number => { const x = [...v].sort((p, q) => p - q); return x.length ? x[(x.length - 1) >> 1]! : NaN; };
      if (aloneOnly) { summary.push(`${side.name} run ${run + 1}: alone ${res.alone!.map((x) => x.toFixed(0)).join(", ")} IOPS; ${perReadAll.alone!.join(" | ")}; load ${loadavg()[0]!.toFixed(1)}`); for (const t of taps) t.close(); c.close(); continue; }
      summary.push(`${side.name} run ${run + 1}: alone ${res.alone!.map((x) => x.toFixed(0)).join(", ")}; hog ${res.hog!.map((x) => x.toFixed(0)).join(", ")} ` +
        `(best ${(100 * best(res.hog!) / best(res.alone!)).toFixed(0)} %); writer ${res.writer!.map((x) => x.toFixed(0)).join(", ")} ` +
        `(best ${(100 * best(res.writer!) / best(res.alone!)).toFixed(0)} %); A's write passes meanwhile: median ${med(res.aMBps!).toFixed(1)} MB/s (${res.aMBps!.length}); load ${loadavg()[0]!.toFixed(1)}`);
      for (const t of taps) t.close();
      c.close();
    } finally {
      await stopHv(hv, dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`bench/io/fair (${reads} random 4 KiB reads per run of B, ${rounds} rounds):`);
  for (const l of summary) console.log(`  ${l}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/io/fair: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
