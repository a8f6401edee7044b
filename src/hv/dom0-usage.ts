/**
 * Domain-0's row in `xeno list` / `xeno top` as Xen means it: the toolstack's own CPU time and memory, not the
 * guests'. Xeno's "dom0" is the xeno-hv process (XenStore, the control socket, the scheduler, the bridges' I/O,
 * blkback's I/O threads) and xenod; the guests run in xeno-hv's domain threads, in RAM that is theirs.
 *
 *  - CPU: xeno-hv's CPU time (getrusage, all threads) minus that of its domain threads, which name themselves
 *    DOMAIN_THREAD_NAME (/proc/thread-self/comm, at start: nameDomainThread) so that /proc/self/task/T/stat
 *    (utime + stime, in USER_HZ ticks: proc(5)) gives theirs. Back-end work done on a domain's thread (blkback's
 *    request checks, netback's copies) counts for the guest there.
 *  - Memory: xeno-hv's resident set minus the resident part of the guests' RAM, each a shared
 *    WebAssembly.Memory that V8 maps read-write right after a 2 GiB inaccessible guard (/proc/self/smaps).
 * xenod adds its own CPU time and resident set to the row it passes on (src/toolstack/daemon.ts).
 * Read at most once a second (smaps of a process with many domains is long).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

export const DOMAIN_THREAD_NAME = "xeno-vm";
/** The tick of /proc's utime/stime: USER_HZ, 100 on Linux whatever the kernel's HZ (proc(5), times(2)). */
const USER_HZ = 100;
const GUARD_BYTES = 2 * 1024 * 1024 * 1024;

/** Called once on each domain thread: names it for the accounting above (best effort: Linux only). */
export function nameDomainThread(): void {
  try { writeFileSync("/proc/thread-self/comm", DOMAIN_THREAD_NAME); } catch { /* not Linux: Domain-0 then includes the guests */ }
}

/** CPU seconds of this process's threads named DOMAIN_THREAD_NAME (0 where /proc is not there). */
export function domainThreadsCpuSeconds(): number {
  let ticks = 0;
  let tids: string[];
  try { tids = readdirSync("/proc/self/task"); } catch { return 0; }
  for (const t of tids) {
    try {
      if (readFileSync(`/proc/self/task/${t}/comm`, "latin1").trim() !== DOMAIN_THREAD_NAME) continue;
      const stat = readFileSync(`/proc/self/task/${t}/stat`, "latin1");
      // Fields after the ")" that ends comm: state is field 3, utime 14, stime 15.
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* the thread ended meanwhile */ }
  }
  return ticks / USER_HZ;
}

/** KiB resident in read-write mappings that follow a 2 GiB guard: the wasm memories (guests' RAM). */
export function wasmResidentKiB(smaps: string): number {
  let kib = 0;
  let prevGuard = false, inWasm = false;
  for (const l of smaps.split("\n")) {
    const h = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) /.exec(l);
    if (h) {
      const size = parseInt(h[2]!, 16) - parseInt(h[1]!, 16);
      inWasm = prevGuard && h[3] === "rw-p";
      prevGuard = h[3] === "---p" && size === GUARD_BYTES;
      continue;
    }
    if (inWasm) { const r = /^Rss:\s+(\d+) kB/.exec(l); if (r) kib += Number(r[1]); }
  }
  return kib;
}

export interface Dom0Usage { cpuSeconds: number; memKiB: number }

let cached: { at: number; u: Dom0Usage } | null = null;

/** This process's share of Domain-0 (see the file comment). */
export function dom0Usage(now = Date.now()): Dom0Usage {
  if (cached !== null && now - cached.at < 1000) return cached.u;
  const c = process.cpuUsage();
  const cpuSeconds = Math.max(0, (c.user + c.system) / 1e6 - domainThreadsCpuSeconds());
  let guestKiB = 0;
  try { guestKiB = wasmResidentKiB(readFileSync("/proc/self/smaps", "latin1")); } catch { /* not Linux */ }
  const memKiB = Math.max(0, Math.floor(process.memoryUsage().rss / 1024) - guestKiB);
  cached = { at: now, u: { cpuSeconds, memKiB } };
  return cached.u;
}
