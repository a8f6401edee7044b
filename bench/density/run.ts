/**
 * bench/density: many idle Debian DomUs under one hypervisor process (issue 5: "100 idle domains").
 *
 *   node dist/bench/density/run.js [--domains N] [--memory MiB] [--timeout SEC] [--per-thread N]
 *
 * --per-thread N: xeno-hv --domains-per-thread N (default: the hypervisor's, 8; 1 = a thread per domain).
 *
 * Starts `xeno-hv` in a temporary run directory, creates N domains (Debian's kernel + the busybox initramfs,
 * console=hvc0) one after another, waits until every console shows the ready marker, checks that every console
 * answers a command, then measures with the guests idle: host CPU used by the hypervisor process (all threads)
 * over 10 s, its resident memory, resident memory per domain beyond the guest RAM configured, domain creation
 * rate (create calls only, not boots), and `list` latency. No QEMU side: QEMU has no multi-domain equivalent.
 * Timings never decide pass/fail; record results in docs/benchmarks.md.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { ConsoleTap, connectHv, stopHv } from "../../test/hv/hv-client.js";
import type { HostInfo } from "../../src/hv/protocol.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const arg = (name: string, def: number): number => { const k = process.argv.indexOf(name); return k >= 0 ? Number(process.argv[k + 1]) : def; };

function procStat(pid: number): { ticks: number; rssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return { ticks: Number(f[11]) + Number(f[12]), rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) };
}

async function main(): Promise<void> {
  const n = arg("--domains", 10), mem = arg("--memory", 64), timeout = arg("--timeout", 3600), perThread = arg("--per-thread", 0);
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xeno-density-"));
  const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", String(Math.max(1024, n * (mem + 8))),
    ...(perThread > 0 ? ["--domains-per-thread", String(perThread)] : [])],
    { stdio: ["ignore", "ignore", "ignore"] });
  const clk = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
  try {
    const c = await connectHv(dir);
    const rss0 = procStat(hv.pid!).rssKiB;
    const taps: ConsoleTap[] = [];
    const t0 = performance.now();
    let createMs = 0;
    for (let i = 1; i <= n; i++) {
      const c0 = performance.now();
      const { domid } = await c.ok<{ domid: number }>("create", { spec: { name: `idle${i}`, memMiB: mem, vcpus: 1, kernel: images.kernel,
        ramdisk: images.initrd, cmdline: "console=hvc0", xen: true, disks: [], vifs: [] } });
      createMs += performance.now() - c0;
      taps.push(await ConsoleTap.open(join(dir, "hv.sock"), domid));
    }
    process.stderr.write(`created ${n} domains (${(createMs / n).toFixed(1)} ms per create call); waiting for the boots…\n`);
    let ready = 0;
    await Promise.all(taps.map((t, i) => t.waitFor(new RegExp(GUEST_READY_MARKER), 0, timeout * 1000, `idle${i + 1}`).then(() => {
      ready++;
      if (ready % 10 === 0 || ready === n) process.stderr.write(`  ${ready}/${n} ready after ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
    })));
    const bootAll = (performance.now() - t0) / 1000;
    await Promise.all(taps.map((t, i) => t.run(`echo ANSWER-${i + 1}`, new RegExp(`^ANSWER-${i + 1}\\r?$`, "m"), 300_000)));
    await new Promise((r) => setTimeout(r, 5000));
    const s0 = procStat(hv.pid!), w0 = performance.now();
    await new Promise((r) => setTimeout(r, 10_000));
    const s1 = procStat(hv.pid!), w1 = performance.now();
    const idleCpu = (s1.ticks - s0.ticks) / clk / ((w1 - w0) / 1000);
    const lat: number[] = [];
    for (let i = 0; i < 20; i++) { const l0 = performance.now(); await c.ok("list"); lat.push(performance.now() - l0); }
    lat.sort((a, b) => a - b);
    const perDomKiB = (s1.rssKiB - rss0) / n;
    console.log(`${n} idle domains × ${mem} MiB (Debian ${images.kernelVersion}, busybox initramfs), one hypervisor process:`);
    console.log(`  all consoles answered; all ready ${bootAll.toFixed(0)} s after the first create`);
    console.log(`  create call: ${(createMs / n).toFixed(1)} ms per domain (${(n / (createMs / 1000)).toFixed(1)} creates/s, boots not included)`);
    console.log(`  host CPU while idle: ${(idleCpu * 100).toFixed(1)} % of one core in total (${(idleCpu * 100 / n).toFixed(2)} % per domain)`);
    console.log(`  hypervisor RSS: ${(s1.rssKiB / 1024).toFixed(0)} MiB; per domain ${(perDomKiB / 1024).toFixed(1)} MiB ` +
      `(guest RAM configured ${mem} MiB; RSS counts only guest pages touched)`);
    console.log(`  list latency: median ${lat[10]!.toFixed(1)} ms, max ${lat[19]!.toFixed(1)} ms`);
    const info = await c.ok<HostInfo>("info");
    console.log(`  worker threads: ${info.vmThreads ?? "?"} (at most ${info.domainsPerThread ?? 1} domains each)`);
    for (const t of taps) t.close();
    c.close();
  } finally {
    await stopHv(hv, dir, 2000);
  }
}

main().catch((e) => { process.stderr.write(`bench/density: ${(e as Error).stack ?? e}\n`); process.exitCode = 1; });
