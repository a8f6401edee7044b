/**
 * Generated-instruction oracle: random A64 sequences (random-gen.ts) run under qemu-aarch64 (cortex-a57, an
 * ARMv8.0 model) and under `xeno run-user`; every sequence's registers, flags, V registers and scratch memory
 * must agree.
 *
 *   XENO_SEED=n          reproduce a run (the seed is printed at the start and in every failure)
 *   XENO_RANDOM_SEQS=n   number of sequences (default 10000; the ≥10000 assertion applies to the default)
 *   XENO_RANDOM_ONLY=i   run only sequence i of the seed (sequence i does not depend on the count)
 *   XENO_RANDOM_XENO=qemu  run qemu on both sides (develops/checks the harness without xeno); any other value
 *                        is a command run as `CMD BINARY START` in place of `bin/xeno run-user`
 *
 * Living with a partial instruction set: xeno's user-mode runner has no signal delivery, so the first UNDEFINED
 * instruction ends a binary. Units xeno's decode table cannot decode are left out up front (random/screen.ts);
 * when xeno still stops in a sequence, the instruction it stopped at (mapped from the PC on its stderr) becomes
 * a blocked shape: its units are left out of the rest of the binary, which is rebuilt, and both emulators resume
 * after that sequence. Everything left out is reported by class and fails the test.
 *
 * Artefacts (generated .S, binaries, report.txt) go to build/oracle-random/seed-<seed>/, removed when the run passes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateSequences, windowInit, NUM_V, type Sequence, type Unit } from "./random-gen.js";
import { emitProgram } from "./random/harness.js";
import {
  compareRecords, inputsText, lineKey, parseRecords, recordFields, resultsText, sequenceText, unitKey, type FieldDiff,
} from "./random/compare.js";
import { pool, runFrom, runProc } from "./random/run.js";
import { loadXenoDecoder, unitWords, type UnitCode } from "./random/screen.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const SEED = process.env.XENO_SEED !== undefined ? Number(process.env.XENO_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
const COUNT = Number(process.env.XENO_RANDOM_SEQS ?? 10000);
const PER_BINARY = 2500;
const QEMU: readonly [string, readonly string[]] = ["qemu-aarch64-static", ["-cpu", "cortex-a57"]];
const XENO: readonly [string, readonly string[]] = process.env.XENO_RANDOM_XENO === "qemu" ? QEMU
  : process.env.XENO_RANDOM_XENO ? [process.env.XENO_RANDOM_XENO, []] : [path.join(ROOT, "bin/xeno"), ["run-user"]];
const CC = "aarch64-linux-gnu-gcc";
/** Full reports of this many failing sequences (the rest are summarised by class). */
const DETAILED = 6;
/** Units per instruction shape re-run alone to pin down a disagreement. */
const REDUCE_PER_KEY = 3;

const ONLY = process.env.XENO_RANDOM_ONLY !== undefined ? Number(process.env.XENO_RANDOM_ONLY) : undefined;
/** The compiler setting of this run (random-jit.test.ts forces it), part of every reproduction line. */
const JIT_ENV = (process.env.XENO_JIT_HOT !== undefined ? `XENO_JIT_HOT=${process.env.XENO_JIT_HOT} ` : "") +
  (process.env.XENO_JIT_VERIFY !== undefined ? `XENO_JIT_VERIFY=${process.env.XENO_JIT_VERIFY} ` : "");
const REPRO = `${JIT_ENV}XENO_SEED=${SEED} XENO_RANDOM_SEQS=${COUNT} node --test dist/test/oracle/random.test.js`;
const reproOne = (index: number) => `${JIT_ENV}XENO_SEED=${SEED} XENO_RANDOM_ONLY=${index} node --test dist/test/oracle/random.test.js`;

async function build(dir: string, name: string, seqs: Sequence[]): Promise<string> {
  const src = path.join(dir, `${name}.S`), bin = path.join(dir, name);
  writeFileSync(src, emitProgram(seqs, windowInit(SEED)));
  const p = await runProc(CC, ["-static", "-nostdlib", "-O1", "-o", bin, src], { timeoutMs: 120_000 });
  assert.equal(p.code, 0, `assembling ${src} failed (seed ${SEED}):\n${p.stderr.slice(0, 4000)}`);
  return bin;
}

/** A unit left out of the runs: undecodable by xeno, or of a shape xeno stopped at earlier. */
interface Removed { seq: Sequence; line: string; key: string; word?: number }
interface StopInfo { detail: string; line?: string; word?: number; key?: string }
interface Budget { restarts: number; deadline: number }

/** Shared state of one run of the oracle over several chunks (binaries). */
class Oracle {
  /** The version of each sequence whose records are stored (units may have been left out). */
  readonly ran = new Map<number, Sequence>();
  readonly q = new Map<number, Buffer>();
  readonly x = new Map<number, Buffer>();
  readonly stops = new Map<number, StopInfo>();
  readonly skipped = new Set<number>();
  readonly removed: Removed[] = [];
  readonly blocked = new Set<string>();
  readonly badExits: string[] = [];
  xenoRuns = 0; xenoMs = 0; qemuMs = 0; builds = 0;

  constructor(private readonly dir: string, private readonly budget: Budget) {}

  /** Leave out units with a blocked shape from cur[from..]. */
  private prune(cur: Sequence[], from: number): void {
    for (let i = from; i < cur.length; i++) {
      const s = cur[i]!;
      const keep = s.units.filter((u) => {
        const bad = u.lines.find((l) => !l.endsWith(":") && this.blocked.has(lineKey(l)));
        if (bad !== undefined) this.removed.push({ seq: s, line: bad, key: lineKey(bad) });
        return bad === undefined;
      });
      if (keep.length !== s.units.length) cur[i] = { ...s, units: keep, mem: keep.some((u) => u.mem) };
    }
  }

  async runChunk(name: string, chunk: Sequence[]): Promise<void> {
    const cur = chunk.slice();
    let start = 0, iter = 0;
    let built: { bin: string; codes: UnitCode[][]; blocked: number } | undefined;
    for (;;) {
      if (!built || built.blocked !== this.blocked.size) {
        this.prune(cur, start);
        const bin = await build(this.dir, `${name}-${iter++}`, cur);
        this.builds++;
        built = { bin, codes: await unitWords(bin, cur), blocked: this.blocked.size };
      }
      const q = await runFrom(QEMU[0], QEMU[1], built.bin, cur, start, 60_000);
      this.qemuMs += q.ms;
      assert.ok(q.clean, `qemu did not run ${built.bin} cleanly from ${start} (generator/harness bug; seed ${SEED}): ${q.detail}`);
      const x = await runFrom(XENO[0], XENO[1], built.bin, cur, start, 150_000);
      this.xenoRuns++; this.xenoMs += x.ms;
      const end = x.stopLocal ?? cur.length;
      for (let i = start; i < end; i++) {
        const s = cur[i]!;
        this.ran.set(s.index, s);
        this.q.set(s.index, q.records.get(s.index)!);
        const xr = x.records.get(s.index);
        if (xr) this.x.set(s.index, xr);
      }
      if (x.stopLocal === undefined) {
        if (!x.clean) this.badExits.push(`${built.bin}: ${x.detail}`);
        return;
      }
      const k = x.stopLocal, s = cur[k]!;
      const info: StopInfo = { detail: x.detail ?? "" };
      const m = /at pc (?:0x)?([0-9a-f]+)/i.exec(info.detail);
      if (m) {
        const pc = parseInt(m[1]!, 16);
        built.codes[k]!.forEach((c, ui) => {
          if (pc < c.addr || pc >= c.addr + 4 * c.words.length) return;
          info.line = s.units[ui]!.lines.filter((l) => !l.endsWith(":"))[(pc - c.addr) / 4]!;
          info.word = c.words[(pc - c.addr) / 4]!;
          info.key = lineKey(info.line);
        });
      }
      this.ran.set(s.index, s);
      this.q.set(s.index, q.records.get(s.index)!);
      this.stops.set(s.index, info);
      if (info.key) this.blocked.add(info.key);
      start = k + 1;
      if (start >= cur.length) return;
      if (this.budget.restarts <= 0 || Date.now() > this.budget.deadline) {
        for (let i = start; i < cur.length; i++) this.skipped.add(cur[i]!.index);
        return;
      }
      this.budget.restarts--;
    }
  }
}

type Outcome =
  | { kind: "ok" }
  | { kind: "diff"; diffs: FieldDiff[] }
  | { kind: "stop"; info: StopInfo }
  | { kind: "skipped" }
  | { kind: "missing" };

function outcome(o: Oracle, index: number): Outcome {
  if (o.skipped.has(index)) return { kind: "skipped" };
  const stop = o.stops.get(index);
  if (stop) return { kind: "stop", info: stop };
  const q = o.q.get(index), x = o.x.get(index);
  if (!q || !x) return { kind: "missing" };
  const diffs = compareRecords(q, x);
  return diffs.length ? { kind: "diff", diffs } : { kind: "ok" };
}

const flagsText = (nzcv: number) => "NZCV".split("").map((ch, i) => ((nzcv >>> 28) & (8 >> i) ? ch : "-")).join("");

/** Only the inputs a short sequence names. */
function relevantInputs(s: Sequence): string {
  const text = s.units.flatMap((u) => u.lines).join(" ");
  const xs = new Set<number>(), vs = new Set<number>();
  for (const m of text.matchAll(/\b[xw](\d+)\b/g)) xs.add(Number(m[1]));
  for (const m of text.matchAll(/\b[vbhsdq](\d+)\b/g)) vs.add(Number(m[1]));
  const parts = [...xs].filter((n) => n < 28).sort((a, b) => a - b).map((n) => `x${n}=0x${s.x[n]!.toString(16)}`);
  parts.push("nzcv=" + flagsText(s.nzcv));
  for (const n of [...vs].filter((n) => n < NUM_V).sort()) {
    parts.push(`v${n}=0x${s.v[2 * n + 1]!.toString(16).padStart(16, "0")}_${s.v[2 * n]!.toString(16).padStart(16, "0")}`);
  }
  return "    " + parts.join("  ");
}

function diffSummary(o: Outcome): string {
  if (o.kind === "diff") {
    const kinds = new Set(o.diffs.map((d) => d.name.replace(/\d+$/, "").replace(/^mem.*/, "mem")));
    return "differs in " + [...kinds].join(",");
  }
  return o.kind === "stop" ? "xeno stopped" : o.kind;
}

function stopText(info: StopInfo): string {
  return `xeno stopped in this sequence${info.line ? ` at '${info.line}' (word 0x${(info.word! >>> 0).toString(16).padStart(8, "0")})` : ""}: ${info.detail}`;
}

function describeOutcome(s: Sequence, o: Outcome, q: Buffer | undefined, x: Buffer | undefined, full: boolean): string {
  const L = [full ? "  inputs:\n" + inputsText(s) : "  inputs:\n" + relevantInputs(s)];
  if (o.kind === "diff" && q && x) {
    if (full) L.push("  results:\n" + resultsText(q, x, "qemu", "xeno"));
    else L.push("  differing:\n" + o.diffs.map((d) => `    * ${d.name.padEnd(14)} qemu ${d.a}   xeno ${d.b}`).join("\n"));
  } else if (o.kind === "stop") {
    L.push("  " + stopText(o.info));
    if (q && full) L.push("  qemu result:\n" + recordFields(q).filter(([n]) => !n.startsWith("mem")).map(([n, v]) => `    ${n.padEnd(6)}${v}`).join("\n"));
  } else L.push(`  xeno: ${o.kind} (no record)`);
  return L.join("\n");
}

test("comparator: a corrupted record is detected field by field", () => {
  const seqs = generateSequences(1, 4);
  const s = seqs.find((q) => q.mem) ?? seqs[0]!;
  const size = s.mem ? 896 : 384;
  const a = Buffer.alloc(size);
  for (let i = 0; i < size; i++) a[i] = (i * 37 + 11) & 0xff;
  a.writeUInt32LE(s.index, 0); a.writeUInt32LE(0x58454e4f, 4);
  assert.deepEqual(compareRecords(a, Buffer.from(a)), []);
  const corrupt = (off: number) => { const b = Buffer.from(a); b[off]! ^= 0x10; return compareRecords(a, b).map((d) => d.name); };
  assert.deepEqual(corrupt(8 + 5 * 8 + 3), ["x5"]);
  assert.deepEqual(corrupt(8 + 28 * 8), ["x28"]);
  assert.deepEqual(corrupt(240 + 3), ["nzcv"]);
  assert.deepEqual(corrupt(256 + 16 * 3 + 15), ["v3"]);
  if (s.mem) assert.deepEqual(corrupt(384 + 256 + 9), ["mem[x28+8]"]);
  // The stream parser refuses garbage and truncation rather than silently dropping records.
  const byIndex = new Map([[s.index, s]]);
  assert.equal(parseRecords(a, byIndex).records.size, 1);
  assert.match(parseRecords(a.subarray(0, size - 1), byIndex).error ?? "", /truncated/);
  const bad = Buffer.from(a); bad[5] = 0;
  assert.match(parseRecords(bad, byIndex).error ?? "", /magic/);
});

test(`random sequences agree between qemu and xeno (seed ${SEED})`, { timeout: 175_000 }, async (t) => {
  const t0 = Date.now();
  t.diagnostic(`seed ${SEED}; reproduce with: ${REPRO}`);
  console.log(`# random oracle: seed ${SEED}, ${COUNT} sequences (reproduce: ${REPRO})`);
  assert.ok(existsSync(path.join(ROOT, "package.json")), `repo root not found at ${ROOT}`);
  const dir = path.join(ROOT, "build/oracle-random", `seed-${SEED}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  const seqs = ONLY === undefined ? generateSequences(SEED, COUNT) : generateSequences(SEED, ONLY + 1).slice(ONLY);
  assert.ok(seqs.length > 0, "no sequences to run");
  const chunks: Sequence[][] = [];
  for (let i = 0; i < seqs.length; i += PER_BINARY) chunks.push(seqs.slice(i, i + PER_BINARY));

  // Screen against xeno's decode table (see random/screen.ts).
  const undefinedUnits: Removed[] = [];
  const decoder = XENO[0] === QEMU[0] || process.env.XENO_RANDOM_XENO ? undefined : await loadXenoDecoder(ROOT);
  if (decoder) {
    await pool(chunks, 2, async (chunk, ci) => {
      const codes = await unitWords(await build(dir, `screen-${ci}`, chunk), chunk);
      chunk.forEach((s, si) => {
        const keep = s.units.filter((u, ui) => {
          const words = codes[si]![ui]!.words, bad = words.findIndex((w) => decoder.nameOf(w | 0) === "UNDEFINED");
          if (bad < 0) return true;
          const line = u.lines.filter((l) => !l.endsWith(":"))[bad]!;
          undefinedUnits.push({ seq: s, line, key: lineKey(line), word: words[bad]! });
          return false;
        });
        if (keep.length !== s.units.length) chunk[si] = { ...s, units: keep, mem: keep.some((u) => u.mem) };
      });
    });
  }
  const tScreen = Date.now();

  const oracle = new Oracle(dir, { restarts: 40, deadline: Date.now() + 90_000 });
  await pool(chunks, 2, (chunk, ci) => oracle.runChunk(`seqs-${ci}`, chunk));
  const tRun = Date.now();

  // Self-check of the parse/compare path on real output: one flipped bit must be exactly one disagreement.
  {
    const good = oracle.q.get(seqs[Math.min(7, seqs.length - 1)]!.index)!;
    const bad = Buffer.from(good); bad[8 + 8 * 3]! ^= 1;
    assert.deepEqual(compareRecords(good, bad).map((d) => d.name), ["x3"], "comparator self-check failed");
    assert.deepEqual(compareRecords(good, Buffer.from(good)), [], "comparator self-check failed");
  }

  const res = new Map(seqs.map((s) => [s.index, outcome(oracle, s.index)]));
  const shown = (s: Sequence) => oracle.ran.get(s.index) ?? s;
  const failing = seqs.filter((s) => res.get(s.index)!.kind !== "ok");
  const compared = [...res.values()].filter((o) => o.kind === "ok" || o.kind === "diff").length;

  // Reduce: re-run each unit of disagreeing sequences alone (same inputs), a few per instruction shape.
  let classesText = "";
  const diffing = failing.filter((s) => res.get(s.index)!.kind === "diff").map(shown);
  if (diffing.length) {
    const perKey = new Map<string, number>();
    const single: Sequence[] = [];
    for (const s of diffing) {
      let mode: Unit | undefined; // the FPCR set-up in force: kept as context of the units after it
      for (const u of s.units) {
        if (u.lines.some((l) => l.startsWith("msr fpcr"))) { mode = u; continue; }
        const key = unitKey(u) + (mode ? " (" + mode.lines[0] + ")" : ""), n = perKey.get(key) ?? 0;
        if (n >= REDUCE_PER_KEY) continue;
        perKey.set(key, n + 1);
        single.push({ ...s, index: 1_000_000 + single.length, units: mode ? [mode, u] : [u], mem: u.mem });
      }
    }
    const red = new Oracle(dir, { restarts: 10, deadline: Date.now() + 20_000 });
    for (const k of oracle.blocked) red.blocked.add(k);
    await red.runChunk("reduce", single);
    const classes = new Map<string, { count: number; example: Sequence; outcome: Outcome }>();
    for (const s0 of single) {
      const o = outcome(red, s0.index), s = red.ran.get(s0.index) ?? s0;
      if (o.kind === "ok" || o.kind === "skipped" || s.units.length === 0) continue;
      const u = s.units[s.units.length - 1]!, fp = s.units.length > 1 ? ` with FPCR=${s.units[0]!.lines[0]!.replace(/^movz x\d+, #(0x[0-9a-f]+), lsl #16$/, (_, h: string) => "0x" + (parseInt(h, 16) << 16 >>> 0).toString(16))}` : "";
      const cls = `${unitKey(u)}${fp}  [${diffSummary(o)}]`;
      const c = classes.get(cls);
      if (c) c.count++; else classes.set(cls, { count: 1, example: s, outcome: o });
    }
    const L = [`disagreement classes (each unit of up to ${REDUCE_PER_KEY} disagreeing sequences per instruction shape re-run alone: ${single.length} units, ${classes.size} classes):`];
    let n = 0;
    for (const [cls, c] of [...classes].sort((a, b) => b[1].count - a[1].count)) {
      if (n++ < 30) {
        L.push(`\n- ${cls}  (${c.count} unit${c.count > 1 ? "s" : ""})`);
        L.push("  instructions:\n" + sequenceText(c.example));
        L.push(describeOutcome(c.example, c.outcome, red.q.get(c.example.index), red.x.get(c.example.index), false));
      } else L.push(`- ${cls}  (${c.count})`);
    }
    if (!classes.size) L.push("(no unit disagrees alone: the disagreements need several units together)");
    classesText = L.join("\n");
  }
  const tReduce = Date.now();

  const counts = new Map<string, number>();
  for (const o of res.values()) counts.set(o.kind, (counts.get(o.kind) ?? 0) + 1);
  const summary = [
    `random oracle: seed ${SEED}; ${seqs.length} sequences; reproduce: ${REPRO}`,
    `time: screen+build ${tScreen - t0} ms, run ${tRun - tScreen} ms (${oracle.builds} builds; qemu ${oracle.qemuMs} ms, xeno ${oracle.xenoMs} ms in ${oracle.xenoRuns} runs), reduce ${tReduce - tRun} ms`,
    `sequences compared ${compared}; ` + [...counts].map(([k, v]) => `${k}: ${v}`).join(", ") +
      (decoder ? `; units left out as UNDEFINED in xeno's decoder: ${undefinedUnits.length}` : "; decoder screening off") +
      `; units left out after xeno stopped at their shape: ${oracle.removed.length}`,
  ].join("\n");
  console.log("# " + summary.replace(/\n/g, "\n# "));

  if (failing.length || undefinedUnits.length || oracle.removed.length || oracle.badExits.length) {
    const L = [summary, `generated sources and binaries (run as 'qemu-aarch64-static -cpu cortex-a57 BINARY [FIRST_SEQ]'): ${dir}`, ""];
    const classList = (title: string, units: Removed[]) => {
      const cls = new Map<string, { count: number; ex: Removed }>();
      for (const u of units) { const c = cls.get(u.key); if (c) c.count++; else cls.set(u.key, { count: 1, ex: u }); }
      L.push(`${title}: ${units.length} units in ${cls.size} classes:`);
      for (const [k, c] of [...cls].sort((a, b) => b[1].count - a[1].count)) {
        const w = c.ex.word !== undefined ? `  (word 0x${(c.ex.word >>> 0).toString(16).padStart(8, "0")})` : "";
        L.push(`  - ${k.padEnd(36)} ${String(c.count).padStart(5)}   e.g. ${c.ex.line}${w}`);
      }
      L.push("");
    };
    if (undefinedUnits.length) classList("UNDEFINED in xeno's decoder (left out of the runs; qemu executes them)", undefinedUnits);
    if (oracle.stops.size) {
      const cls = new Map<string, { count: number; s: number; info: StopInfo }>();
      for (const [idx, info] of oracle.stops) {
        const k = info.key ?? "(pc not mapped)", c = cls.get(k);
        if (c) c.count++; else cls.set(k, { count: 1, s: idx, info });
      }
      L.push(`xeno stopped ${oracle.stops.size} times (run-time; resumed after each):`);
      for (const [k, c] of cls) L.push(`  - ${k}  (${c.count})  e.g. sequence ${c.s}: ${stopText(c.info).replace(/\n\s*/g, " | ")}`);
      L.push("");
    }
    if (oracle.removed.length) classList("left out after xeno stopped at the same shape", oracle.removed);
    if (oracle.badExits.length) L.push("xeno exited badly after its last sequence:\n  " + oracle.badExits.join("\n  "), "");
    if (classesText) L.push(classesText, "");
    const detailed = [...failing].sort((a, b) => Number(res.get(b.index)!.kind === "diff") - Number(res.get(a.index)!.kind === "diff"));
    if (failing.length) L.push(`first ${Math.min(DETAILED, failing.length)} failing sequences in full:`);
    for (const s0 of detailed.slice(0, DETAILED)) {
      const o = res.get(s0.index)!, s = shown(s0);
      L.push(`\n=== seed ${SEED} sequence ${s.index}: ${diffSummary(o)} ===   (alone: ${reproOne(s.index)})`);
      L.push("  instructions:\n" + sequenceText(s));
      L.push(describeOutcome(s, o, oracle.q.get(s.index), oracle.x.get(s.index), true));
    }
    const report = L.join("\n");
    writeFileSync(path.join(dir, "report.txt"), report + "\n");
    assert.fail(`${failing.length} of ${seqs.length} sequences fail, ${undefinedUnits.length + oracle.removed.length} units left out ` +
      `(full report: ${path.join(dir, "report.txt")})\n\n${report}`);
  }
  assert.equal(compared, seqs.length);
  if (process.env.XENO_RANDOM_SEQS === undefined && ONLY === undefined) assert.ok(compared >= 10_000, `only ${compared} sequences compared`);
  rmSync(dir, { recursive: true, force: true });
});
