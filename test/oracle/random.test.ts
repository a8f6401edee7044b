/**
 * Generated-instruction oracle: random A64 sequences (random-gen.ts) run under qemu-aarch64 (cortex-a57, an
 * ARMv8.0 model) and under `xeno run-user`; every sequence's registers, flags, V registers and scratch memory
 * must agree.
 *
 *   XENO_SEED=n          reproduce a run (the seed is printed at the start and in every failure)
 *   XENO_RANDOM_SEQS=n   number of sequences (default 10000; the ≥10000 assertion follows this value)
 *   XENO_RANDOM_XENO=qemu  run qemu on both sides (develops/checks the harness without xeno); any other value
 *                        is a command run as `CMD BINARY START` in place of `bin/xeno run-user`
 *
 * Artefacts (generated .S, binaries, report.txt) go to build/oracle-random/seed-<seed>/ and are removed when
 * the run passes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateSequences, windowInit, NUM_V, type Sequence, type Unit } from "./random-gen.js";
import { emitProgram } from "./random/harness.js";
import {
  compareRecords, inputsText, parseRecords, recordFields, resultsText, sequenceText, unitKey, type FieldDiff,
} from "./random/compare.js";
import { pool, runBinary, runProc, type BinaryRun, type RestartBudget } from "./random/run.js";
import { loadXenoDecoder, unitWords } from "./random/screen.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const SEED = process.env.XENO_SEED !== undefined ? Number(process.env.XENO_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
const COUNT = Number(process.env.XENO_RANDOM_SEQS ?? 10000);
const PER_BINARY = 2500;
const QEMU = ["qemu-aarch64-static", ["-cpu", "cortex-a57"]] as const;
const XENO: readonly [string, readonly string[]] = process.env.XENO_RANDOM_XENO === "qemu" ? QEMU
  : process.env.XENO_RANDOM_XENO ? [process.env.XENO_RANDOM_XENO, []] : [path.join(ROOT, "bin/xeno"), ["run-user"]];
const CC = "aarch64-linux-gnu-gcc";
/** Full reports of this many disagreeing sequences (the rest are summarised by class). */
const DETAILED = 6;
/** Failing sequences whose units are re-run one by one to find the failing instruction. */
const REDUCE_PER_KEY = 3;

const REPRO = `XENO_SEED=${SEED} XENO_RANDOM_SEQS=${COUNT} node --test dist/test/oracle/random.test.js`;

interface Emulated { qemu: BinaryRun; xeno: BinaryRun }

async function build(dir: string, name: string, seqs: Sequence[]): Promise<string> {
  const src = path.join(dir, `${name}.S`), bin = path.join(dir, name);
  writeFileSync(src, emitProgram(seqs, windowInit(SEED)));
  const p = await runProc(CC, ["-static", "-nostdlib", "-O1", "-o", bin, src], { timeoutMs: 120_000 });
  assert.equal(p.code, 0, `assembling ${src} failed (seed ${SEED}):\n${p.stderr.slice(0, 4000)}`);
  return bin;
}

async function emulate(bins: string[], chunks: Sequence[][], budget: RestartBudget): Promise<Emulated[]> {
  const noRestart: RestartBudget = { restarts: 0, deadline: 0 };
  const qemu = await pool(bins, 2, (b, i) => runBinary(QEMU[0], [...QEMU[1]], b, chunks[i]!, noRestart, 60_000));
  const xeno = await pool(bins, 2, (b, i) => runBinary(XENO[0], [...XENO[1]], b, chunks[i]!, budget, 150_000));
  return qemu.map((q, i) => ({ qemu: q, xeno: xeno[i]! }));
}

type Outcome =
  | { kind: "ok" }
  | { kind: "diff"; diffs: FieldDiff[] }
  | { kind: "stop"; detail: string }
  | { kind: "skipped" }
  | { kind: "missing" };

function outcomes(seqs: Sequence[], runs: Emulated[]): Map<number, Outcome> {
  const qemuRecs = new Map<number, Buffer>(), xenoRecs = new Map<number, Buffer>();
  const stops = new Map<number, string>(), skipped = new Set<number>();
  for (const r of runs) {
    assert.deepEqual(r.qemu.stops, [], `qemu did not run the harness cleanly (generator bug; seed ${SEED}): ${JSON.stringify(r.qemu.stops)}`);
    for (const [k, v] of r.qemu.records) qemuRecs.set(k, v);
    for (const [k, v] of r.xeno.records) xenoRecs.set(k, v);
    for (const s of r.xeno.stops) stops.set(s.index, s.detail);
    for (const k of r.xeno.skipped) skipped.add(k);
  }
  const res = new Map<number, Outcome>();
  for (const s of seqs) {
    const q = qemuRecs.get(s.index), x = xenoRecs.get(s.index);
    assert.ok(q, `qemu produced no record for sequence ${s.index} (seed ${SEED})`);
    if (x) {
      const diffs = compareRecords(q, x);
      res.set(s.index, diffs.length ? { kind: "diff", diffs } : { kind: "ok" });
    } else if (stops.has(s.index)) res.set(s.index, { kind: "stop", detail: stops.get(s.index)! });
    else res.set(s.index, { kind: skipped.has(s.index) ? "skipped" : "missing" });
  }
  return res;
}

/** Registers a unit names, to show only the relevant inputs of a one-unit example. */
function relevantInputs(s: Sequence): string {
  const text = s.units.flatMap((u) => u.lines).join(" ");
  const xs = new Set<number>(), vs = new Set<number>();
  for (const m of text.matchAll(/\b[xw](\d+)\b/g)) xs.add(Number(m[1]));
  for (const m of text.matchAll(/\b[vbhsdq](\d+)\b/g)) vs.add(Number(m[1]));
  const parts = [...xs].filter((n) => n < 28).sort((a, b) => a - b).map((n) => `x${n}=0x${s.x[n]!.toString(16)}`);
  parts.push("nzcv=" + "NZCV".split("").map((ch, i) => ((s.nzcv >>> 28) & (8 >> i) ? ch : "-")).join(""));
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

function describeOutcome(s: Sequence, o: Outcome, q: Buffer | undefined, x: Buffer | undefined, full: boolean): string {
  const L = [full ? "  inputs:\n" + inputsText(s) : "  inputs:\n" + relevantInputs(s)];
  if (o.kind === "diff" && q && x) {
    if (full) L.push("  results:\n" + resultsText(q, x, "qemu", "xeno"));
    else L.push("  differing:\n" + o.diffs.map((d) => `    * ${d.name.padEnd(14)} qemu ${d.a}   xeno ${d.b}`).join("\n"));
  } else if (o.kind === "stop") {
    L.push(`  xeno stopped in this sequence: ${o.detail}`);
    if (q && full) L.push("  qemu result:\n" + recordFields(q).filter(([n]) => !n.startsWith("mem")).map(([n, v]) => `    ${n.padEnd(6)}${v}`).join("\n"));
  } else L.push(`  xeno: ${o.kind} (no record)`);
  return L.join("\n");
}

function recordsOf(runs: Emulated[]): { q: Map<number, Buffer>; x: Map<number, Buffer> } {
  const q = new Map<number, Buffer>(), x = new Map<number, Buffer>();
  for (const r of runs) { for (const [k, v] of r.qemu.records) q.set(k, v); for (const [k, v] of r.xeno.records) x.set(k, v); }
  return { q, x };
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

  const seqs = generateSequences(SEED, COUNT);
  const chunks: Sequence[][] = [];
  for (let i = 0; i < seqs.length; i += PER_BINARY) chunks.push(seqs.slice(i, i + PER_BINARY));
  let bins = await pool(chunks, 2, (c, i) => build(dir, `seqs-${i}`, c));

  // Screen against xeno's decode table: units with a word xeno cannot decode are failures reported by class
  // and left out of the binaries actually run (they would end the whole binary; see random/screen.ts).
  const decoder = XENO[0] === QEMU[0] || process.env.XENO_RANDOM_XENO ? undefined : await loadXenoDecoder(ROOT);
  const undefinedUnits: { seq: Sequence; unit: Unit; word: number }[] = [];
  let codes = await pool(bins, 2, (b, i) => unitWords(b, chunks[i]!));
  if (decoder) {
    let changed = false;
    chunks.forEach((chunk, ci) => chunk.forEach((s, si) => {
      const keep = s.units.filter((u, ui) => {
        const bad = codes[ci]![si]![ui]!.words.find((w) => decoder.nameOf(w | 0) === "UNDEFINED");
        if (bad === undefined) return true;
        undefinedUnits.push({ seq: s, unit: u, word: bad });
        return false;
      });
      if (keep.length !== s.units.length) {
        changed = true;
        chunk[si] = { ...s, units: keep, mem: keep.some((u) => u.mem) };
      }
    }));
    if (changed) {
      bins = await pool(chunks, 2, (c, i) => build(dir, `seqs-${i}`, c));
      codes = await pool(bins, 2, (b, i) => unitWords(b, chunks[i]!));
    }
    seqs.splice(0, seqs.length, ...chunks.flat());
  }
  const tBuild = Date.now();

  const budget: RestartBudget = { restarts: 60, deadline: Date.now() + 100_000 };
  const runs = await emulate(bins, chunks, budget);
  const tRun = Date.now();

  // Self-check of the whole parse/compare path on real output: one flipped bit must be exactly one disagreement.
  {
    const q0 = runs[0]!.qemu, probe = seqs[Math.min(7, seqs.length - 1)]!;
    const good = q0.records.get(probe.index)!;
    const bad = Buffer.from(good); bad[8 + 8 * 3]! ^= 1;
    assert.deepEqual(compareRecords(good, bad).map((d) => d.name), ["x3"], "comparator self-check failed");
    assert.deepEqual(compareRecords(good, Buffer.from(good)), [], "comparator self-check failed");
  }

  const res = outcomes(seqs, runs);
  const { q: qRecs, x: xRecs } = recordsOf(runs);
  const failing = seqs.filter((s) => res.get(s.index)!.kind !== "ok");

  // Where xeno stopped: map the PC it reports ("... at pc HEX") back to the unit.
  const stopAt = (s: Sequence, detail: string): string => {
    const m = /at pc (?:0x)?([0-9a-f]+)/i.exec(detail);
    if (!m) return "";
    const pc = parseInt(m[1]!, 16), ci = Math.floor(s.index / PER_BINARY);
    const local = chunks[ci]!.indexOf(s);
    const units = codes[ci]?.[local] ?? [];
    for (let ui = 0; ui < units.length; ui++) {
      const c = units[ui]!;
      if (pc >= c.addr && pc < c.addr + 4 * c.words.length) {
        const line = s.units[ui]!.lines.filter((l) => !l.endsWith(":"))[(pc - c.addr) / 4]!;
        return `${line}  (word 0x${c.words[(pc - c.addr) / 4]!.toString(16).padStart(8, "0")})`;
      }
    }
    return "";
  };
  const stopClasses = new Map<string, { count: number; example: string }>();
  for (const s of failing) {
    const o = res.get(s.index)!;
    if (o.kind !== "stop") continue;
    const at = stopAt(s, o.detail);
    const why = o.detail.split("\n").map((l) => l.replace(/^\s*(stderr: )?/, "")).find((l) => /xeno:/.test(l)) ?? o.detail.split("\n")[0]!;
    const key = (at ? unitKey({ lines: [at.replace(/\s+\(word.*$/, "")], mem: false }) : "?") + "  [" + why.replace(/0x[0-9a-f]+|\b[0-9a-f]{8,16}\b/g, "…") + "]";
    const c = stopClasses.get(key);
    if (c) c.count++; else stopClasses.set(key, { count: 1, example: `sequence ${s.index}: ${at || "(pc not mapped)"}\n      ${why}` });
  }
  const compared = seqs.filter((s) => { const k = res.get(s.index)!.kind; return k === "ok" || k === "diff"; }).length;

  // Reduce: re-run each unit of failing sequences alone (same inputs), a few per instruction shape.
  let classesText = "";
  let tReduce = tRun;
  if (failing.length) {
    const perKey = new Map<string, number>();
    const single: Sequence[] = [];
    for (const s of failing) {
      for (const u of s.units) {
        const key = unitKey(u), n = perKey.get(key) ?? 0;
        if (n >= REDUCE_PER_KEY) continue;
        perKey.set(key, n + 1);
        single.push({ ...s, index: 1_000_000 + single.length, units: [u], mem: u.mem });
      }
    }
    const rbin = await build(dir, "reduce", single);
    const rruns = await emulate([rbin], [single], budget);
    const rres = outcomes(single, rruns);
    const rrecs = recordsOf(rruns);
    const classes = new Map<string, { count: number; example: Sequence; outcome: Outcome }>();
    for (const s of single) {
      const o = rres.get(s.index)!;
      if (o.kind === "ok" || o.kind === "skipped") continue;
      const cls = `${unitKey(s.units[0]!)}  [${diffSummary(o)}]`;
      const c = classes.get(cls);
      if (c) c.count++; else classes.set(cls, { count: 1, example: s, outcome: o });
    }
    const L: string[] = [`failure classes (each unit of up to ${REDUCE_PER_KEY} failing sequences per instruction shape re-run alone; ${single.length} units, ${classes.size} classes):`];
    let n = 0;
    for (const [cls, c] of [...classes].sort((a, b) => b[1].count - a[1].count)) {
      if (n++ < 40) {
        L.push(`\n- ${cls}  (${c.count} unit${c.count > 1 ? "s" : ""})`);
        L.push("  instructions:\n" + sequenceText(c.example));
        L.push(describeOutcome(c.example, c.outcome, rrecs.q.get(c.example.index), rrecs.x.get(c.example.index), false));
      } else L.push(`- ${cls}  (${c.count})`);
    }
    const okUnits = single.filter((s) => rres.get(s.index)!.kind === "ok").length;
    if (okUnits === single.length) L.push("\n(no unit fails alone: the failures need several units together)");
    classesText = L.join("\n");
    tReduce = Date.now();
  }

  const xenoMs = runs.reduce((a, r) => a + r.xeno.ms, 0), qemuMs = runs.reduce((a, r) => a + r.qemu.ms, 0);
  const counts = new Map<string, number>();
  for (const o of res.values()) counts.set(o.kind, (counts.get(o.kind) ?? 0) + 1);
  const summary = [
    `random oracle: seed ${SEED}; ${seqs.length} sequences in ${bins.length} binaries; reproduce: ${REPRO}`,
    `time: build ${tBuild - t0} ms, emulators ${tRun - tBuild} ms (qemu ${qemuMs} ms total, xeno ${xenoMs} ms total in ${runs.reduce((a, r) => a + r.xeno.runs, 0)} runs), reduce ${tReduce - tRun} ms`,
    `compared ${compared}; ` + [...counts].map(([k, v]) => `${k}: ${v}`).join(", ") +
      (decoder ? `; units UNDEFINED in xeno's decoder (not run): ${undefinedUnits.length}` : "; xeno decoder screening off"),
  ].join("\n");
  console.log("# " + summary.replace(/\n/g, "\n# "));

  if (failing.length || undefinedUnits.length) {
    const L = [summary, ""];
    if (undefinedUnits.length) {
      const cls = new Map<string, { count: number; line: string; word: number }>();
      for (const u of undefinedUnits) {
        const k = unitKey(u.unit), c = cls.get(k);
        if (c) c.count++;
        else cls.set(k, { count: 1, line: u.unit.lines.filter((l) => !l.endsWith(":")).join("; "), word: u.word });
      }
      L.push(`UNDEFINED in xeno's decoder: ${undefinedUnits.length} units in ${cls.size} classes (left out of the runs; qemu executes them):`);
      for (const [k, c] of [...cls].sort((a, b) => b[1].count - a[1].count)) {
        L.push(`  - ${k.padEnd(40)} ${String(c.count).padStart(5)}   e.g. ${c.line}   (word 0x${(c.word >>> 0).toString(16).padStart(8, "0")})`);
      }
      L.push("");
    }
    if (stopClasses.size) {
      L.push(`xeno stopped (run-time): ${[...stopClasses.values()].reduce((a, c) => a + c.count, 0)} times in ${stopClasses.size} classes (restarted after each):`);
      for (const [k, c] of [...stopClasses].sort((a, b) => b[1].count - a[1].count)) L.push(`  - ${k}  (${c.count})\n      ${c.example}`);
      L.push("");
    }
    if (failing.length) L.push(classesText, "", `first ${Math.min(DETAILED, failing.length)} failing sequences in full:`);
    for (const s of failing.slice(0, DETAILED)) {
      const o = res.get(s.index)!;
      L.push(`\n=== seed ${SEED} sequence ${s.index} (binary seqs-${Math.floor(s.index / PER_BINARY)}, argv start ${s.index % PER_BINARY}): ${diffSummary(o)} ===`);
      L.push("  instructions:\n" + sequenceText(s));
      L.push(describeOutcome(s, o, qRecs.get(s.index), xRecs.get(s.index), true));
      if (o.kind === "stop" && stopAt(s, o.detail)) L.push(`  xeno stopped at: ${stopAt(s, o.detail)}`);
    }
    const report = L.join("\n");
    writeFileSync(path.join(dir, "report.txt"), report + "\n");
    assert.fail(`${failing.length} of ${seqs.length} sequences disagree, ${undefinedUnits.length} units UNDEFINED in xeno (full report: ${path.join(dir, "report.txt")})\n\n${report}`);
  }
  assert.equal(compared, seqs.length);
  if (process.env.XENO_RANDOM_SEQS === undefined) assert.ok(compared >= 10_000, `only ${compared} sequences compared`);
  for (const r of runs) {
    assert.ok(r.qemu.exitCodes.every((c) => c === 0), "qemu exited non-zero");
    assert.ok(r.xeno.exitCodes.every((c) => c === 0), "xeno exited non-zero");
  }
  rmSync(dir, { recursive: true, force: true });
});
