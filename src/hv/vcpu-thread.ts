/**
 * vCPUs on threads of their own. A domain with several vCPUs keeps vCPU 0, its devices, its Xen layer and its
 * back-ends in its home thread (vm-worker.ts) and hands vCPUs 1..n-1 to one worker thread each
 * (Board.detachVcpus), which runs it with src/machine/remote-vcpu.ts over the same shared domain memory: so a
 * 2-vCPU guest with two busy processes uses two pCPUs. The home starts these threads itself (nested workers):
 * they talk to it through shared memory only (the vCPU link and its doorbell), never through messages, since the
 * home's loop never returns to its event loop.
 *
 * With XENO_VCPU_THREADS=1, for a domain with vcpus > 1; otherwise every vCPU stays in the home thread (VCPU_THREADS).
 */
import { Worker, isMainThread, workerData } from "node:worker_threads";
import type { Board } from "../machine/board.js";
import type { DomainClock } from "../common/domain-clock.js";
import { DomainClock as Clock } from "../common/domain-clock.js";
import { RemoteVcpu, reportVcpuCrash } from "../machine/remote-vcpu.js";
import { nameDomainThread } from "./dom0-usage.js";
import { cpuAt, permitAt, wantAt } from "./sched-words.js";

/**
 * Whether domains with several vCPUs run them on threads of their own: only with XENO_VCPU_THREADS=1. Off by
 * default because a threaded 2-vCPU boot still measured slower than one thread on this 2-core host: the stalls
 * on hand-offs are gone (a lost wake-up, rings, the UART: docs/cpu-internals.md "Hand-offs, measured"), but it
 * takes about a third more CPU (session 22, three alternated runs at load 13–21: 21.0 against 15.7 s, +34 %) —
 * the same guest instructions, the extra in the second thread's own warm-up (docs/cpu-internals.md "Where the
 * extra CPU goes", docs/benchmarks.md session 22); off, every vCPU of a domain is time-sliced in its home thread.
 */
export const VCPU_THREADS = process.env.XENO_VCPU_THREADS === "1";

interface VcpuThreadData {
  kind: "vcpu-thread";
  memory: WebAssembly.Memory;
  ramBytes: number;
  vcpus: number;
  index: number;
  clock: { baseTicks: number; wall0Ms: number };
  /** The platform's stage-2 map (over a SharedArrayBuffer: shared, not copied), or null. */
  stage2: Uint8Array | null;
  /** The board's dirty log for live migration (Board.sharedDirtyLog, over a SharedArrayBuffer). */
  dirty: Uint8Array | null;
  /** The home thread's doorbell (Int32Array(1)): rung with Atomics.add + notify. */
  doorbell: SharedArrayBuffer;
  /** The scheduler's control words of the domain (sched-words.ts: this vCPU's permit, want and CPU seconds), when it has them. */
  sched: SharedArrayBuffer | null;
}

/** Hands vCPUs 1..n-1 of `board` to new threads and starts them. Returns the threads (for tests). */
export function startVcpuThreads(board: Board, clock: DomainClock, o: { doorbell: SharedArrayBuffer; sched: SharedArrayBuffer | null }): Worker[] {
  const n = board.vcpus.length;
  if (n < 2) return [];
  const indices: number[] = [];
  for (let k = 1; k < n; k++) indices.push(k);
  board.detachVcpus(indices);
  const stage2 = board.stage2Map;
  if (stage2 !== null && !(stage2.buffer instanceof SharedArrayBuffer)) throw new Error("vCPU threads need the stage-2 map in shared memory");
  return indices.map((index) => {
    const data: VcpuThreadData = { kind: "vcpu-thread", memory: board.memory, ramBytes: board.ramBytes, vcpus: n, index,
      clock: clock.origin(), stage2, dirty: board.sharedDirtyLog, doorbell: o.doorbell, sched: o.sched };
    // stdout/stderr not piped to the home (it never runs its event loop): these threads write nothing.
    return new Worker(new URL("./vcpu-thread.js", import.meta.url), { workerData: data, stdout: true, stderr: true });
  });
}

function main(d: VcpuThreadData): void {
  nameDomainThread(); // a guest's vCPU: its CPU time is not Domain-0's (dom0-usage.ts)
  const bell = new Int32Array(d.doorbell);
  const wakeHome = (): void => { Atomics.add(bell, 0, 1); Atomics.notify(bell, 0); };
  try {
    const v = new RemoteVcpu({ memory: d.memory, ramBytes: d.ramBytes, vcpus: d.vcpus, index: d.index,
      clock: Clock.fromOrigin(d.clock), stage2: d.stage2, dirty: d.dirty, wakeHome,
      sched: d.sched !== null ? { words: new Int32Array(d.sched), permit: permitAt(d.index), want: wantAt(d.index), f64: new Float64Array(d.sched), cpu: cpuAt(d.index) } : null });
    v.run();
  } catch (e) {
    reportVcpuCrash(d.memory, d.ramBytes, d.index, e instanceof Error ? (e.stack ?? e.message) : String(e), wakeHome);
  }
}

if (!isMainThread && (workerData as { kind?: string } | null)?.kind === "vcpu-thread") main(workerData as VcpuThreadData);
