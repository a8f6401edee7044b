/**
 * Sorts a process's resident memory by mapping kind, from /proc/PID/smaps (bench/density's probe and jit-memory):
 *   ram    — anonymous mappings at least `ramBytes` long: a domain's WebAssembly.Memory (reserved up to its
 *            maximum, RAM and the tail after it, so never shorter than RAM)
 *   exec   — anonymous mappings with execute permission: V8's JIT code and the wasm code spaces
 *   v8     — 256 KiB-aligned anonymous mappings of at most 8 MiB without a name: V8 heap pages
 *   other  — the rest of the anonymous memory: malloc arenas, thread stacks
 *   file   — file mappings (the node binary and libraries)
 * By mapping size, so approximate: the kernel merges adjacent anonymous mappings of one protection, and a merged
 * one lands in "other". `big` lists the mappings other than `ram` with at least `bigKiB` resident.
 */
import { readFileSync } from "node:fs";

export interface Breakdown { ramKiB: number; v8KiB: number; execKiB: number; otherKiB: number; fileKiB: number; rssKiB: number; big: string[] }

/** The breakdown of process `pid` ("self" for this one). */
export function smapsBreakdown(pid: number | "self", ramBytes: number, bigKiB: number): Breakdown {
  const b: Breakdown = { ramKiB: 0, v8KiB: 0, execKiB: 0, otherKiB: 0, fileKiB: 0, rssKiB: 0, big: [] };
  let size = 0, file = false, exec = false, name = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      size = parseInt(head[2]!, 16) - parseInt(head[1]!, 16);
      exec = head[3]!.includes("x");
      file = head[4] !== "0";
      name = head[5] ?? "";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const kib = Number(rss[1]);
    b.rssKiB += kib;
    if (file) b.fileKiB += kib;
    else if (size >= ramBytes) { b.ramKiB += kib; continue; }
    else if (exec) b.execKiB += kib;
    else if (size === 256 * 1024 || (size % (256 * 1024) === 0 && size <= 8 * 1024 * 1024 && name === "")) b.v8KiB += kib;
    else b.otherKiB += kib;
    if (kib >= bigKiB) b.big.push(`${(size / 2 ** 20).toFixed(2)} MiB map ${exec ? "(x) " : ""}${name || "[anon]"}: ${(kib / 1024).toFixed(1)} MiB resident`);
  }
  return b;
}
