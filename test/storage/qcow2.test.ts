/**
 * src/storage/qcow2.ts against QEMU's own tools (qemu-utils: qemu-img, qemu-io; scripts/setup.sh installs them):
 *  - images made by `qemu-img create` in every cluster size and refcount width, versions 2 and 3, written
 *    through our module with a seeded mix of writes and discards, and the same operations on a raw file:
 *    `qemu-img check` finds no errors and no leaks, `qemu-img compare` says the two are identical, and our
 *    own reads give the raw file's bytes;
 *  - images written by QEMU read right: `qemu-img convert` (plain and deflate-compressed), `qemu-io` writes into
 *    an overlay over a compressed backing file; writes into overlays over raw and qcow2 backing files leave the
 *    backing files untouched;
 *  - refused with their reason: zstd-compressed clusters (when read), encryption, writing with internal
 *    snapshots or the dirty bit, backing loops and chains too deep;
 *  - hostile images: crafted headers and tables (offsets outside the file, overlaps, reserved bits, huge
 *    sizes) each refused with STORAGE_CORRUPT/STORAGE_UNSUPPORTED; a seeded fuzz of metadata bytes where every
 *    outcome is either success or a StorageError (counts printed; XENO_SEED reproduces).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { Qcow2Image } from "../../src/storage/qcow2.js";
import { RawImage, StorageError } from "../../src/storage/block-image.js";

const dir = mkdtempSync(join(tmpdir(), "xeno-qcow2-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const p = (name: string): string => join(dir, name);
const qemuImg = (...args: string[]): string => execFileSync("qemu-img", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const md5 = (path: string): string => createHash("md5").update(readFileSync(path)).digest("hex");

/** `qemu-img check`: exit status 0 and its report (exit 1 = errors, 2 = leaks, 3 = both per qemu-img(1)). */
function check(path: string): { status: number; out: string } {
  const r = spawnSync("qemu-img", ["check", path], { encoding: "utf8" });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}
function assertClean(path: string): void {
  const c = check(path);
  assert.equal(c.status, 0, `qemu-img check ${path}:\n${c.out}`);
  assert.match(c.out, /No errors were found on the image/);
}
function assertSame(a: string, b: string): void {
  const r = spawnSync("qemu-img", ["compare", a, b], { encoding: "utf8" });
  assert.equal(r.status, 0, `qemu-img compare ${a} ${b}: ${r.stdout}${r.stderr}`);
}

/** A small deterministic generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
}

/**
 * `ops` seeded writes (and ~15% discards) of up to maxLen bytes at any byte position, applied to the qcow2 image
 * and a raw file of the same size alike; then our reads of the whole disk must equal the raw file.
 */
function exercise(qpath: string, rawPath: string, seed: number, ops: number, maxLen: number): void {
  const q = Qcow2Image.open(qpath, false), r = RawImage.open(rawPath, false);
  try {
    const rand = rng(seed);
    const buf = new Uint8Array(maxLen);
    for (let i = 0; i < ops; i++) {
      const len = 1 + Math.floor(rand() * maxLen), pos = Math.floor(rand() * (q.bytes - len));
      if (rand() < 0.15) { q.discard(pos, len); r.discard(pos, len); continue; }
      for (let k = 0; k < len; k++) buf[k] = (i * 31 + k * 7) & 0xff;
      q.write(buf, 0, len, pos);
      r.write(buf, 0, len, pos);
    }
    q.flush();
    const a = new Uint8Array(q.bytes), b = new Uint8Array(q.bytes);
    q.read(a, 0, a.length, 0);
    r.read(b, 0, b.length, 0);
    assert.ok(Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0, "our reads of the qcow2 image differ from the raw copy");
  } finally { q.close(); r.close(); }
}

const SIZE = 16 << 20;

for (const opts of ["cluster_size=65536", "cluster_size=512", "cluster_size=512,refcount_bits=1", "cluster_size=1024,refcount_bits=64",
  "cluster_size=4096,refcount_bits=8", "cluster_size=2M", "compat=0.10", "compat=0.10,cluster_size=4096", "lazy_refcounts=on"]) {
  test(`qcow2 (${opts}): seeded writes and discards; qemu-img check clean, compare identical to raw`, () => {
    const q = p(`w-${opts.replace(/[=,]/g, "_")}.qcow2`), r = `${q}.raw`;
    qemuImg("create", "-q", "-f", "qcow2", "-o", opts, q, String(SIZE));
    writeFileSync(r, "");
    truncateSync(r, SIZE);
    exercise(q, r, 0x5eed + opts.length, 200, 150_000);
    assertClean(q);
    assertSame(q, r);
  });
}

test("qcow2: a 512-byte-cluster image written far apart grows its refcount table; the header moves to the new table", () => {
  const q = p("grow.qcow2"), r = p("grow.raw");
  qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", q, String(256 << 20));
  const before = readFileSync(q).readUInt32BE(48 + 4);
  writeFileSync(r, "");
  truncateSync(r, 256 << 20);
  // 64 refcount table entries of 256 clusters each cover 8 MiB of file: write more than that.
  const img = Qcow2Image.open(q, false), raw = RawImage.open(r, false);
  const chunk = new Uint8Array(1 << 20).fill(0x5a);
  for (let i = 0; i < 12; i++) { img.write(chunk, 0, chunk.length, i * (20 << 20)); raw.write(chunk, 0, chunk.length, i * (20 << 20)); }
  img.close(); raw.close();
  assert.notEqual(readFileSync(q).readUInt32BE(48 + 4), before, "refcount_table_offset did not change");
  assertClean(q);
  assertSame(q, r);
});

test("qcow2: images written by QEMU read right — converted, compressed, and an overlay written by qemu-io over a compressed base", () => {
  const base = p("base.raw");
  const text = Buffer.alloc(8 << 20);
  const rand = rng(7);
  for (let i = 0; i < text.length;) { const line = Buffer.from(`line ${i} ${"x".repeat(Math.floor(rand() * 60))}\n`); line.copy(text, i); i += line.length; }
  text.fill(0, 3 << 20, 4 << 20); // a zero run (unallocated in the converted image)
  writeFileSync(base, text);
  const plain = p("plain.qcow2"), comp = p("comp.qcow2");
  qemuImg("convert", "-O", "qcow2", base, plain);
  qemuImg("convert", "-c", "-O", "qcow2", base, comp);
  assert.match(check(comp).out, /compressed clusters/);
  for (const f of [plain, comp]) {
    const img = Qcow2Image.open(f, true);
    const b = new Uint8Array(img.bytes);
    img.read(b, 0, b.length, 0);
    img.close();
    assert.ok(text.equals(Buffer.from(b)), `${f} reads differ from the raw file`);
  }
  const ov = p("ov-qemu.qcow2");
  qemuImg("create", "-q", "-f", "qcow2", "-b", comp, "-F", "qcow2", ov);
  execFileSync("qemu-io", ["-c", "write -P 0xab 1000000 70000", "-c", "write -z 5M 128k", ov], { stdio: "ignore" });
  const want = Buffer.from(text);
  want.fill(0xab, 1000000, 1070000);
  want.fill(0, 5 << 20, (5 << 20) + (128 << 10));
  const img = Qcow2Image.open(ov, true);
  const b = new Uint8Array(img.bytes);
  img.read(b, 0, b.length, 0);
  img.close();
  assert.ok(want.equals(Buffer.from(b)), "the overlay written by qemu-io reads wrong");
});

test("qcow2: writes to overlays over raw and qcow2 (compressed) backing files; check clean, compare right, backing untouched", () => {
  const base = p("bk.raw");
  const data = Buffer.alloc(SIZE);
  const rand = rng(11);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((rand() * 2 ** 32) >>> 0, i);
  for (let i = 0; i < data.length; i += 1 << 20) data.fill(0x20, i, i + 300_000); // compressible runs
  writeFileSync(base, data);
  const baseQ = p("bk.qcow2");
  qemuImg("convert", "-c", "-O", "qcow2", base, baseQ);
  for (const [backing, fmt] of [[base, "raw"], [baseQ, "qcow2"]] as const) {
    const before = md5(backing);
    const ov = p(`ov-${fmt}.qcow2`), want = p(`ov-${fmt}.raw`);
    qemuImg("create", "-q", "-f", "qcow2", "-b", backing, "-F", fmt, ov);
    copyFileSync(base, want);
    exercise(ov, want, 99, 150, 100_000);
    assertClean(ov);
    assertSame(ov, want);
    assert.equal(md5(backing), before, `backing file ${backing} changed`);
  }
  // Writing into a compressed image itself: compressed clusters are replaced (their shared host clusters released).
  const c = p("wc.qcow2"), cr = p("wc.raw");
  copyFileSync(baseQ, c);
  copyFileSync(base, cr);
  exercise(c, cr, 5, 150, 100_000);
  assertClean(c);
  assertSame(c, cr);
});

function refused(f: () => unknown, code: string, re: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof StorageError, `not a StorageError: ${(e as Error)?.stack ?? String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });
}

test("qcow2: refused clearly — zstd clusters, encryption, snapshots and the dirty bit for writing, backing loops", () => {
  const base = p("z.raw");
  writeFileSync(base, Buffer.alloc(1 << 20, "zstd please "));
  const z = p("z.qcow2");
  qemuImg("convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", base, z);
  const img = Qcow2Image.open(z, true);
  refused(() => img.read(new Uint8Array(512), 0, 512, 0), "STORAGE_UNSUPPORTED", /zstd/);
  img.close();

  const e = p("enc.qcow2");
  // LUKS creation times its key derivation by CPU usage; on a loaded host qemu-img sometimes fails with "Unable to
  // get accurate CPU usage": try again a few times (the refusal itself is what is tested).
  for (let attempt = 1; ; attempt++) {
    try { qemuImg("create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=xeno", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", e, "1M"); break; }
    catch (err) { if (attempt >= 5 || !/accurate CPU usage/.test(String((err as { stderr?: unknown }).stderr ?? err))) throw err; }
  }
  refused(() => Qcow2Image.open(e, true), "STORAGE_UNSUPPORTED", /encrypt/);

  const s = p("snap.qcow2");
  qemuImg("create", "-q", "-f", "qcow2", s, "1M");
  qemuImg("snapshot", "-c", "first", s);
  refused(() => Qcow2Image.open(s, false), "STORAGE_UNSUPPORTED", /internal snapshot/);
  Qcow2Image.open(s, true).close(); // read-only is fine

  const d = p("dirty.qcow2");
  qemuImg("create", "-q", "-f", "qcow2", d, "1M");
  const bytes = readFileSync(d);
  bytes[79] = bytes[79]! | 1; // incompatible_features bit 0: dirty
  writeFileSync(d, bytes);
  refused(() => Qcow2Image.open(d, false), "STORAGE_UNSUPPORTED", /dirty.*qemu-img check -r all/);

  // a → b → a: each names the other as its backing file.
  const a = p("loop-a.qcow2"), b = p("loop-b.qcow2");
  qemuImg("create", "-q", "-f", "qcow2", a, "1M");
  qemuImg("create", "-q", "-f", "qcow2", "-b", a, "-F", "qcow2", b);
  qemuImg("rebase", "-u", "-b", b, "-F", "qcow2", a);
  refused(() => Qcow2Image.open(a, true), "STORAGE_CORRUPT", /backing file loop/);
  // A chain deeper than MAX_BACKING_DEPTH.
  let prev = p("deep-0.qcow2");
  qemuImg("create", "-q", "-f", "qcow2", prev, "1M");
  for (let i = 1; i <= 18; i++) {
    const next = p(`deep-${i}.qcow2`);
    qemuImg("create", "-q", "-f", "qcow2", "-b", prev, "-F", "qcow2", next);
    prev = next;
  }
  refused(() => Qcow2Image.open(prev, true), "STORAGE_UNSUPPORTED", /deeper than 16/);
  refused(() => Qcow2Image.open(p("no-such.qcow2"), true), "STORAGE_OPEN", /no-such/);
  writeFileSync(p("not.qcow2"), Buffer.alloc(4096));
  refused(() => Qcow2Image.open(p("not.qcow2"), true), "STORAGE_FORMAT", /not a qcow2 image/);
});

/** A fresh 64 KiB-cluster image with some data, and its layout (offsets of L1, refcount table, first L2/refblock). */
function sample(name: string): { path: string; l1: number; rt: number; l2: number; rb: number } {
  const path = p(name);
  qemuImg("create", "-q", "-f", "qcow2", path, "4M");
  execFileSync("qemu-io", ["-c", "write -P 0x11 0 200k", "-c", "write -P 0x22 3M 64k", path], { stdio: "ignore" });
  const b = readFileSync(path);
  const l1 = Number(b.readBigUInt64BE(40)), rt = Number(b.readBigUInt64BE(48));
  const l2 = Number(b.readBigUInt64BE(l1) & 0x00fffffffffffe00n), rb = Number(b.readBigUInt64BE(rt));
  return { path, l1, rt, l2, rb };
}

test("qcow2: hostile images are refused with the field that is wrong", () => {
  const cases: [string, (b: Buffer, s: ReturnType<typeof sample>) => void, string, RegExp][] = [
    ["L1 offset past the end", (b) => b.writeBigUInt64BE(1n << 40n, 40), "STORAGE_CORRUPT", /L1 table/],
    ["L1 offset unaligned", (b, s) => b.writeBigUInt64BE(BigInt(s.l1 + 8), 40), "STORAGE_CORRUPT", /not cluster-aligned/],
    ["L1 on the header", (b) => b.writeBigUInt64BE(0n, 40), "STORAGE_CORRUPT", /overlaps the header|L1/],
    ["L1 of 2^30 entries", (b) => b.writeUInt32BE(2 ** 30, 36), "STORAGE_UNSUPPORTED", /L1 table of/],
    ["L1 too small for the size", (b) => b.writeBigUInt64BE(1n << 45n, 24), "STORAGE_CORRUPT", /cannot map/],
    ["virtual size 2^60", (b) => b.writeBigUInt64BE(1n << 60n, 24), "STORAGE_CORRUPT", /beyond 2\^52/],
    ["cluster_bits 30", (b) => b.writeUInt32BE(30, 20), "STORAGE_CORRUPT", /cluster_bits/],
    ["L2 table past the end", (b, s) => b.writeBigUInt64BE((1n << 63n) | (1n << 40n), s.l1), "STORAGE_CORRUPT", /L2 table 0 .* past the end/],
    ["L2 table on the L1 table", (b, s) => b.writeBigUInt64BE((1n << 63n) | BigInt(s.l1), s.l1), "STORAGE_CORRUPT", /overlaps/],
    ["L2 table on the refcount table", (b, s) => b.writeBigUInt64BE((1n << 63n) | BigInt(s.rt), s.l1), "STORAGE_CORRUPT", /overlaps/],
    ["L1 reserved bits", (b, s) => b.writeBigUInt64BE((1n << 63n) | BigInt(s.l2) | 1n, s.l1), "STORAGE_CORRUPT", /reserved bits/],
    ["refcount table past the end", (b) => b.writeBigUInt64BE(1n << 40n, 48), "STORAGE_CORRUPT", /refcount table/],
    ["refcount table of 2^20 clusters", (b) => b.writeUInt32BE(2 ** 20, 56), "STORAGE_UNSUPPORTED", /refcount table of/],
    ["refcount block past the end", (b, s) => b.writeBigUInt64BE(1n << 40n, s.rt), "STORAGE_CORRUPT", /refcount block 0/],
    ["refcount block on the L1 table", (b, s) => b.writeBigUInt64BE(BigInt(s.l1), s.rt), "STORAGE_CORRUPT", /overlaps/],
    ["refcount_order 7", (b) => b.writeUInt32BE(7, 96), "STORAGE_CORRUPT", /refcount_order/],
    ["header_length 4 GiB", (b) => b.writeUInt32BE(0xfffffff8, 100), "STORAGE_CORRUPT", /header_length/],
    ["extension longer than the cluster", (b) => { b.writeUInt32BE(0x12345678, 112); b.writeUInt32BE(0xffffff00, 116); }, "STORAGE_CORRUPT", /header extension/],
    ["backing name outside the cluster", (b) => { b.writeBigUInt64BE(65500n, 8); b.writeUInt32BE(1000, 16); }, "STORAGE_CORRUPT", /backing file name/],
    ["unknown incompatible feature", (b) => b.writeUInt32BE(0x40, 76), "STORAGE_UNSUPPORTED", /unknown incompatible/],
    ["external data file", (b) => b.writeUInt32BE(4, 76), "STORAGE_UNSUPPORTED", /external data file/],
    ["version 4", (b) => b.writeUInt32BE(4, 4), "STORAGE_UNSUPPORTED", /version 4/],
    ["AES encryption (crypt_method 1)", (b) => b.writeUInt32BE(1, 32), "STORAGE_UNSUPPORTED", /encrypted \(crypt_method 1, AES\)/],
  ];
  for (const [what, mutate, code, re] of cases) {
    const s = sample(`h-${what.replace(/\W+/g, "-")}.qcow2`);
    const b = readFileSync(s.path);
    mutate(b, s);
    writeFileSync(s.path, b);
    assert.throws(() => { Qcow2Image.open(s.path, false).close(); }, (e: unknown) => {
      assert.ok(e instanceof StorageError, `${what}: not a StorageError: ${(e as Error)?.stack ?? String(e)}`);
      assert.equal(e.code, code, `${what}: ${e.message}`);
      assert.match(e.message, re, what);
      return true;
    }, what);
  }
  // Damage met only when the cluster is used: an L2 entry pointing at an unaligned offset, a compressed
  // descriptor beyond the file, reserved bits; the request fails, the image stays usable elsewhere.
  const s = sample("h-l2.qcow2");
  const b = readFileSync(s.path);
  b.writeBigUInt64BE((1n << 63n) | 0x12345n, s.l2 + 8);        // cluster 1: unaligned
  b.writeBigUInt64BE((1n << 62n) | (1n << 40n), s.l2 + 16);    // cluster 2: compressed, far past the end
  b.writeBigUInt64BE((1n << 63n) | 0x10000n | 0x100n, s.l2 + 24); // cluster 3: reserved bit 8
  writeFileSync(s.path, b);
  const img = Qcow2Image.open(s.path, false);
  const buf = new Uint8Array(65536);
  refused(() => img.read(buf, 0, 512, 65536), "STORAGE_CORRUPT", /not cluster-aligned/);
  refused(() => img.read(buf, 0, 512, 2 * 65536), "STORAGE_CORRUPT", /compressed cluster/);
  refused(() => img.read(buf, 0, 512, 3 * 65536), "STORAGE_CORRUPT", /reserved bits/);
  refused(() => img.write(buf, 0, 512, 65536), "STORAGE_CORRUPT", /not cluster-aligned/);
  refused(() => img.read(buf, 0, 512, 4 << 20), "STORAGE_RANGE", /outside the/);
  img.read(buf, 0, 512, 0);
  assert.equal(buf[0], 0x11);
  img.close();
  // A data cluster pointing at the L1 table: the write is refused, the table intact.
  const t = sample("h-overlap.qcow2");
  const tb = readFileSync(t.path);
  tb.writeBigUInt64BE((1n << 63n) | BigInt(t.l1), t.l2);
  writeFileSync(t.path, tb);
  const img2 = Qcow2Image.open(t.path, false);
  refused(() => img2.write(buf, 0, 512, 0), "STORAGE_CORRUPT", /overlaps metadata/);
  img2.close();
  assert.ok(readFileSync(t.path).subarray(t.l1, t.l1 + 8).equals(tb.subarray(t.l1, t.l1 + 8)));
});

test("qcow2: seeded fuzz of metadata bytes — every open, read and write succeeds or throws a StorageError", () => {
  const seed = Number(process.env.XENO_SEED ?? 20261207);
  const rand = rng(seed);
  const s = sample("fuzz-base.qcow2");
  const orig = readFileSync(s.path);
  const regions = [[0, 512], [s.l1, 64], [s.rt, 64], [s.l2, 512], [s.rb, 512]] as const;
  const counts = { cases: 0, opened: 0, refusedAtOpen: 0, readOk: 0, readRefused: 0, writeOk: 0, writeRefused: 0 };
  const codes = new Map<string, number>();
  const f = p("fuzz.qcow2");
  const buf = new Uint8Array(256 << 10).fill(0x77);
  for (let i = 0; i < 400; i++) {
    const b = Buffer.from(orig);
    const flips = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < flips; k++) {
      const [at, len] = regions[Math.floor(rand() * regions.length)]!;
      const j = at + Math.floor(rand() * len);
      b[j] = rand() < 0.5 ? Math.floor(rand() * 256) : b[j]! ^ (1 << Math.floor(rand() * 8));
    }
    writeFileSync(f, b);
    counts.cases++;
    const note = (e: unknown): void => {
      if (!(e instanceof StorageError)) throw new Error(`case ${i} (XENO_SEED=${seed}): ${(e as Error)?.stack ?? String(e)}`);
      codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
    };
    let img: Qcow2Image;
    try { img = Qcow2Image.open(f, false); counts.opened++; } catch (e) { note(e); counts.refusedAtOpen++; continue; }
    try {
      for (const pos of [0, 100_000, 3 << 20, Math.max(0, Math.min(img.bytes, 4 << 20) - 4096)]) {
        if (pos + 4096 > img.bytes) continue;
        try { img.read(buf, 0, 4096, pos); counts.readOk++; } catch (e) { note(e); counts.readRefused++; }
        try { img.write(buf, 0, 70_000 > img.bytes - pos ? 4096 : 70_000, pos); counts.writeOk++; } catch (e) { note(e); counts.writeRefused++; }
      }
    } finally { img.close(); }
    assert.ok(statSync(f).size < orig.length + (64 << 20), `case ${i}: the file grew to ${statSync(f).size} bytes`);
  }
  process.stderr.write(`# qcow2 fuzz (XENO_SEED=${seed}): ${JSON.stringify(counts)} errors by code ${JSON.stringify(Object.fromEntries(codes))}\n`);
  assert.equal(counts.cases, 400);
  assert.ok(counts.refusedAtOpen > 0 && counts.opened > 0, "the fuzz should both break and spare images");
});
