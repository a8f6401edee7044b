/**
 * The lazy restore (src/hv/lazy-ram.ts, docs/save-restore.md "The lazy restore") on a real save file of a
 * small Xen DomU (a tiny arm64 Image that loads one word and spins; pages of random data around it): each path
 * of the audit table touches a page that is not loaded yet, and the page must hold its saved bytes before that
 * path uses it — the vCPU's instruction fetch and load (TLB fills), hypercall buffers (copyIn/copyOut), grant
 * mappings (grantedPage/pin), pages the restore resolves (shared_info), the balloon's decrease (the page must
 * stay zero after the background ends), a save and the dirty log before the load ends, the background load,
 * and a file changed after its check (the page is refused, never used).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Machine } from "../../src/hv/machine.js";
import { setLazyLoader } from "../../src/mmu/mmu.js";
import { readSaveFile, writeSaveFile, type SavedDomain } from "../../src/hv/save-file.js";
import { LazyLoadError, LazyRam, loadInBackground, STAGE2_LAZY } from "../../src/hv/lazy-ram.js";
import { memoryOp, XENMEM_decrease_reservation } from "../../src/xen/memory-op.js";
import type { DomainSpec } from "../../src/hv/protocol.js";

const RAM_BASE = 0x4000_0000, MEM_MIB = 16;
const DATA_PAGES = [0x100, 0x101, 0x180, 0x300, 0x301, 0x302, 0x480, 0x500, 0x600, 0x700]; // guest pages with random bytes
/**
 * Data pages at the start of each PAGE_DATA record (1,024 pages each): the reader has the first few pages of a
 * record in its read-ahead buffer and writes those at once (save-format.ts fileSource.defer), so the pages the
 * test looks at come after these.
 */
const FILLER = [0, 0x400, 0x800, 0xc00].flatMap((b) => [1, 2, 3, 4, 5, 6, 7, 8].map((k) => b + k));
const CODE_PAGE = 0x80; // the Image at text_offset 512 KiB
const ZERO_PAGE = 0x200; // no data in the file: the hypercall argument page, not lazy

/** An arm64 Image (text_offset 512 KiB): code0 `b #64`; at 64: ldr x0, =0x40100000; ldr x1, [x0]; b . */
function image(code?: number[], lit?: number): Uint8Array {
  const img = new Uint8Array(4096), dv = new DataView(img.buffer);
  dv.setUint32(0, 0x14000010, true); // b #64
  dv.setBigUint64(8, BigInt(CODE_PAGE * 4096), true); // text_offset
  dv.setBigUint64(16, 4096n, true); // image_size
  dv.setBigUint64(24, 2n, true); // 4 KiB pages, little-endian
  dv.setUint32(56, 0x644d5241, true); // "ARM\x64"
  dv.setUint32(64, 0x58000080, true); // ldr x0, #+16 (the literal at 80)
  dv.setUint32(68, 0xf9400001, true); // ldr x1, [x0]
  dv.setUint32(72, 0x14000000, true); // b .
  dv.setUint32(80, RAM_BASE + 0x100 * 4096, true);
  if (code !== undefined) { code.forEach((w, i) => dv.setUint32(64 + 4 * i, w >>> 0, true)); dv.setUint32(lit!, RAM_BASE + 0x100 * 4096, true); }
  return img;
}

/**
 * The JIT's test Image: 16 times, 3,000 loads of the first word of page 0x100 + k summed into x2 (k = 0..15),
 * then `b .`. The inner loop runs hot on the first page and is compiled; the compiled loop then makes the first
 * touch of the pages after it.
 */
const JIT_CODE = [
  0x58000180, // 64: ldr x0, #+48 (the literal at 112)
  0xd2800204, // 68: movz x4, #16
  0xd2800002, // 72: movz x2, #0
  0xd2817703, // 76: outer: movz x3, #3000
  0xf9400001, // 80: inner: ldr x1, [x0]
  0x8b010042, // 84: add x2, x2, x1
  0xf1000463, // 88: subs x3, x3, #1
  0x54ffffa1, // 92: b.ne inner
  0x91400400, // 96: add x0, x0, #4096
  0xf1000484, // 100: subs x4, x4, #1
  0x54ffff21, // 104: b.ne outer
  0x14000000, // 108: b .
];
const JIT_PAGES = Array.from({ length: 16 }, (_, k) => 0x100 + k);

async function savedFile(dir: string, kernel = image()): Promise<{ path: string; ram: Uint8Array; spec: DomainSpec; uuid: string }> {
  const uuid = "5a5a5a5a-0000-4000-8000-000000000001";
  const o = { memMiB: MEM_MIB, vcpus: 1, kernel, cmdline: "console=hvc0", xen: true, domid: 3, name: "lazy", uuid: new Uint8Array(16), consoleOut: () => {} };
  const a = new Machine(o);
  const u8 = new Uint8Array(a.board.memory.buffer);
  for (const p of [...FILLER, ...DATA_PAGES, ...JIT_PAGES]) u8.set(randomBytes(4096), p * 4096);
  // shared_info at a page with data: the restore resolves it (relocate) before anything runs.
  assert.equal(a.xen!.sharedInfo.map(RAM_BASE / 4096 + 0x180), 0);
  assert.equal(a.xen!.gnttab.mapFrame(0, a.xen!.layout.gnttabBase / 4096), 0);
  const spec = { name: "lazy", uuid, memMiB: MEM_MIB, vcpus: 1, kernel: "", cmdline: "", xen: true, disks: [], vifs: [] } as unknown as DomainSpec;
  const saved: SavedDomain = { version: 1, domid: 3, snapshot: a.save(), store: { version: 1, nodes: [], guest: { watches: [], replies: [] } } as never };
  const path = join(dir, "lazy.xeno");
  await writeSaveFile(path, spec, saved, a.board.memory);
  const ram = u8.slice(0, a.board.ramBytes);
  a.release();
  return { path, ram, spec, uuid };
}

const pages = (cfg: Record<string, unknown>): number => (cfg.memMiB as number) * 256 + 256;

async function lazyMachine(path: string) {
  const f = await readSaveFile(path, pages, undefined, null, undefined, true);
  assert.ok(f.lazy !== undefined, "pages were left out");
  const m = new Machine({ memMiB: MEM_MIB, vcpus: 1, kernel: new Uint8Array(0), cmdline: "", xen: true, domid: 3, name: "lazy", uuid: new Uint8Array(16),
    consoleOut: () => {}, from: { snapshot: f.saved.snapshot, memory: f.memory, lazy: f.lazy.message } });
  return { f, m, lazy: new LazyRam(f.lazy.message), u8: new Uint8Array(f.memory.buffer) };
}

const page = (u8: Uint8Array, p: number): Uint8Array => u8.subarray(p * 4096, p * 4096 + 4096);

test("a lazy restore loads each page before any path uses it", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-lazy-"));
  try {
    const { path, ram } = await savedFile(dir);
    const { f, m, lazy, u8 } = await lazyMachine(path);
    const xen = m.xen!, s2 = xen.account.stage2Map;
    // The Xen area was loaded before the build; shared_info (page 0x180) by the restore that resolved it.
    assert.ok(lazy.total >= DATA_PAGES.length, `${lazy.total} pages left out`);
    for (let p = xen.layout.ramBytes / 4096; p < m.board.ramBytes / 4096; p++) assert.equal(lazy.absent(p), false, `Xen area page ${p}`);
    assert.equal(lazy.absent(0x180), false, "shared_info page loaded by the restore");
    assert.deepEqual(page(u8, 0x180), page(ram, 0x180));
    for (const p of [CODE_PAGE, 0x100, 0x101, 0x300, 0x301, 0x302, 0x480, 0x500, 0x600, 0x700]) {
      assert.equal(lazy.absent(p), true, `page ${p} absent after the build`);
      assert.equal(s2[p], STAGE2_LAZY);
      assert.ok(page(u8, p).every((b) => b === 0), `page ${p} not written before its load`);
    }
    // vCPU: the fetch of the Image's page and the load from page 0x100 fill the TLB through the hook.
    for (let i = 0; i < 3; i++) m.runSlice();
    assert.equal(lazy.absent(CODE_PAGE), false, "code page loaded by the fetch");
    assert.equal(lazy.absent(0x100), false, "data page loaded by the vCPU's load");
    assert.equal(s2[0x100], 1);
    const x1 = new DataView(f.memory.buffer, m.board.ramBytes + 8, 8).getUint32(0, true);
    assert.equal(x1, new DataView(ram.buffer, 0x100 * 4096, 4).getUint32(0, true), "the guest read its saved word");
    // Hypercall buffers: copyIn from an absent page reads its saved bytes; copyOut to one keeps the rest of it.
    xen.mem.mmu = m.board.vcpus[0]!.mmu;
    const got = new Uint8Array(64);
    xen.mem.copyIn(RAM_BASE + 0x101 * 4096 + 100, 0, 64, got);
    assert.deepEqual(got, ram.subarray(0x101 * 4096 + 100, 0x101 * 4096 + 164));
    xen.mem.copyOut(RAM_BASE + 0x300 * 4096 + 8, 0, 8, new Uint8Array(8).fill(0xee));
    assert.deepEqual(page(u8, 0x300).subarray(16), page(ram, 0x300).subarray(16), "copyOut: the page was loaded before the write");
    assert.ok(page(u8, 0x300).subarray(8, 16).every((b) => b === 0xee));
    // Grant mappings (back-ends, disk threads): entry 5 grants page 0x301, entry 6 page 0x302 (to dom0).
    const gt = xen.gnttab;
    for (const [ref, p] of [[5, 0x301], [6, 0x302]] as const) {
      const e = gt.entryOffset(ref);
      xen.mem.dv.setUint16(e + 2, 0, true); xen.mem.dv.setUint32(e + 4, RAM_BASE / 4096 + p, true); xen.mem.dv.setUint16(e, 1, true);
    }
    assert.equal(lazy.absent(0x301), true);
    assert.equal(gt.grantedPage(5, 0, false), 0x301 * 4096);
    assert.deepEqual(page(u8, 0x301), page(ram, 0x301), "grantedPage: loaded before its offset is returned");
    assert.equal(gt.pin(6, 0, true), 0x302 * 4096);
    assert.deepEqual(page(u8, 0x302), page(ram, 0x302), "pin: loaded before the disk thread gets the offset");
    gt.unpin(6, true);
    // The balloon: decrease_reservation of absent page 0x480, then the background ends: the page stays zero.
    const arg = ZERO_PAGE * 4096, dv = new DataView(u8.buffer);
    dv.setUint32(arg, RAM_BASE + arg + 64, true); dv.setUint32(arg + 8, 1, true); dv.setUint16(arg + 24, 0x7ff0, true);
    dv.setUint32(arg + 64, RAM_BASE / 4096 + 0x480, true);
    assert.equal(lazy.absent(0x480), true);
    assert.equal(memoryOp(xen.mem, xen.sharedInfo, gt, xen.account, 3, XENMEM_decrease_reservation, RAM_BASE + arg, 0), 1);
    assert.equal(xen.account.map[0x480], 0, "given back");
    // The background load (the hypervisor's main thread does this after the first slice), to the end.
    const fh = { closed: false, close: async () => { fh.closed = true; } };
    await new Promise<void>((res, rej) => loadInBackground(f.lazy!.message, fh, () => res(), (e) => rej(e)));
    assert.ok(fh.closed, "the file is closed once every page is in");
    assert.ok(page(u8, 0x480).every((b) => b === 0), "a page given back is not loaded over its zeroes");
    for (const p of [0x500, 0x600, 0x700]) assert.deepEqual(page(u8, p), page(ram, p), `page ${p} loaded by the background`);
    // A save after it: every stage-2 byte 0/1 again (the P2M saved says mapped or not).
    const snap = m.save() as unknown as { p2m: unknown };
    assert.ok(snap.p2m !== null);
    assert.ok(s2.every((b) => b === 0 || b === 1));
    m.release();
    await f.lazy!.fh.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a save and the dirty log before the load ends load every page first; a page changed after the check is never used", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-lazy-"));
  try {
    const { path, ram } = await savedFile(dir);
    {
      const { f, m, lazy, u8 } = await lazyMachine(path);
      assert.ok(lazy.absent(0x500));
      m.save();
      assert.equal(lazy.loaded, lazy.total, "save loaded every page");
      assert.deepEqual(u8.subarray(0, ram.length), ram, "the memory is the saved RAM");
      assert.ok(m.xen!.account.stage2Map.every((b) => b === 0 || b === 1));
      m.release();
      await f.lazy!.fh.close();
    }
    {
      const { f, m, lazy } = await lazyMachine(path);
      assert.ok(lazy.absent(0x600));
      m.startDirtyLog();
      assert.equal(lazy.loaded, lazy.total, "the dirty log starts after every page is in");
      m.stopDirtyLog();
      m.release();
      await f.lazy!.fh.close();
    }
    {
      // A copy with one byte of a lazy page flipped before the read: the check refuses it whole (nothing built).
      const bad = join(dir, "bad.xeno");
      const { f, m } = await lazyMachine(path);
      const at = new Float64Array(f.lazy!.message.offs)[0x600]! + 77;
      m.release();
      await f.lazy!.fh.close();
      const b = readFileSync(path);
      b[at] ^= 0x01;
      writeFileSync(bad, b);
      await assert.rejects(readSaveFile(bad, pages, undefined, null, undefined, true), (e: Error & { code?: string }) => e.code === "SAVE_CHECKSUM");
    }
    {
      // The file changes after its check: the page whose bytes changed fails its CRC-32 and is not written.
      const { f, m, lazy, u8 } = await lazyMachine(path);
      const off = new Float64Array(f.lazy!.message.offs)[0x700]!;
      const fd = openSync(path, "r+");
      writeSync(fd, Buffer.from([0x5a ^ ram[0x700 * 4096 + 10]!]), 0, 1, off + 10);
      closeSync(fd);
      assert.throws(() => lazy.ensure(0x700), LazyLoadError);
      assert.ok(page(u8, 0x700).every((b) => b === 0), "a page that failed its check is not in the memory");
      assert.equal(lazy.failed, true);
      assert.throws(() => m.save(), LazyLoadError, "nothing saves or runs past a failed page");
      m.release();
      await f.lazy!.fh.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("compiled code (the JIT) makes the first touch of pages a lazy restore has not loaded: it reads their saved bytes", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-lazy-"));
  try {
    const { path, ram } = await savedFile(dir, image(JIT_CODE, 112));
    const { f, m, lazy } = await lazyMachine(path);
    for (const p of JIT_PAGES) assert.equal(lazy.absent(p), true, `page ${p} absent after the build`);
    // The same loader as attachLazyRam's, also noting who asked: a stack through WebAssembly is compiled code's.
    const s2 = m.xen!.account.stage2Map, viaWasm = new Set<number>();
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 64;
    setLazyLoader(s2, (i) => {
      if (/wasm/.test(new Error().stack ?? "")) viaWasm.add(i);
      lazy.ensure(i); Atomics.compareExchange(s2, i, STAGE2_LAZY, 1);
    });
    // The vCPU state block (docs/save-restore.md): X0.. as lo/hi pairs, PC at 0x108.
    const regs = new DataView(f.memory.buffer, m.board.ramBytes, 512);
    const end = RAM_BASE + CODE_PAGE * 4096 + 108;
    for (let i = 0; i < 2000 && regs.getUint32(0x108, true) !== end; i++) m.runSlice();
    assert.equal(regs.getUint32(0x108, true), end, "the loop ended at its `b .`");
    assert.equal(regs.getUint32(32, true), 0, "x4 counted down");
    const rv = new DataView(ram.buffer);
    let want = 0n;
    for (const p of JIT_PAGES) want += 3000n * rv.getBigUint64(p * 4096, true);
    assert.equal(regs.getBigUint64(16, true), want & 0xffffffffffffffffn, "the sum of the saved words");
    Error.stackTraceLimit = limit;
    const st = m.board.jitStats();
    assert.ok(st !== null && st.blocks > 0, `compiled blocks: ${JSON.stringify(st)}`);
    const jitTouched = JIT_PAGES.filter((p) => viaWasm.has(p));
    assert.ok(jitTouched.length >= 8, `pages first touched by compiled code: ${jitTouched.map((p) => p.toString(16)).join(" ")}`);
    m.release();
    await f.lazy!.fh.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
