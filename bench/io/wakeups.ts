/**
 * bench/io/wakeups: what a domain writing its disk flat out costs the host besides its own vCPU — CPU seconds and
 * context switches of the hypervisor process's threads (its domain thread, the disk's I/O thread, the main
 * thread) per MiB written — the host-side work that competes with other domains (test/hv/io-fair.test.ts). CPU
 * time and switch counts, unlike throughput, hardly depend on the host's other load, so an A/B of a blkback
 * setting reads here on a busy machine.
 *
 *   node dist/bench/io/wakeups.js [--runs N] [--mib MiB] [--passes N] [--ab VAR=VALUE] [--test seqwrite|seqread]
 *                                 [--append ARGS] [--ab-append ARGS] [--cpu-prof DIR]
 *
 * Each run starts `xeno-hv --pcpus 2`, boots one 1-vCPU DomU (the demo kernel and initramfs with
 * bench/io/blkbench.c appended) with a --mib MiB raw image, has it write the image --passes times (blkbench
 * seqwrite: 1 MiB O_DIRECT pwrites, then fsync; or --test seqread: 1 MiB O_DIRECT preads of what one seqwrite
 * wrote) and reads /proc/PID/task/*\/{stat,status} before and after.
 * With --ab, runs alternate between the defaults and VAR=VALUE in the hypervisor's environment; with --ab-append,
 * between the guest's command line as it is and with ARGS added (a guest setting, e.g.
 * xen_blkfront.max_indirect_segments=256). --append adds kernel arguments to every side. --cpu-prof DIR runs the
 * hypervisor under `node --cpu-prof` (a profile per thread in DIR, the domain thread's among them; boot included).
 * Timings never decide anything; record results in docs/benchmarks.md.
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

interface Threads { cpu: Map<string, number>; switches: Map<string, number> }

/** CPU seconds and context switches (voluntary + involuntary) per thread of process `pid`, keyed "tid:comm". */
function threads(pid: number): Threads {
  const cpu = new Map<string, number>(), switches = new Map<string, number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/stat`, "latin1");
      const key = `${t}:${st.slice(st.indexOf("(") + 1, st.lastIndexOf(")"))}`;
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      cpu.set(key, (Number(f[11]) + Number(f[12])) / 100); // utime + stime, USER_HZ ticks (proc(5))
      const status = readFileSync(`/proc/${pid}/task/${t}/status`, "latin1");
      const n = (k: string): number => Number(new RegExp(`^${k}:\\s*(\\d+)`, "m").exec(status)?.[1] ?? 0);
      switches.set(key, n("voluntary_ctxt_switches") + n("nonvoluntary_ctxt_switches"));
    } catch { /* the thread ended */ }
  }
  return { cpu, switches };
}

/** After minus before, by thread kind: the domain thread (xeno-vm), the main thread, and all the others. */
function delta(a: Threads, b: Threads, pid: number): { vm: [number, number]; main: [number, number]; other: [number, number] } {
  const out = { vm: [0, 0] as [number, number], main: [0, 0] as [number, number], other: [0, 0] as [number, number] };
  for (const [k, v] of b.cpu) {
    const kind = k.endsWith(":xeno-vm") ? out.vm : k.startsWith(`${pid}:`) ? out.main : out.other;
    kind[0] += v - (a.cpu.get(k) ?? 0);
    kind[1] += b.switches.get(k)! - (a.switches.get(k) ?? 0);
  }
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, def: number): number => { const i = argv.indexOf(name); return i < 0 ? def : Number(argv[i + 1]); };
  const runs = opt("--runs", 2), mib = opt("--mib", 64), passes = opt("--passes", 8);
  const str = (name: string): string | undefined => { const i = argv.indexOf(name); return i < 0 ? undefined : argv[i + 1]; };
  const test = str("--test") ?? "seqwrite", append = str("--append"), abAppend = str("--ab-append"), prof = str("--cpu-prof");
  if (test !== "seqwrite" && test !== "seqread") throw new Error("--test seqwrite|seqread");
  const abAt = argv.indexOf("--ab");
  const ab = abAt < 0 ? null : /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(argv[abAt + 1] ?? "");
  if (abAt >= 0 && ab === null) throw new Error("--ab VAR=VALUE");
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const sides = [{ name: "defaults", env: {} as Record<string, string>, append: "" },
    ...(ab ? [{ name: `${ab[1]}=${ab[2]}`, env: { [ab[1]!]: ab[2]! }, append: "" }] : []),
    ...(abAppend !== undefined ? [{ name: abAppend, env: {}, append: abAppend }] : [])];
  const results = new Map<string, string[]>(sides.map((s) => [s.name, []]));
  process.stderr.write(`bench/io/wakeups: ${runs} runs per side, ${passes} × ${mib} MiB each; load ${loadavg().map((x) => x.toFixed(2)).join(", ")}\n`);
  for (let r = 0; r < runs; r++) {
    for (const side of sides) {
      const dir = mkdtempSync(join(tmpdir(), "xeno-wakeups-"));
      const initrd = initrdWithBlkbench(ROOT, readFileSync(images.initrd), dir);
      const disk = join(dir, "a.img");
      writeFileSync(disk, "");
      truncateSync(disk, mib << 20);
      const hv = spawn(process.execPath, [...(prof === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", prof]), join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "512", "--pcpus", "2"],
        { stdio: ["ignore", "ignore", "ignore"], env: { ...process.env, ...side.env } });
      try {
        const c = await connectHv(dir);
        const { domid } = await c.ok<{ domid: number }>("create", { spec: { name: "wakeups", memMiB: 128, vcpus: 1, kernel: images.kernel,
          ramdisk: initrd, cmdline: ["console=hvc0", append ?? "", side.append].join(" ").trim(), xen: true, disks: [{ path: disk, devid: 51712, vdev: "xvda", readOnly: false }], vifs: [] } });
        const tap = await ConsoleTap.open(join(dir, "hv.sock"), domid);
        await tap.waitFor(new RegExp(GUEST_READY_MARKER), 0, 10 * 60_000, "ready");
        const g = new Shell("guest", tap);
        await g.sh("for i in $(seq 1 120); do [ -b /dev/xvda ] && break; sleep 1; done");
        await g.bench("/dev/xvda", `seqwrite ${mib} 1`); // warm-up: the compiler translates the write path
        const t0 = threads(hv.pid!);
        let secs = 0;
        if (test === "seqread") await g.bench("/dev/xvda", "seqread 1 1"); // warm-up of the read path
        // seqread checks the stamps the warm-up's seqwrite (tag 1) left
        for (let p = 0; p < passes; p++) secs += (await g.bench("/dev/xvda", test === "seqread" ? `seqread ${mib} 1` : `seqwrite ${mib} ${p + 2}`)).secs;
        const d = delta(t0, threads(hv.pid!), hv.pid!);
        const total = mib * passes;
        const line = `${(total / secs).toFixed(1)} MiB/s in the guest; per MiB: domain thread ${(1000 * d.vm[0] / total).toFixed(2)} ms CPU, ` +
          `${(d.vm[1] / total).toFixed(1)} switches; I/O and other threads ${(1000 * d.other[0] / total).toFixed(2)} ms, ${(d.other[1] / total).toFixed(1)} switches; ` +
          `main thread ${(1000 * d.main[0] / total).toFixed(2)} ms, ${(d.main[1] / total).toFixed(1)} switches; load ${loadavg()[0]!.toFixed(2)}`;
        process.stderr.write(`run ${r + 1} ${side.name}: ${line}\n`);
        results.get(side.name)!.push(line);
        tap.close();
        c.close();
      } finally {
        await stopHv(hv, dir);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  console.log(`bench/io/wakeups (${passes} × ${mib} MiB ${test} per run, 1 MiB O_DIRECT ${test === "seqread" ? "preads" : "pwrites"}, 1 vCPU):`);
  for (const [name, lines] of results) for (const l of lines) console.log(`  ${name}: ${l}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/io/wakeups: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
