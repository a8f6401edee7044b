/**
 * The translator's cost on real blocks, cold and warm: replays the blocks an `XENO_JIT_DUMP=DIR` run wrote
 * (DIR/mNNNNN.txt: each block's page slot and guest words) through a fresh Translator in this process, `passes`
 * times, and prints the CPU time (process.cpuUsage: this thread and V8's) of the first pass — the translator
 * before V8 has optimized it, as in a short program — and the min and median of the passes after the fifth.
 *
 *   XENO_JIT_DUMP=/tmp/d node dist/src/cli/main.js run-user PROGRAM ...   # once, to get the blocks
 *   node dist/bench/cpu/translate.js /tmp/d[,/tmp/d2...] [passes, default 40] [DIST, default this build's dist]
 *
 * Compare two builds by alternating fresh processes with DIST pointing at each (docs/benchmarks.md, session 25).
 */
import { readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));

async function main(): Promise<void> {
  const [dirs, passesArg, distArg] = process.argv.slice(2);
  if (dirs === undefined) { process.stderr.write("usage: translate.js DUMPDIR[,DUMPDIR...] [passes] [DIST]\n"); process.exitCode = 2; return; }
  const passes = Math.max(6, Number(passesArg ?? 40) | 0);
  const dist = distArg ?? path.resolve(HERE, "../..");
  const url = (p: string): string => pathToFileURL(path.join(dist, p)).href;
  const { Translator, MAX_BLOCK } = await import(url("src/cpu/arm64/jit/translate.js")) as typeof import("../../src/cpu/arm64/jit/translate.js");
  const { sharedDecoder } = await import(url("src/cpu/arm64/cpu.js")) as typeof import("../../src/cpu/arm64/cpu.js");
  const blocks: { slot: number; words: Int32Array; n: number }[] = [];
  for (const d of dirs.split(",")) {
    for (const f of readdirSync(d).filter((x) => x.endsWith(".txt")).sort()) {
      for (const line of readFileSync(path.join(d, f), "utf8").split("\n")) {
        const m = /slot (\d+) .*instructions: (.*)$/.exec(line);
        if (m === null) continue;
        const slot = Number(m[1]);
        const ws = m[2].trim().split(/\s+/).map((h) => parseInt(h, 16) | 0);
        const words = new Int32Array(1024);
        words.set(ws.slice(0, 1024 - slot), slot);
        blocks.push({ slot, words, n: ws.length });
      }
    }
  }
  if (blocks.length === 0) throw new Error(`no blocks in ${dirs} (XENO_JIT_DUMP's mNNNNN.txt files)`);
  const t = new Translator(sharedDecoder());
  const ms: number[] = [];
  let bytes = 0;
  for (let r = 0; r < passes; r++) {
    const c0 = process.cpuUsage();
    bytes = 0;
    // A block may branch to its own start (chain 2: some function index); nothing else is in its module here.
    for (const b of blocks) { t.translate(b.words, b.slot, Math.min(MAX_BLOCK, 1024 - b.slot), (s) => (s === b.slot ? 2 : -1)); bytes += t.c.len; }
    const u = process.cpuUsage(c0);
    ms.push((u.user + u.system) / 1000);
  }
  const warm = ms.slice(5).sort((a, b) => a - b);
  const insns = blocks.reduce((s, b) => s + b.n, 0);
  process.stdout.write(`${blocks.length} blocks, ${insns} instructions, ${bytes} bytes of wasm per pass: first pass ${ms[0].toFixed(1)} ms CPU; ` +
    `passes 6-${passes}: min ${warm[0].toFixed(2)} ms, median ${warm[warm.length >> 1].toFixed(2)} ms\n`);
}

main().catch((e: unknown) => { process.stderr.write(`bench/cpu/translate: ${e instanceof Error ? e.message : String(e)}\n`); process.exitCode = 1; });
