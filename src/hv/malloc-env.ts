/**
 * glibc malloc settings for the hypervisor process, given in its environment by whoever starts it (xenod's
 * HvLink, bench/density/probe): glibc reads them once, before main(), so the process cannot set them for itself,
 * and Node has no exec() to restart itself with them (a re-spawn would leave a second process).
 *
 * Why (docs/memory.md, "Threads"; docs/benchmarks.md, session 26): every thread that mallocs gets an arena of its
 * own, up to 8 per core — each domain thread, the compile worker, V8's compile threads — and an arena keeps its
 * high-water mark: glibc gives memory back only from the top of a heap, and the dynamic mmap threshold (raised to
 * the size of every large block freed, up to 32 MiB) moves the 256 KiB page-table chunks, module buffers and
 * V8 zones of a boot's compiling into the arenas, where they stay as holes after they are freed. Measured with
 * eight 64 MiB Debian DomUs after their boot: the arenas held 14.5 MiB per domain of the 18.9 MiB of "other
 * anonymous" memory. With these values the threads share two arenas (the main one and one more), blocks of 512 KiB
 * and more are mapped on their own and unmapped when freed (a fixed threshold: no dynamic raising), and a heap is
 * trimmed once 1 MiB is free at its top. One domain booted in one thread (bench/density/jit-memory, four variants
 * side by side, 2026-12-08): other anonymous memory after 30 s idle 66.2 MiB with glibc's defaults, 60.8 with
 * the arena cap alone, 58.6 with these values, 55.7 with 128 KiB thresholds — whose mmap/munmap churn cost +0.7 s
 * of system time and +4 % of the boot's CPU (+12 % in another pair), against +2 % for these.
 *
 * Values already in the environment are kept (an operator's choice, or an A/B run); XENO_MALLOC_ENV=0 gives none.
 */

/** glibc's tunables as environment variables (mallopt(3): M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD). */
export const HV_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: "2",
  MALLOC_MMAP_THRESHOLD_: "524288",
  MALLOC_TRIM_THRESHOLD_: "1048576",
};

/** The environment to start the hypervisor with: `base` plus HV_MALLOC_ENV's variables it does not set. */
export function hvSpawnEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (base.XENO_MALLOC_ENV === "0") return { ...base };
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [k, v] of Object.entries(HV_MALLOC_ENV)) if (env[k] === undefined) env[k] = v;
  return env;
}

/** Which of HV_MALLOC_ENV's variables this process was started with, as `K=V …` (for its log line). */
export function mallocEnvSummary(env: NodeJS.ProcessEnv = process.env): string {
  const set = Object.keys(HV_MALLOC_ENV).filter((k) => env[k] !== undefined).map((k) => `${k}=${env[k]}`);
  return set.length > 0 ? set.join(" ") : "glibc defaults";
}
