/**
 * The save file's writer and reader (src/hv/save-format.ts) without a guest: a round trip (config, state with
 * typed arrays and odd numbers, RAM with zero and non-zero pages), then hostile streams — wrong magic,
 * truncation at every record boundary and inside, flipped bytes, an unknown mandatory record, an unknown
 * optional one (skipped), page numbers outside the domain, a config whose memory does not match — each refused
 * with its SaveFormatError code. A seeded fuzz mutates the stream 3,000 times and counts the refusals by code:
 * every mutation must be refused with a SaveFormatError (never another exception, never accepted). From a file
 * (fileSource: pages read by readv straight into the RAM view) the reader keeps the same contents and refuses
 * the same mutations with the same codes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { open } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {
  bufferSource, copyStream, fileSource, readSave, SaveFormatError, writeSave, LIBXC_REC_PAGE_DATA, LIBXL_REC_LIBXC_CONTEXT, PAGE_SIZE, REC_OPTIONAL,
  LIBXL_REC_XENO_CHECKSUM, type PageHelper, type ReadOptions, type SaveContents,
} from "../../src/hv/save-format.js";
import { CodecError, decodeState, encodeState } from "../../src/hv/save-codec.js";
import { crc32Combine } from "../../src/hv/save-jobs.js";
import { Worker } from "node:worker_threads";
import { crc32 } from "node:zlib";
import { checkSavedStore } from "../../src/hv/save-store.js";

const PAGES = 64;

function sample(): { c: SaveContents; ram: Uint8Array } {
  const ram = new Uint8Array(new SharedArrayBuffer(PAGES * PAGE_SIZE));
  for (let p = 0; p < PAGES; p++) if (p % 3 !== 0) for (let i = 0; i < PAGE_SIZE; i += 97) ram[p * PAGE_SIZE + i] = (p * 31 + i) & 0xff;
  const state = {
    version: 1, board: { regs: new Int32Array([1, -2, 3]), bytes: Uint8Array.from([0, 255]), f: new Float64Array([0.5]) },
    odd: [NaN, Infinity, -Infinity, -0, 12345678901234567890n, undefined, null, "$not-a-tag", { __proto__: 5 }],
  };
  // A "__proto__" key as JSON would carry it (an own property), not the literal's prototype.
  (state.odd as unknown[])[8] = JSON.parse('{"__proto__": 5}');
  return { c: { config: { name: "t", memMiB: PAGES / 256 }, ramPages: PAGES, vcpus: 2, state }, ram };
}

async function write(c: SaveContents, ram: Uint8Array): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  await writeSave({ write: (b) => { parts.push(Uint8Array.from(b)); return Promise.resolve(); } }, c, ram);
  return Buffer.concat(parts);
}

const opts = (into: Uint8Array[]): ReadOptions => ({
  configPages: (cfg) => {
    if (typeof cfg.memMiB !== "number") throw new Error("memMiB missing");
    return Math.round(cfg.memMiB * 256);
  },
  ram: (_cfg, pages) => { const r = new Uint8Array(pages * PAGE_SIZE); into.push(r); return r; },
});

async function refused(bytes: Uint8Array): Promise<string> {
  try {
    await readSave(bufferSource(bytes), opts([]));
  } catch (e) {
    if (e instanceof SaveFormatError) return e.code;
    throw new Error(`not a SaveFormatError: ${(e as Error).stack}`);
  }
  return "accepted";
}

/** Offsets of the records after the headers (libxl level and inside LIBXC_CONTEXT), for splicing. */
function recordOffsets(b: Buffer): number[] {
  const cfgEnd = 48 + b.readUInt32LE(44);
  const offs: number[] = [];
  let o = cfgEnd + 16; // libxl header
  while (o + 8 <= b.length) {
    offs.push(o);
    const type = b.readUInt32LE(o), len = b.readUInt32LE(o + 4);
    o += 8 + ((len + 7) & ~7);
    if (offs.length === 1 && type === LIBXL_REC_LIBXC_CONTEXT) o += 40; // libxc image + domain headers
  }
  return offs;
}

test("save stream: round trip of config, state and RAM; zero pages travel as type only", async () => {
  const { c, ram } = sample();
  const bytes = await write(c, ram);
  const got: Uint8Array[] = [];
  const r = await readSave(bufferSource(bytes), opts(got));
  assert.deepEqual(r.config, c.config);
  assert.deepEqual(r.state, c.state);
  assert.equal(r.ramPages, PAGES);
  assert.equal(r.vcpus, 2);
  assert.equal(r.zeroPages, Math.ceil(PAGES / 3));
  assert.equal(r.dataPages, PAGES - r.zeroPages);
  assert.equal(r.bytes, bytes.length);
  assert.deepEqual(got[0], Uint8Array.from(ram));
  assert.ok(bytes.length < PAGES * PAGE_SIZE, "zero pages carry no data");
  assert.equal(bytes.subarray(0, 32).toString("latin1"), "Xen saved domain, xl format\n \0 \r");
  process.stderr.write(`# ${PAGES} pages (${r.zeroPages} zero): ${bytes.length} bytes\n`);
});

test("state codec: refuses reserved keys, unknown tags, bad base64 and deep nesting", () => {
  assert.throws(() => encodeState({ $x: 1 }), /reserved/);
  assert.throws(() => encodeState(new Map()), /cannot be saved/);
  assert.throws(() => decodeState('{"a":{"$u9":""}}'), /unknown tag \$u9/);
  assert.throws(() => decodeState('{"a":{"$i32":"AAA="}}'), /whole number/);
  assert.throws(() => decodeState('{"a":{"$u8":"**"}}'), /base64/);
  assert.throws(() => decodeState("[".repeat(100) + "]".repeat(100)), /nested/);
  // $rep: a typed array whose tail repeats one element (P2M maps, event-channel tables).
  assert.throws(() => decodeState('{"a":{"$rep":["$u9","AA==",4]}}'), /unknown type/);
  assert.throws(() => decodeState('{"a":{"$rep":["$i32","",4]}}'), /whole number/);
  assert.throws(() => decodeState('{"a":{"$rep":["$i32","AAAAAAA=",4]}}'), /whole number/);
  assert.throws(() => decodeState('{"a":{"$rep":["$u8","AAA=",1]}}'), /count 1/);
  assert.throws(() => decodeState('{"a":{"$rep":["$u8","AA==",1.5]}}'), /count/);
  assert.throws(() => decodeState('{"a":{"$rep":["$f64","AAAAAAAAAAA=",1e15]}}'), /expand to more than/);
  assert.throws(() => decodeState(`[${Array(40).fill('{"$rep":["$u8","AA==",2000000]}').join(",")}]`), /expand to more than/);
  assert.throws(() => decodeState('{"a":{"$rep":["$u8","**",4]}}'), /base64/);
  assert.throws(() => decodeState('{"a":{"$rep":"x"}}'), /\[tag, base64, count\]/);
  const nanBits = new Uint8Array(new Float64Array([NaN]).buffer); nanBits[0] = 7; // a NaN with payload bits
  const arrays = [new Uint8Array(65792).fill(1), Int32Array.from({ length: 4096 }, (_, i) => (i < 37 ? i * 3 - 50 : -1)),
    new Float64Array(new Uint8Array(Array.from({ length: 40 }, () => [...nanBits]).flat()).buffer), new Float32Array(100).fill(-0),
    Uint16Array.from({ length: 200 }, (_, i) => (i % 2)), new Uint32Array(17), new Int8Array(0)];
  for (const a of arrays) {
    const text = encodeState({ a });
    const back = (decodeState(text) as { a: ArrayBufferView }).a;
    assert.equal(back.constructor, a.constructor);
    assert.ok(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength)), `${a.constructor.name}(${(a as Uint8Array).length}) round trip, byte for byte`);
    if (a.byteLength >= 1024 && a.constructor !== Uint16Array) assert.ok(text.includes("$rep") && text.length < 400, `${a.constructor.name}: ${text.length} chars`);
  }
  // Seeded mutations of a text with $rep records: each decodes or is refused with a CodecError, never another error.
  const text = encodeState({ p2m: arrays[0], ev: arrays[1], f: arrays[2] });
  let seed = 0x2e9;
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return Math.floor((seed / 2 ** 32) * n); };
  const alphabet = '0123456789-e.,[]{}":$A/+=x';
  let refusedN = 0;
  for (let i = 0; i < 2000; i++) {
    const at = rnd(text.length);
    const m = text.slice(0, at) + alphabet[rnd(alphabet.length)]! + text.slice(at + rnd(2));
    try { decodeState(m); } catch (e) { assert.ok(e instanceof CodecError, `mutation ${i}: ${(e as Error).stack}`); refusedN++; }
  }
  assert.ok(refusedN > 100, `${refusedN} of 2000 mutations refused`);
  const o = decodeState('{"__proto__": {"polluted": 1}}') as Record<string, unknown>;
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
});

test("hostile streams: each refused with its code", async () => {
  const { c, ram } = sample();
  const good = await write(c, ram);
  const offs = recordOffsets(good);

  const magic = Buffer.from(good); magic[3] ^= 0x20;
  assert.equal(await refused(magic), "SAVE_MAGIC");
  assert.equal(await refused(Buffer.from("not a save file at all")), "SAVE_TRUNCATED");

  // Truncated: at every record boundary and inside each record, and by one byte.
  for (const o of [...offs, ...offs.map((x) => x + 5), good.length - 1, 10, 60]) assert.equal(await refused(good.subarray(0, o)), "SAVE_TRUNCATED", `cut at ${o}`);

  // A flipped byte in the RAM data (no structure there): only the checksum notices.
  const pageRec = offs.slice(1).find((o) => good.readUInt32LE(o) === LIBXC_REC_PAGE_DATA)!;
  const flipped = Buffer.from(good); flipped[pageRec + 8 + 8 + 8 * 1024 + 100] ^= 1;
  assert.equal(await refused(flipped), "SAVE_CHECKSUM");

  // An unknown mandatory record is refused; an unknown optional one is skipped (and then the checksum, which
  // covers it, fails: a stream is not edited after it was written).
  const splice = (at: number, rec: Buffer): Buffer => Buffer.concat([good.subarray(0, at), rec, good.subarray(at)]);
  const rec = (type: number): Buffer => { const r = Buffer.alloc(16); r.writeUInt32LE(type >>> 0, 0); r.writeUInt32LE(3, 4); r.write("abc", 8); return r; };
  assert.equal(await refused(splice(pageRec, rec(0x1234))), "SAVE_UNKNOWN_RECORD");
  assert.equal(await refused(splice(pageRec, rec((REC_OPTIONAL | 0x1234) >>> 0))), "SAVE_CHECKSUM");

  // A page number outside the domain.
  const outside = Buffer.from(good); outside.writeUInt32LE(PAGES, pageRec + 16 + 8 * 5);
  assert.equal(await refused(outside), "SAVE_PAGE");
  const high = Buffer.from(good); high.writeUInt32LE(1, pageRec + 16 + 8 * 5 + 4);
  assert.equal(await refused(high), "SAVE_PAGE");
  // An unknown page type.
  const ptype = Buffer.from(good); ptype[pageRec + 16 + 8 * 5 + 7] = 0x30;
  assert.equal(await refused(ptype), "SAVE_PAGE");

  // A config whose memory does not match the saved memory.
  const other = await write({ ...c, config: { ...c.config, memMiB: 1 } }, ram);
  assert.equal(await refused(other), "SAVE_MISMATCH");
  // A config that is not JSON.
  const cfg = Buffer.from(good); cfg[53] = 0x7b;
  assert.equal(await refused(cfg), "SAVE_CONFIG");
});

test("seeded fuzz over the reader: every mutation refused with a SaveFormatError", async () => {
  const { c, ram } = sample();
  const good = await write(c, ram);
  let seed = 0x5eed1234;
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return Math.floor((seed / 2 ** 32) * n); };
  const counts = new Map<string, number>();
  const N = 3000;
  for (let i = 0; i < N; i++) {
    let b: Buffer;
    const kind = rnd(4);
    if (kind === 0) { b = Buffer.from(good); for (let k = 1 + rnd(4); k > 0; k--) b[rnd(b.length)] ^= 1 + rnd(255); }
    else if (kind === 1) b = Buffer.from(good.subarray(0, rnd(good.length)));
    else if (kind === 2) { const at = rnd(good.length); b = Buffer.concat([good.subarray(0, at), Buffer.from([rnd(256), rnd(256), rnd(256)]), good.subarray(at)]); }
    else { b = Buffer.from(good); const at = rnd(b.length - 4); b.writeUInt32LE(rnd(2) === 0 ? 0xffffffff : rnd(1 << 20), at); }
    if (b.equals(good)) continue;
    const code = await refused(b);
    assert.notEqual(code, "accepted", `mutation ${i} (kind ${kind}) was accepted`);
    counts.set(code, (counts.get(code) ?? 0) + 1);
  }
  process.stderr.write(`# fuzz: ${N} mutations, refused by code: ${[...counts].sort().map(([k, v]) => `${k} ${v}`).join(", ")}\n`);
});

test("saved XenStore part: paths outside the domain's subtrees, bad permissions and watches refused", () => {
  const uuid = "00000000-0000-0000-0000-000000000001";
  const node = (path: string, perms = ["n0", "r3"]): unknown => ({ path, value: new Uint8Array(1), perms });
  const st = (nodes: unknown[], watches: unknown[] = [], replies: unknown[] = []): unknown => ({ version: 1, nodes, guest: { watches, replies } });
  const ok = st([node("/local/domain/3"), node("/local/domain/3/name"), node(`/vm/${uuid}/name`), node("/local/domain/0/backend/vbd/3/51712/state")],
    [{ path: "/local/domain/3/device", token: "t", relative: true, depth: -1 }, { path: "@releaseDomain", token: "x", relative: false, depth: -1 }]);
  assert.doesNotThrow(() => checkSavedStore(ok, 3, uuid));
  for (const [bad, re] of [
    [st([node("/local/domain/4/name")]), /outside domain 3/],
    [st([node("/local/domain/0/backend/vbd/4/51712")]), /outside domain 3/],
    [st([node("/local/domain/0/secret")]), /outside domain 3/],
    [st([node("/local/domain/3/../0")]), /not a XenStore path/],
    [st([node("/local/domain/3/x", ["q0"])]), /perms/],
    [st([node("/local/domain/3/x", [])]), /perms/],
    [st([{ path: "/local/domain/3/x", value: new Uint8Array(5000), perms: ["n0"] }]), /value/],
    [st([], [{ path: "/local/domain/4/device", token: "t", relative: true, depth: -1 }]), /relative watch outside/],
    [st([], [{ path: "device", token: "t", relative: true, depth: -1 }]), /absolute path/],
    [st([], [{ path: "/a", token: "t\0", relative: false, depth: -1 }]), /token/],
    [st([], [], [new Uint8Array(9000)]), /replies/],
    [{ version: 2, nodes: [], guest: { watches: [], replies: [] } }, /version/],
  ] as const) assert.throws(() => checkSavedStore(bad, 3, uuid), re as RegExp);
});

test("copyStream (migrate-receive): copies one stream to its END and leaves what follows unread", async () => {
  const { c, ram } = sample();
  const good = await write(c, ram);
  const src = bufferSource(Buffer.concat([good, Buffer.from("domain is yours")]));
  const parts: Uint8Array[] = [];
  const n = await copyStream(src, { write: (b) => { parts.push(Uint8Array.from(b)); return Promise.resolve(); } });
  assert.equal(n, good.length);
  assert.ok(Buffer.concat(parts).equals(good));
  assert.equal(Buffer.from(await src.read(100)).toString(), "domain is yours");
  await assert.rejects(copyStream(bufferSource(good.subarray(0, good.length - 9)), { write: () => Promise.resolve() }), { code: "SAVE_TRUNCATED" });
  await assert.rejects(copyStream(bufferSource(Buffer.from("x".repeat(100))), { write: () => Promise.resolve() }), { code: "SAVE_MAGIC" });
});

/** readSave from `bytes` written to a file (fileSource: header reads buffered, pages by readv into the RAM view). */
/**
 * How fromFile reads: "direct" into a plain RAM view (pages read as they come, fileSource.readInto); "jobs"
 * into a shared one (pages left as jobs and read after the records were checked, save-jobs.ts, on this thread);
 * "helper" the same with a real worker thread taking jobs beside this one (the hypervisor's restore).
 */
type FileMode = "direct" | "jobs" | "helper";
const MODES: FileMode[] = ["direct", "jobs", "helper"];

/** One worker thread for the "helper" mode: it runs save-jobs.ts's helper side, as vm-worker.ts does. */
let helperThread: { w: Worker; ran: number; alive: boolean } | null = null;
function helper(): PageHelper {
  if (helperThread === null) {
    const url = new URL("../../src/hv/save-jobs.js", import.meta.url).href;
    const w = new Worker(`import { parentPort } from "node:worker_threads"; import { helpWithPageJobs } from ${JSON.stringify(url)};
      parentPort.on("message", (m) => parentPort.postMessage(helpWithPageJobs(m)));`, { eval: true });
    const h = { w, ran: 0, alive: true };
    w.on("message", (n: number) => { h.ran += n; });
    w.on("exit", () => { h.alive = false; });
    w.unref();
    helperThread = h;
  }
  const h = helperThread;
  return { offer: (m) => { h.w.postMessage(m); return true; }, alive: () => h.alive };
}

async function fromFile(dir: string, bytes: Uint8Array, into: Uint8Array[] = [], mode: FileMode = "direct", cut?: (f: string) => void): Promise<string> {
  const f = path.join(dir, "s.xeno");
  fs.writeFileSync(f, bytes);
  const fh = await open(f, "r");
  const o = opts(into);
  if (mode !== "direct") o.ram = (_cfg, pages) => { const r = new Uint8Array(new SharedArrayBuffer(pages * PAGE_SIZE)); into.push(r); return r; };
  const h = mode === "helper" ? helper() : null;
  try {
    await readSave(fileSource(fh, cut === undefined ? h : { offer: (m) => { cut(f); return h?.offer(m) ?? false; }, alive: () => h?.alive() ?? false }), o);
  } catch (e) {
    if (e instanceof SaveFormatError) return e.code;
    throw new Error(`not a SaveFormatError: ${(e as Error).stack}`);
  } finally {
    await fh.close();
  }
  return "accepted";
}

test("save file: pages read from the file straight into RAM; the same refusals as from memory", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xeno-save-format-"));
  try {
    // 2,600 pages (11 MiB, 3 PAGE_DATA records): runs of data pages (one readv view each), zero pages between.
    const pages = 2600;
    const ram = new Uint8Array(new SharedArrayBuffer(pages * PAGE_SIZE));
    for (let p = 0; p < pages; p++) if (p % 7 !== 0 && (p < 900 || p > 1300)) for (let i = p % 13; i < PAGE_SIZE; i += 61) ram[p * PAGE_SIZE + i] = (p + i) | 1;
    const big = await write({ config: { name: "t", memMiB: pages / 256 }, ramPages: pages, vcpus: 1, state: { a: 1 } }, ram);
    for (const mode of MODES) {
      const into: Uint8Array[] = [];
      assert.equal(await fromFile(dir, big, into, mode), "accepted", mode);
      assert.ok(Buffer.from(into[0]!).equals(Buffer.from(ram)), `RAM read from the file = RAM saved (${mode})`);
      for (const at of [big.length - 200_000, 4_300_000, 100_000]) { // page data of the last, second and first record
        const flip = Buffer.from(big); flip[at] ^= 0x10;
        assert.equal(await fromFile(dir, flip, [], mode), "SAVE_CHECKSUM", `${mode}: byte ${at} flipped`);
      }
      for (const cut of [big.length - 200_000, 5_000_000, big.length - 30]) assert.equal(await fromFile(dir, big.subarray(0, cut), [], mode), "SAVE_TRUNCATED", `${mode}: cut at ${cut}`);
    }
    assert.ok(helperThread !== null && helperThread.ran > 0, `the helper thread read some of the pages (${helperThread?.ran} jobs)`);
    // The file cut after its records were checked, before its pages were read (the helper is offered the jobs
    // then): the page reads come back short, refused as truncated; likewise a file that is gone (unlinked: the
    // open descriptor still reads it whole, as the kernel keeps it).
    for (const mode of ["jobs", "helper"] as const) {
      assert.equal(await fromFile(dir, big, [], mode, (f) => fs.truncateSync(f, 4_000_000)), "SAVE_TRUNCATED", `${mode}: cut while read`);
      const into: Uint8Array[] = [];
      assert.equal(await fromFile(dir, big, into, mode, (f) => fs.unlinkSync(f)), "accepted", `${mode}: unlinked while read`);
      assert.ok(Buffer.from(into[0]!).equals(Buffer.from(ram)), `${mode}: unlinked while read, RAM = RAM saved`);
    }

    const { c, ram: small } = sample();
    const good = await write(c, small);
    const offs = recordOffsets(good);
    const pageRec = offs.slice(1).find((o) => good.readUInt32LE(o) === LIBXC_REC_PAGE_DATA)!;
    // A page named twice in one record (entries 1 and 2 are both pages with data): refused either way.
    const twice = Buffer.from(good); twice.writeUInt32LE(1, pageRec + 16 + 8 * 2);
    assert.equal(await refused(twice), "SAVE_PAGE");
    assert.equal(await fromFile(dir, twice), "SAVE_PAGE");
    // A file of a build that wrote a SHA-256 checksum record (0x58450002, 32 bytes): refused, and said why.
    const sumAt = offs.find((o) => good.readUInt32LE(o) === LIBXL_REC_XENO_CHECKSUM)!;
    const old = Buffer.concat([good.subarray(0, sumAt), Buffer.from([2, 0, 0x45, 0x58, 32, 0, 0, 0]), Buffer.alloc(32), good.subarray(good.length - 8)]);
    await assert.rejects(readSave(bufferSource(old), opts([])), (e: SaveFormatError) => e.code === "SAVE_CHECKSUM" && /SHA-256/.test(e.message));

    // The fuzz's mutations, fewer: each refused from the file with the code the in-memory reader gives.
    let seed = 0xf11e5eed;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return Math.floor((seed / 2 ** 32) * n); };
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      let b: Buffer;
      const kind = rnd(3);
      if (kind === 0) { b = Buffer.from(good); b[rnd(b.length)] ^= 1 + rnd(255); }
      else if (kind === 1) b = Buffer.from(good.subarray(0, rnd(good.length)));
      else { b = Buffer.from(good); b.writeUInt32LE(rnd(1 << 20), rnd(b.length - 4)); }
      if (b.equals(good)) continue;
      const code = await fromFile(dir, b, [], MODES[i % 3]);
      assert.notEqual(code, "accepted", `mutation ${i} (kind ${kind}) was accepted from the file (${MODES[i % 3]})`);
      assert.equal(code, await refused(b), `mutation ${i}: file (${MODES[i % 3]}) and memory readers disagree`);
      counts.set(code, (counts.get(code) ?? 0) + 1);
    }
    process.stderr.write(`# file fuzz: 300 mutations, refused by code: ${[...counts].sort().map(([k, v]) => `${k} ${v}`).join(", ")}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("crc32Combine: the CRC-32 of two pieces combined = zlib's CRC-32 of the whole", () => {
  let seed = 0xc0ffee;
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return Math.floor((seed / 2 ** 32) * n); };
  const b = Buffer.alloc(300_000);
  for (let i = 0; i < b.length; i++) b[i] = rnd(256);
  for (const [at, len] of [[0, 0], [0, 1], [1, 0], [5, 9], [4096, 4096], [17, 299_000], [0, 300_000], [150_000, 150_000], [299_999, 1]] as const) {
    const a = b.subarray(0, at), c = b.subarray(at, at + len);
    assert.equal(crc32Combine(crc32(a), crc32(c), c.length), crc32(b.subarray(0, at + len)), `split at ${at}, ${len} after`);
  }
});
