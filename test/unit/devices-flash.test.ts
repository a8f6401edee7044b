/**
 * The CFI flash bank (src/devices/flash/cfi-flash.ts) against the Intel command set as EDK2's NorFlashDxe uses
 * it on QEMU's virt geometry (64 MiB bank, 256 KiB sectors, 32-bit bank of two x16 devices): every command
 * written as EDK2 writes it (the command in each 16-bit half), status/ID/CFI answers in both halves, ROMD
 * switching, NOR semantics (programming clears bits only, erase sets a sector to 0xff), buffered programs,
 * block locks, a read-only bank refusing changes with the status error bits, bad sequences.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CfiFlash, SR_ERASE_ERR, SR_LOCKED, SR_PROGRAM_ERR, SR_READY } from "../../src/devices/flash/cfi-flash.js";

const BANK = 64 << 20, SECTOR = 256 << 10;
/** EDK2's CREATE_DUAL_CMD: the command for both devices of the bank. */
const dual = (c: number): number => ((c << 16) | c) >>> 0;

function bank(readOnly = false): { f: CfiFlash; modes: boolean[]; changes: [number, number][] } {
  const bytes = new Uint8Array(BANK).fill(0xff, 0, 4 * SECTOR); // the first sectors erased, the rest zero
  const modes: boolean[] = [], changes: [number, number][] = [];
  const f = new CfiFlash({ bytes, sectorSize: SECTOR, readOnly, onModeChange: (r) => modes.push(r), onChange: (o, l) => changes.push([o, l]) });
  return { f, modes, changes };
}
const cmd = (f: CfiFlash, off: number, c: number): void => f.write(off, 4, dual(c), 0);

test("cfi-flash: CFI query (QRY, command set 1, geometry) and READ ID (manufacturer 0x89, device 0x18), answered in both halves", () => {
  const { f, modes } = bank();
  assert.equal(f.romd, true);
  cmd(f, 0, 0x98);
  assert.deepEqual(modes, [false], "a query turns ROMD off");
  // Query offset i is read at bank address i * 4 (each device sees the word address).
  const q = (i: number): number => f.read(i * 4, 4);
  assert.deepEqual([q(0x10), q(0x11), q(0x12)], [dual(0x51), dual(0x52), dual(0x59)]);
  assert.equal(q(0x13) & 0xffff, 0x01, "primary command set 0x0001 (Intel/Sharp)");
  assert.equal(q(0x27) & 0xff, 25, "each device is 2^25 bytes (two 32 MiB devices)");
  assert.equal((q(0x2d) & 0xff) | ((q(0x2e) & 0xff) << 8), 255, "256 blocks");
  assert.equal(((q(0x2f) & 0xff) | ((q(0x30) & 0xff) << 8)) * 256, SECTOR / 2, "128 KiB per device");
  assert.equal(f.read(0x11 * 4, 2), 0x52, "a 16-bit read gets one device's answer");
  cmd(f, 0, 0x90);
  assert.equal(f.read(0, 4), dual(0x89));
  assert.equal(f.read(4, 4), dual(0x18));
  assert.equal(f.read(SECTOR * 3 + 8, 4), 0, "block 3 unlocked");
  cmd(f, 0, 0xff);
  assert.deepEqual(modes, [false, true]);
  assert.equal(f.read(0, 4), 0xffffffff, "array again");
});

test("cfi-flash: EDK2's erase (unlock, erase, poll status) and word program; NOR: programming only clears bits", () => {
  const { f, changes } = bank();
  const s = 2 * SECTOR;
  f.bytes.fill(0x12, s, s + 16);
  // NorFlashUnlockSingleBlock: 0x60 then 0xD0; NorFlashEraseSingleBlock: 0x20 then 0xD0; poll 0x70 for SR.7.
  cmd(f, s, 0x60); cmd(f, s, 0xd0);
  cmd(f, s, 0x20); cmd(f, s + 100, 0xd0);
  cmd(f, s, 0x70);
  assert.equal(f.read(s, 4), dual(SR_READY));
  assert.ok(f.bytes.subarray(s, s + SECTOR).every((b) => b === 0xff), "the sector is erased");
  assert.deepEqual(changes, [[s, SECTOR]]);
  // NorFlashWriteSingleWord: 0x40 then the data word; status ready; array mode shows it.
  cmd(f, s + 8, 0x40);
  f.write(s + 8, 4, 0xa5a5f00f, 0);
  assert.equal(f.read(s + 8, 4), dual(SR_READY), "status after a program");
  cmd(f, 0, 0xff);
  assert.equal(f.read(s + 8, 4), 0xa5a5f00f);
  // Programming 1 bits over 0 bits changes nothing there.
  cmd(f, s + 8, 0x40);
  f.write(s + 8, 4, 0xffff00ff, 0);
  cmd(f, 0, 0xff);
  assert.equal(f.read(s + 8, 4), (0xa5a50000 | 0x0f) >>> 0, "AND of the two programs");
  assert.equal(f.stats.programs, 2);
});

test("cfi-flash: buffered program (0xE8, count - 1, data words, 0xD0) lands on confirm only; a bad confirm is a sequence error", () => {
  const { f } = bank();
  const at = SECTOR;
  cmd(f, at, 0xe8);
  assert.equal(f.read(at, 4) & 0x80, 0x80, "buffer available (ready)");
  f.write(at, 4, 31, 0); // 32 words of 4 bytes: EDK2's 128-byte buffer
  for (let i = 0; i < 32; i++) f.write(at + 4 * i, 4, 0x01010101 * i, 0);
  assert.equal(f.bytes[at + 4], 0xff, "nothing programmed before the confirm");
  cmd(f, at, 0xd0);
  assert.equal(f.read(at, 4), dual(SR_READY));
  cmd(f, 0, 0xff);
  for (let i = 0; i < 32; i++) assert.equal(f.read(at + 4 * i, 4), (0x01010101 * i) >>> 0, `word ${i}`);
  // A buffer not confirmed with 0xD0: both error bits (improper sequence), nothing written.
  cmd(f, at + 256, 0xe8);
  f.write(at + 256, 4, 0, 0);
  f.write(at + 256, 4, 0, 0);
  cmd(f, at + 256, 0xff);
  assert.equal(f.read(at, 4) & (SR_PROGRAM_ERR | SR_ERASE_ERR), SR_PROGRAM_ERR | SR_ERASE_ERR);
  cmd(f, 0, 0xff);
  assert.equal(f.read(at + 256, 4), 0xffffffff, "the unconfirmed word was not programmed");
  cmd(f, 0, 0x50); // clear status
  cmd(f, 0, 0x70);
  assert.equal(f.read(0, 4), dual(SR_READY));
  // A count beyond the 2 KiB per-device write buffer is refused at once.
  cmd(f, at, 0xe8);
  f.write(at, 4, 0xffff, 0);
  assert.equal(f.read(at, 4) & SR_PROGRAM_ERR, SR_PROGRAM_ERR);
});

test("cfi-flash: a locked block refuses erase and program with SR.1; the read-only bank refuses with SR.4/SR.5 and stays as it was", () => {
  const { f } = bank();
  cmd(f, 0, 0x60); cmd(f, 0, 0x01); // lock block 0
  cmd(f, 0, 0x90);
  assert.equal(f.read(8, 4), dual(1), "READ ID word 2: block 0 locked");
  cmd(f, 0, 0x20); cmd(f, 0, 0xd0);
  assert.equal(f.read(0, 4) & 0xff, SR_READY | SR_ERASE_ERR | SR_LOCKED);
  cmd(f, 0, 0x50);
  const ro = bank(true).f;
  const before = ro.bytes.slice(0, SECTOR);
  cmd(ro, 0, 0x20); cmd(ro, 0, 0xd0);
  assert.equal(ro.read(0, 4) & 0xff, SR_READY | SR_ERASE_ERR);
  cmd(ro, 0, 0x50);
  cmd(ro, 16, 0x40); ro.write(16, 4, 0, 0);
  assert.equal(ro.read(0, 4) & 0xff, SR_READY | SR_PROGRAM_ERR);
  assert.ok(Buffer.from(ro.bytes.subarray(0, SECTOR)).equals(Buffer.from(before)), "read-only bank unchanged");
  assert.equal(ro.stats.refused, 2);
});

test("cfi-flash: an unknown command goes back to array mode; reads in array mode through the device give the bytes", () => {
  const { f, modes } = bank();
  f.bytes.set([1, 2, 3, 4], 40);
  cmd(f, 0, 0x70);
  cmd(f, 0, 0x42);
  assert.equal(f.romd, true);
  assert.deepEqual(modes, [false, true]);
  assert.equal(f.read(40, 4), 0x04030201);
  assert.equal(f.read(41, 2), 0x0302);
});

test("cfi-flash: seeded fuzz of guest writes and reads — no exception, the read-only bank never changes, the writable bank reports its changes inside itself", () => {
  const seed = Number(process.env.XENO_SEED ?? 4242);
  let x = seed >>> 0 || 1;
  const rnd = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  const cmds = [0xff, 0x00, 0x70, 0x50, 0x90, 0x98, 0x40, 0x10, 0xe8, 0x20, 0x60, 0xd0, 0x01, 0xb0];
  const ro = bank(true), rw = bank(false);
  const roBefore = Buffer.from(ro.f.bytes.subarray(0, 4 * SECTOR));
  let ops = 0;
  for (const { f } of [ro, rw]) {
    for (let i = 0; i < 20_000; i++) {
      // Mostly within the first sectors (erased), sometimes anywhere in the 64 MiB bank.
      const span = rnd() % 8 === 0 ? BANK : 4 * SECTOR;
      const size = [1, 2, 4][rnd() % 3]!;
      const off = (rnd() % (span / size)) * size;
      if (rnd() % 3 === 0) f.read(off, size);
      else f.write(off, size, rnd() % 2 === 0 ? dual(cmds[rnd() % cmds.length]!) : rnd(), 0);
      ops++;
    }
  }
  assert.ok(Buffer.from(ro.f.bytes.subarray(0, 4 * SECTOR)).equals(roBefore), "the read-only bank is unchanged");
  assert.equal(ro.changes.length, 0);
  // Every change the writable bank reported lies inside it.
  for (const [o, l] of rw.changes) assert.ok(o >= 0 && l > 0 && o + l <= BANK, `change ${o}+${l}`);
  process.stderr.write(`# cfi-flash fuzz (XENO_SEED=${seed}): ${ops} accesses; writable bank: ${rw.f.stats.programs} programs, ${rw.f.stats.erases} erases, ${rw.f.stats.badSequences} bad sequences; read-only bank: ${ro.f.stats.refused} refused\n`);
});
