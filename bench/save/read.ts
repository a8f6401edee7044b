/**
 * bench/save/read: the save-file reader alone (readSaveFile: read, SHA-256, pages into a new domain memory) on
 * one file, in this process — the "read and checked" part of a restore without the hypervisor, its threads
 * and the other processes a loaded host makes it wait for. With --other, another build's reader (a dist
 * directory, e.g. a worktree of an older commit) runs alternately with this one, for an A/B in one run.
 *
 *   node --expose-gc dist/bench/save/read.js FILE [--runs N] [--other DIST [--other-file FILE2]] [--helper] [--lazy]
 *
 * --lazy: also the lazy restore's read (src/hv/lazy-ram.ts: checked whole, pages left out of the memory).
 *
 * FILE: a save file (`xeno save`); its RAM pages are taken from the file's own config. --other-file: the file
 * the other build reads (its own save of the same guest, when the two builds' formats differ). Timings never decide
 * pass/fail; record results in docs/benchmarks.md. --helper: this build's reader is run twice per round, alone
 * and with a worker thread taking page jobs beside it (save-jobs.ts, as the hypervisor's domain thread does);
 * the CPU time is the process's, both threads.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { readSaveFile } from "../../src/hv/save-file.js";
import type { PageHelper } from "../../src/hv/save-format.js";

type Reader = (file: string, configPages: (cfg: Record<string, unknown>) => number) => Promise<{ dataPages: number }>;

/** A worker thread that takes page jobs (the hypervisor's vm-worker.ts does the same on "read-pages"). */
function helperThread(): { helper: PageHelper; jobs: () => number; close: () => Promise<number> } {
  const url = new URL("../../src/hv/save-jobs.js", import.meta.url).href;
  const w = new Worker(`import { parentPort } from "node:worker_threads"; import { helpWithPageJobs } from ${JSON.stringify(url)};
    parentPort.on("message", (m) => parentPort.postMessage(helpWithPageJobs(m)));`, { eval: true });
  let alive = true, ran = 0;
  w.on("message", (n: number) => { ran += n; });
  w.on("exit", () => { alive = false; });
  return { helper: { offer: (m) => { w.postMessage(m); return true; }, alive: () => alive }, jobs: () => ran, close: () => w.terminate() };
}

const arg = (name: string): string | undefined => { const k = process.argv.indexOf(name); return k >= 0 ? process.argv[k + 1] : undefined; };
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]!; };

async function main(): Promise<void> {
  const file = process.argv[2];
  if (file === undefined || file.startsWith("--") || !fs.existsSync(file)) throw new Error("usage: read.js FILE [--runs N] [--other DIST] (FILE: a save file)");
  const runs = Number(arg("--runs") ?? 5);
  // The config's memory in pages, plus the Xen area for a Xen DomU (as the hypervisor's restore counts them).
  const pages = (cfg: Record<string, unknown>): number => (cfg.memMiB as number) * 256 + (cfg.xen === true ? 256 : 0);
  const readers: [string, Reader, string][] = [["this build", readSaveFile as Reader, file]];
  let helper: ReturnType<typeof helperThread> | null = null;
  if (process.argv.includes("--helper")) {
    helper = helperThread();
    const h = helper.helper;
    await new Promise((r) => setTimeout(r, 300)); // its module loaded, as the hypervisor's spare thread is
    readers.push(["this build + helper thread", ((f, p) => readSaveFile(f, p, undefined, h)) as Reader, file]);
  }
  if (process.argv.includes("--lazy")) {
    // A lazy restore's read (src/hv/lazy-ram.ts): every record and the checksum checked, the pages' CRC-32s
    // and offsets recorded, no page written into the memory; its file, kept open for the loader, closed here.
    readers.push(["this build, lazy (checked, pages left out)", (async (f, p) => {
      const r = await readSaveFile(f, p, undefined, null, undefined, true);
      await r.lazy?.fh.close();
      return r;
    }) as Reader, file]);
  }
  const other = arg("--other");
  if (other !== undefined) {
    const m = await import(pathToFileURL(path.resolve(other, "src/hv/save-file.js")).href) as { readSaveFile: Reader };
    readers.push([`other (${other})`, m.readSaveFile, arg("--other-file") ?? file]);
  }
  const times = new Map<string, number[]>(readers.map(([n]) => [n, []]));
  // CPU time of this process per read (its threads: the reads are synchronous here), what a loaded host does not inflate.
  const cpus = new Map<string, number[]>(readers.map(([n]) => [n, []]));
  for (let k = 0; k < runs; k++) {
    for (const [name, read, f] of readers) {
      (globalThis as { gc?: () => void }).gc?.();
      const t0 = performance.now(), c0 = process.cpuUsage();
      const r = await read(f, pages);
      times.get(name)!.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpus.get(name)!.push((c.user + c.system) / 1000);
      if (r.dataPages < 1) throw new Error(`${name}: no pages read`);
    }
  }
  console.log(`readSaveFile of ${file} (${(fs.statSync(file).size / 2 ** 20).toFixed(1)} MiB), ${runs} runs alternated, load average ${fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0]}:`);
  for (const [name, t] of times) {
    const c = cpus.get(name)!;
    if (helper !== null && name.endsWith("helper thread")) console.log(`  (the helper thread read ${helper.jobs()} PAGE_DATA records over the runs)`);
    console.log(`  ${name}: median ${median(t).toFixed(1)} ms (runs ${t.map((x) => x.toFixed(1)).join(", ")}); CPU median ${median(c).toFixed(1)} ms (${c.map((x) => x.toFixed(1)).join(", ")})`);
  }
}

main().then(() => process.exit()).catch((e) => { process.stderr.write(`bench/save/read: ${(e as Error).message}\n`); process.exitCode = 1; });
