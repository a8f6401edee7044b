/**
 * Live migration's parts without a guest:
 *  - the dirty log in the MMU (src/mmu/mmu.ts `dirty`): a TLB fill by a read leaves write permission out, the
 *    write that follows misses and marks its page; a fill by a write marks at once; after a round (dropWrite)
 *    a page written before is marked again on its next write; with logging off nothing is marked;
 *  - the Xen layer's marks: copies to the guest (GuestMemory.copyOut) and pages granted to a back-end for
 *    writing (GrantTable.grantedPage/pin/unpin);
 *  - the round policy (precopyDone: < minDirty pages dirty or maxRounds rounds) and precopy() against a fake
 *    domain that keeps dirtying (stops at maxRounds) or settles (stops early);
 *  - a live stream (SaveStreamWriter: pages before the domain record, pages repeated) read back by readSave:
 *    the last copy of a page wins, a page that became zero is zero; a domain record whose vCPUs differ from
 *    the config its early pages came with is refused;
 *  - the drain mark (LIBXC_REC_XENO_SYNC): read after every record before it, answered over a real unix socket
 *    (socketSource.ack → socketSink.acked), skipped where nobody answers (a file); a mark of another length refused;
 *  - the RARP announce frame (QEMU's announce_self_create layout).
 */
import { test } from "node:test";
import { PassThrough } from "node:stream";
import assert from "node:assert/strict";
import { ACC_READ, Mmu } from "../../src/mmu/mmu.js";
import { GuestMemory } from "../../src/xen/guest-memory.js";
import { GrantTable, GTF_permit_access } from "../../src/xen/grant-table.js";
import { createServer, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { announceFrame, precopy, precopyDone, readableSource, socketSink, socketSource, unionPages, DEFAULT_LIVE_POLICY } from "../../src/hv/save-live.js";
import { bufferSource, readSave, SaveFormatError, SaveStreamWriter, PAGE_SIZE } from "../../src/hv/save-format.js";

const BASE = 0x40000000;

function mmuWithLog(pages: number): { m: Mmu; log: Uint8Array; ram: SharedArrayBuffer } {
  const ram = new SharedArrayBuffer(pages * 4096);
  const m = new Mmu(ram, BASE);
  const log = new Uint8Array(pages);
  return { m, log, ram };
}

test("MMU dirty log: read fills carry no write permission; writes mark their page; a round re-arms", () => {
  const { m, log } = mmuWithLog(16);
  // MMU off: VA = PA, every page RAM. Without logging nothing is marked.
  m.write32(BASE + 0x1000, 0, 7);
  assert.equal(log.reduce((a, b) => a + b, 0), 0);
  m.dirty = log;
  m.dropWrite();
  // A read fill: no mark, and the entry has no write permission.
  assert.equal(m.read32(BASE + 0x2000, 0), 0);
  assert.equal(log[2], 0, "a read does not mark");
  // The write after it misses the TLB's write permission and marks.
  m.write32(BASE + 0x2004, 0, 1);
  assert.equal(log[2], 1, "the first write after a read fill marks");
  // An entry filled before logging (page 1, with write permission) lost it at dropWrite: marked on write.
  m.write8(BASE + 0x1001, 0, 9);
  assert.equal(log[1], 1, "a write through an entry filled before the log started marks");
  // A write fill marks at once.
  m.write64(BASE + 0x3008, 0, 1, 2);
  assert.equal(log[3], 1);
  // A round: clear, drop write permission; a page written again is marked again, one only read is not.
  log.fill(0);
  m.dropWrite();
  m.write32(BASE + 0x2008, 0, 5);
  assert.equal(m.read32(BASE + 0x3008, 0), 1);
  assert.deepEqual([...log.subarray(0, 5)], [0, 0, 1, 0, 0]);
  // Exclusive/atomic paths use ramOffset: a write access marks too.
  log.fill(0);
  m.dropWrite();
  m.ramOffset(BASE + 0x4000, 0, 1 /* ACC_WRITE */);
  m.ramOffset(BASE + 0x5000, 0, ACC_READ);
  assert.deepEqual([...log.subarray(4, 6)], [1, 0]);
  // DC ZVA marks its page.
  m.zeroBlock(BASE + 0x6040, 0, 64);
  assert.equal(log[6], 1);
  // Logging off: writes no longer mark.
  m.dirty = null;
  log.fill(0);
  m.write32(BASE + 0x7000, 0, 1);
  assert.equal(log[7], 0);
});

test("Xen layer marks: copies to the guest and pages granted for writing", () => {
  const pages = 64;
  const ram = new SharedArrayBuffer(pages * 4096);
  const mem = new GuestMemory(ram, BASE, pages * 4096);
  const { m } = { m: new Mmu(ram, BASE) };
  mem.mmu = m;
  const log = new Uint8Array(pages);
  mem.dirty = log;
  mem.copyOut(BASE + 5 * 4096 + 4090, 0, 12, Uint8Array.from({ length: 12 }, (_, i) => i + 1)); // crosses into page 6
  assert.deepEqual([...log.subarray(4, 8)], [0, 1, 1, 0], "copyOut marks each page it writes");
  mem.copyIn(BASE + 9 * 4096, 0, 16);
  assert.equal(log[9], 0, "copyIn does not mark");
  // A grant table with frame 0 at gfn of page 10; entry 8 grants page 20 writable to dom0, entry 9 read-only.
  const gt = new GrantTable(mem, 7);
  assert.equal(gt.mapFrame(0, BASE / 4096 + 10), 0);
  log.fill(0);
  const dv = new DataView(ram);
  const entry = (ref: number, flags: number, frame: number): void => {
    const e = 10 * 4096 + ref * 8;
    dv.setUint16(e, flags, true); dv.setUint16(e + 2, 0, true); dv.setUint32(e + 4, BASE / 4096 + frame, true);
  };
  entry(8, GTF_permit_access, 20);
  entry(9, GTF_permit_access | (1 << 2) /* GTF_readonly */, 21);
  assert.equal(gt.grantedPage(9, 0, false), 21 * 4096);
  assert.equal(log[21], 0, "a read-only use does not mark");
  assert.equal(gt.grantedPage(8, 0, true), 20 * 4096);
  assert.equal(log[20], 1, "a writable use marks");
  log.fill(0);
  assert.equal(gt.pin(8, 0, true), 20 * 4096);
  assert.equal(log[20], 1, "pin for writing marks");
  log.fill(0);
  gt.unpin(8, true);
  assert.equal(log[20], 1, "unpin after writing marks again (the I/O thread wrote meanwhile)");
  const set = new Set<number>();
  gt.writableGrantedPages(0, set);
  assert.deepEqual([...set], [20], "the pages granted writable to dom0 now");
});

test("round policy: stop below minDirty pages or at maxRounds; union of page lists", async () => {
  const p = DEFAULT_LIVE_POLICY;
  assert.deepEqual(p, { maxRounds: 5, minDirty: 50 });
  assert.equal(precopyDone(p, 1, 49), true);
  assert.equal(precopyDone(p, 1, 50), false);
  assert.equal(precopyDone(p, 4, 10_000), false);
  assert.equal(precopyDone(p, 5, 10_000), true);
  assert.deepEqual([...unionPages(Int32Array.from([1, 3, 5]), Int32Array.from([2, 3, 9]))], [1, 2, 3, 5, 9]);

  // A fake domain: 256 pages; `dirtyPerRound` pages dirty after each round.
  const run = async (dirtyPerRound: number[], policy = p): Promise<{ rounds: number[]; left: number }> => {
    const ram = new Uint8Array(256 * PAGE_SIZE);
    let k = 0;
    const w = new SaveStreamWriter({ write: () => Promise.resolve() });
    const r = await precopy({ ram, dirty: () => Promise.resolve(Int32Array.from({ length: dirtyPerRound[Math.min(k++, dirtyPerRound.length - 1)]! }, (_, i) => i)) }, w, policy);
    return { rounds: r.rounds.map((x) => x.pages), left: r.left.length };
  };
  assert.deepEqual(await run([200]), { rounds: [256, 200, 200, 200, 200], left: 200 }, "a guest that keeps dirtying: 5 rounds");
  assert.deepEqual(await run([120, 30]), { rounds: [256, 120], left: 30 }, "settles: stops once < 50 are dirty");
  assert.deepEqual(await run([100], { maxRounds: 2, minDirty: 0 }), { rounds: [256, 100], left: 100 }, "configurable");
});

test("a live stream: pages before the state, repeated; the last copy wins", async () => {
  const pages = 8;
  const parts: Uint8Array[] = [];
  const w = new SaveStreamWriter({ write: (b) => { parts.push(Uint8Array.from(b)); return Promise.resolve(); } });
  const ram = new Uint8Array(pages * PAGE_SIZE);
  for (let p = 0; p < pages; p++) ram.fill(p + 1, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  await w.header({ name: "live", memMiB: pages / 256, vcpus: 2 });
  await w.pages(ram, { length: pages, at: (i) => i });
  ram.fill(0xaa, 3 * PAGE_SIZE, 4 * PAGE_SIZE); // written during the round
  ram.fill(0, 5 * PAGE_SIZE, 6 * PAGE_SIZE); // became zero
  await w.pages(ram, Int32Array.from([3, 5]));
  ram.fill(0xbb, 3 * PAGE_SIZE, 4 * PAGE_SIZE);
  await w.domain({ version: 1, hello: "state" }, pages, 2);
  await w.pages(ram, Int32Array.from([3]));
  await w.end();
  assert.equal(w.dataPages + w.zeroPages, pages + 3);
  const bytes = Buffer.concat(parts);
  let into: Uint8Array | null = null;
  const opts = {
    configPages: (cfg: Record<string, unknown>) => Math.round((cfg.memMiB as number) * 256),
    ram: (_c: Record<string, unknown>, n: number) => (into = new Uint8Array(n * PAGE_SIZE)),
  };
  const r = await readSave(bufferSource(bytes), opts);
  assert.deepEqual(r.state, { version: 1, hello: "state" });
  assert.equal(r.ramPages, pages);
  assert.ok(into !== null);
  const got = into as Uint8Array;
  assert.equal(got[3 * PAGE_SIZE + 17], 0xbb, "the last copy of page 3");
  assert.equal(got[5 * PAGE_SIZE + 17], 0, "page 5 sent again as zero");
  assert.equal(got[7 * PAGE_SIZE + 17], 8);

  // Early pages with the config's 2 vCPUs, then a domain record of 3: refused.
  const parts2: Uint8Array[] = [];
  const w2 = new SaveStreamWriter({ write: (b) => { parts2.push(Uint8Array.from(b)); return Promise.resolve(); } });
  await w2.header({ name: "live", memMiB: pages / 256, vcpus: 2 });
  await w2.pages(ram, Int32Array.from([0]));
  await w2.domain({ version: 1 }, pages, 3);
  await w2.end();
  await assert.rejects(readSave(bufferSource(Buffer.concat(parts2)), opts), (e: unknown) => e instanceof SaveFormatError && e.code === "SAVE_MISMATCH");
});

test("drain mark: read after the pages before it, answered back over the stream's sockets; skipped in a file", async () => {
  const pages = 8;
  const dir = mkdtempSync(join(tmpdir(), "xeno-sync-"));
  // Two unix sockets joined as the two CLIs join them: the sender's hypervisor writes into A, the receiver's
  // reads from B; what B's reader writes back goes to A's writer.
  const servers = [createServer(), createServer()];
  try {
    const conns: Promise<Socket>[] = servers.map((sv, k) => new Promise<Socket>((r) => { sv.once("connection", r); sv.listen(join(dir, `s${k}`)); }));
    await Promise.all(servers.map((sv) => new Promise((r) => sv.listening ? r(null) : sv.once("listening", r))));
    const out = await socketSink(join(dir, "s0"));
    const inn = await socketSource(join(dir, "s1"));
    const [a, b] = await Promise.all(conns);
    a!.pipe(b!);
    b!.on("data", (x: Buffer) => a!.write(x));
    const w = new SaveStreamWriter(out.sink);
    const ram = new Uint8Array(pages * PAGE_SIZE);
    for (let p = 0; p < pages; p++) ram.fill(p + 1, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    let into: Uint8Array | null = null;
    const seen: string[] = [];
    const reading = readSave(inn.source, {
      configPages: (cfg) => Math.round((cfg.memMiB as number) * 256),
      ram: (_c, n) => (into = new Uint8Array(n * PAGE_SIZE)),
      sync: (seq) => { seen.push(`sync ${seq}: page 7 holds ${into?.[7 * PAGE_SIZE] ?? "nothing"}`); inn.ack(seq); },
    });
    await w.header({ name: "live", memMiB: pages / 256, vcpus: 1 });
    await w.pages(ram, { length: pages, at: (i) => i });
    await w.sync(1);
    assert.equal(await out.acked(1, 10_000), true, "the receiver answered the mark");
    assert.deepEqual(seen, ["sync 1: page 7 holds 8"], "answered after the pages before it were read");
    assert.equal(await out.acked(2, 50), false, "no answer to a mark never sent: false after the wait");
    await w.domain({ version: 1 }, pages, 1);
    await w.end();
    await out.end();
    const r = await reading;
    assert.equal(r.ramPages, pages);
    inn.destroy();

    // The same stream from memory, without an answerer: the mark is skipped.
    const parts: Uint8Array[] = [];
    const w2 = new SaveStreamWriter({ write: (x) => { parts.push(Uint8Array.from(x)); return Promise.resolve(); } });
    await w2.header({ name: "live", memMiB: pages / 256, vcpus: 1 });
    await w2.pages(ram, { length: pages, at: (i) => i });
    await w2.sync(7);
    await w2.domain({ version: 1 }, pages, 1);
    await w2.end();
    const bytes = Buffer.concat(parts);
    const opts = { configPages: (cfg: Record<string, unknown>) => Math.round((cfg.memMiB as number) * 256), ram: (_c: Record<string, unknown>, n: number) => new Uint8Array(n * PAGE_SIZE) };
    assert.equal((await readSave(bufferSource(bytes), opts)).ramPages, pages);
    // A mark of 16 bytes (its header's length field; the reader bounds it before the body): refused.
    const at = bytes.indexOf(Buffer.from([0x04, 0x00, 0x45, 0xd8, 0x08, 0x00, 0x00, 0x00]));
    assert.ok(at > 0, "the mark's header is in the stream");
    const bad = Buffer.from(bytes);
    bad.writeUInt32LE(16, at + 4);
    await assert.rejects(readSave(bufferSource(bad), opts), (e: unknown) => e instanceof SaveFormatError && e.code === "SAVE_RECORD");
  } finally {
    for (const sv of servers) sv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("announce frame: a 60-byte broadcast RARP request from the vif's MAC", () => {
  const f = announceFrame("00:16:3e:0a:0b:0c");
  assert.equal(f.length, 60);
  const hex = Buffer.from(f.subarray(0, 42)).toString("hex");
  assert.equal(hex, "ffffffffffff" + "00163e0a0b0c" + "8035" + "0001" + "0800" + "06" + "04" + "0003" +
    "00163e0a0b0c" + "00000000" + "00163e0a0b0c" + "00000000");
  assert.ok(f.subarray(42).every((b) => b === 0));
  assert.throws(() => announceFrame("nope"), RangeError);
});

test("readableSource: chunks handed out as views, read into views across chunks, paused above its mark, the end", async () => {
  const s = new PassThrough({ highWaterMark: 64 * 1024 });
  const src = readableSource(s);
  // 3 MiB in 7,777-byte chunks (odd sizes, so views and chunks never line up), a known pattern.
  const total = 3 << 20, piece = 7777;
  const all = new Uint8Array(total);
  for (let i = 0; i < total; i++) all[i] = (i * 131 + (i >>> 12)) & 0xff;
  let sent = 0;
  const pump = async (): Promise<void> => {
    while (sent < total) {
      const n = Math.min(piece, total - sent);
      if (!s.write(all.subarray(sent, sent + n))) await new Promise((r) => s.once("drain", r));
      sent += n;
    }
    s.end();
  };
  const pumped = pump();
  // Held data stops the pump above the source's mark (1 MiB): it cannot send everything before any read. Turns of
  // the event loop until it stops moving (in-process streams: no I/O to wait for).
  for (let still = 0, last = -1, k = 0; still < 5 && k < 10_000; k++) {
    await new Promise((r) => setImmediate(r));
    still = sent === last ? still + 1 : 0;
    last = sent;
  }
  assert.ok(sent < total, `the source paused its stream (sent ${sent} of ${total} before the first read)`);
  const first = await src.read(10);
  assert.deepEqual([...first], [...all.subarray(0, 10)]);
  const small = await src.read(100_000);
  assert.ok(small.length > 0 && small.length <= piece - 10, `a read takes from one chunk only (${small.length} bytes)`);
  assert.deepEqual(Buffer.from(small), Buffer.from(all.subarray(10, 10 + small.length)));
  let pos = 10 + small.length;
  // Pages into views of 4 KiB, as a PAGE_DATA record's are read into the domain memory.
  const views = Array.from({ length: 300 }, () => new Uint8Array(4096));
  assert.equal(await src.readInto!(views), 300 * 4096);
  for (let k = 0; k < 300; k++) assert.deepEqual(Buffer.from(views[k]!), Buffer.from(all.subarray(pos + k * 4096, pos + (k + 1) * 4096)), `view ${k}`);
  pos += 300 * 4096;
  // The rest, then the end: readInto says how much it got; read gives an empty array.
  const rest = new Uint8Array(total - pos + 5000);
  assert.equal(await src.readInto!([rest]), total - pos);
  assert.deepEqual(Buffer.from(rest.subarray(0, total - pos)), Buffer.from(all.subarray(pos)));
  assert.equal((await src.read(1)).length, 0);
  await pumped;
});
