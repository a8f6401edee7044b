/**
 * The CPU time of the calling thread, for accounting a domain's or a vCPU's time as Xen does (time it ran, not
 * time that passed while it held a pCPU slot: on a loaded host the kernel deschedules a worker in the middle of
 * a slice, and wall time then charged the domain for other processes' work — three busy domains on two pCPUs
 * added up to 2.2 pCPUs, and a 2-vCPU domain on one thread to 1.05 CPUs in a 5 s row of its history).
 *
 * Source: /proc/thread-self/schedstat, whose first field is the kernel's sum_exec_runtime of this thread in ns.
 * Node 20 has no thread CPU clock (process.cpuUsage and resourceUsage are the whole process's; threadCpuUsage
 * came in Node 23). The kernel updates sum_exec_runtime of a running thread at its scheduler ticks and context
 * switches, so one read may be up to a tick (1–10 ms) behind; differences over consecutive slices telescope, so
 * totals stay right to about a tick.
 *
 * One reader per thread (each worker loads its own copy of this module): the file is opened on first use in the
 * thread that reads it and closed when that thread ends. A read is one pread into a buffer made once and parses
 * digits without allocating: 1.4 µs on this host when quiet, ~7 µs at load 20. Two per slice: a boot of the demo
 * guest to its marker and poweroff read it 41,331 times (~60 ms of its ~12 s of CPU when quiet). Where the file is missing or all zeros (no schedstats, not
 * Linux), or XENO_CPU_ACCOUNT=wall, `threadCpu()` returns null and callers keep wall time.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

export interface ThreadCpuClock {
  /** Seconds this thread has run on a CPU. */
  seconds(): number;
}

class SchedstatClock implements ThreadCpuClock {
  private readonly buf = new Uint8Array(64);
  constructor(private readonly fd: number) {}

  seconds(): number {
    const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
    let ns = 0, i = 0;
    for (; i < n; i++) {
      const c = this.buf[i]!;
      if (c < 0x30 || c > 0x39) break;
      ns = ns * 10 + (c - 0x30);
    }
    return i === 0 ? NaN : ns / 1e9;
  }
}

let clock: ThreadCpuClock | null | undefined;

/** This thread's CPU clock, or null where the host has none (then account wall time). */
export function threadCpu(): ThreadCpuClock | null {
  if (clock !== undefined) return clock;
  clock = null;
  if (process.env.XENO_CPU_ACCOUNT === "wall") return clock; // for A/B against the wall-time accounting
  let fd = -1;
  try {
    // A kernel without schedstats prints "0 0 0" for every task; the process's first thread has run for more
    // than a tick by the time anything asks (Node's start-up alone), so a zero there means no clock.
    if (/^0 0 /.test(readFileSync("/proc/self/schedstat", "latin1"))) return clock;
    fd = openSync("/proc/thread-self/schedstat", "r");
    const c = new SchedstatClock(fd);
    if (!Number.isFinite(c.seconds())) throw new Error("unreadable");
    clock = c;
    const owned = fd;
    process.once("exit", () => { try { closeSync(owned); } catch { /* closed */ } }); // a worker's exit too
  } catch {
    if (fd >= 0) closeSync(fd);
  }
  return clock;
}
