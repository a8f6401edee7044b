/**
 * The stats words a domain's worker thread (vm-worker.ts) publishes for the host (vm-host.ts): here, in a module
 * of constants, so the host's thread reads them without importing vm-worker.ts — whose imports are the whole
 * board, CPU, MMU and compiler, which the main thread of `xeno create` then loaded and evaluated before it
 * started the worker (~190 modules; the board and the compiler alone ~0.2 s of CPU at load 20, 2026-12-07).
 */
import { IO_ALL_WORDS } from "./io-stats.js";
import { MAX_BOARD_VCPUS } from "../machine/layout.js";

/** The stats words (Float64) the worker publishes: run time in seconds (the vCPUs' share of this thread),
 * 1 when every vCPU waits for an event, the domain's current pages, vCPUs online, 1 when paused. */
export const STAT_CPU_S = 0, STAT_BLOCKED = 1, STAT_PAGES = 2, STAT_ONLINE = 3, STAT_PAUSED = 4, STAT_WORDS = 64;
/** From STAT_IO on: the back-ends' counters for xentop and the API (io-stats.ts IO_ALL_WORDS of them). */
export const STAT_IO = 5;
/**
 * From STAT_VCPU_S on: each vCPU's CPU seconds (xcp-rrdd's per-vCPU `cputime`, for the API's `cpuN` series), one
 * word per vCPU, MAX_BOARD_VCPUS of them. A vCPU on a thread of its own: that thread's run time. A vCPU on the
 * home thread: its runVcpu time (Board.homeRunS), except vCPU 0, which also takes the rest of the home thread's
 * slices (devices, back-ends, the Xen layer between vCPU runs), as sched-words.ts charges the home's time to
 * vCPU 0's entity. So the words sum to STAT_CPU_S.
 */
export const STAT_VCPU_S = STAT_IO + IO_ALL_WORDS;
if (STAT_VCPU_S + MAX_BOARD_VCPUS > STAT_WORDS) throw new Error("vm-worker: STAT_WORDS too small for the per-vCPU words");
