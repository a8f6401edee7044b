/**
 * Sorts a process's resident memory by mapping kind, from /proc/PID/smaps (bench/density's probe and jit-memory):
 *   ram    — anonymous mappings at least `ramBytes` long: a domain's WebAssembly.Memory (reserved up to its
 *            maximum, RAM and the tail after it, so never shorter than RAM)
 *   exec   — anonymous mappings with execute permission: V8's JIT code and the wasm code spaces
 *   v8     — 256 KiB-aligned anonymous mappings of at most 8 MiB without a name: V8 heap pages
 *   other  — the rest of the anonymous memory, and of it:
 *              arena — glibc's per-thread malloc arenas: a read-write mapping starting on a 64 MiB boundary
 *                      (HEAP_MAX_SIZE, glibc malloc/arena.c) directly followed by its reserved, inaccessible rest
 *              brk   — the main arena's heap ([heap])
 *            the remainder being malloc's own mappings of large blocks, thread stacks, V8's other reservations
 *   file   — file mappings (the node binary and libraries)
 * By mapping size, so approximate: the kernel merges adjacent anonymous mappings of one protection, and a merged
 * one lands in "other". `big` lists the mappings other than `ram` with at least `bigKiB` resident.
 */
import { readFileSync } from "node:fs";

export interface Breakdown {
  ramKiB: number; v8KiB: number; execKiB: number; otherKiB: number; fileKiB: number; rssKiB: number;
  /** Parts of otherKiB: glibc's thread arenas and the main (brk) heap. */
  arenaKiB: number; brkKiB: number;
  /** Thread arenas found (each a thread's, or shared when MALLOC_ARENA_MAX bounds them). */
  arenas: number;
  big: string[];
}

interface Map_ { start: number; end: number; perms: string; file: boolean; name: string; rss: number }

const ARENA_ALIGN = 64 * 2 ** 20;

/** The breakdown of process `pid` ("self" for this one). */
export function smapsBreakdown(pid: number | "self", ramBytes: number, bigKiB: number): Breakdown {
  const b: Breakdown = { ramKiB: 0, v8KiB: 0, execKiB: 0, otherKiB: 0, fileKiB: 0, rssKiB: 0, arenaKiB: 0, brkKiB: 0, arenas: 0, big: [] };
  const maps: Map_[] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      maps.push({ start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, file: head[4] !== "0", name: head[5] ?? "", rss: 0 });
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && maps.length > 0) maps[maps.length - 1]!.rss = Number(rss[1]);
  }
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i]!, size = m.end - m.start, exec = m.perms.includes("x"), kib = m.rss, next = maps[i + 1];
    b.rssKiB += kib;
    if (m.file) b.fileKiB += kib;
    else if (size >= ramBytes) { b.ramKiB += kib; continue; }
    else if (exec) b.execKiB += kib;
    else if (m.start % ARENA_ALIGN === 0 && m.name === "" && m.perms.startsWith("rw") && next !== undefined && next.start === m.end
      && next.perms.startsWith("---") && next.end - m.start <= ARENA_ALIGN) { b.otherKiB += kib; b.arenaKiB += kib; b.arenas++; }
    else if (m.name === "[heap]") { b.otherKiB += kib; b.brkKiB += kib; }
    else if (size === 256 * 1024 || (size % (256 * 1024) === 0 && size <= 8 * 1024 * 1024 && m.name === "")) b.v8KiB += kib;
    else b.otherKiB += kib;
    if (kib >= bigKiB) b.big.push(`${(size / 2 ** 20).toFixed(2)} MiB map ${exec ? "(x) " : ""}${m.name || "[anon]"}: ${(kib / 1024).toFixed(1)} MiB resident`);
  }
  return b;
}
