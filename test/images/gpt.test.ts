/**
 * src/images/gpt.ts against util-linux: partx lists the partitions it wrote (libblkid checks the headers' and the
 * entry array's CRC32s), and bad layouts are refused. The UEFI disk src/images/debian-uefi.ts assembles from a tiny
 * tree is read back with partx, blkid, mtools and debugfs at the partitions' offsets.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ESP_TYPE, LINUX_ROOT_ARM64_TYPE, guidBytes, lastUsable, writeGpt } from "../../src/images/gpt.js";
import { assembleUefiDisk, espUuid, newUefiIds, UEFI_GRUB_MARKER } from "../../src/images/debian-uefi.js";
import { findTool } from "../../src/images/host-packages.js";
import { defaultCacheDir } from "../../src/images/index.js";
import { ensureGrubArm64Efi } from "../../src/images/uefi-esp.js";

const dir = mkdtempSync(join(tmpdir(), "xeno-gpt-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] }).toString();
const has = (t: string): boolean => findTool(t, env.PATH) !== null;

test("gpt: GUIDs are stored mixed-endian (UEFI 2.10 appendix A)", () => {
  assert.equal(guidBytes(ESP_TYPE).toString("hex"), "28732ac11ff8d211ba4b00a0c93ec93b");
  assert.throws(() => guidBytes("not-a-guid"));
});

test("gpt: partx reads back what writeGpt wrote, from the backup too; bad layouts are refused", { skip: has("partx") && has("blkid") ? false : "no partx/blkid (util-linux)" }, async () => {
  const img = join(dir, "t.img");
  writeFileSync(img, "");
  truncateSync(img, 16 << 20);
  const sectors = (16 << 20) / 512;
  await writeGpt(img, [
    { type: ESP_TYPE, guid: "11111111-2222-3333-4444-555555555555", first: 2048, last: 4095, name: "EFI system partition" },
    { type: LINUX_ROOT_ARM64_TYPE, first: 4096, last: lastUsable(sectors), name: "root" },
  ], "01234567-89ab-cdef-0123-456789abcdef");
  const show = (): string => sh("partx", ["-P", "-o", "NR,START,END,TYPE,UUID,NAME", img]);
  const out = show();
  assert.match(out, /NR="1" START="2048" END="4095" TYPE="c12a7328-f81f-11d2-ba4b-00a0c93ec93b" UUID="11111111-2222-3333-4444-555555555555" NAME="EFI system partition"/);
  assert.match(out, new RegExp(`NR="2" START="4096" END="${lastUsable(sectors)}" TYPE="b921b045-1df0-41c3-af44-4c6f280d3fae" UUID="[0-9a-f-]{36}" NAME="root"`));
  assert.match(sh("blkid", ["-p", img]), /PTUUID="01234567-89ab-cdef-0123-456789abcdef" PTTYPE="gpt"/);
  // The backup header in the last sector names itself (MyLBA) and the primary (AlternateLBA).
  const b = Buffer.alloc(512), fd = openSync(img, "r+");
  try {
    readSync(fd, b, 0, 512, (sectors - 1) * 512);
    assert.equal(b.toString("latin1", 0, 8), "EFI PART");
    assert.equal(Number(b.readBigUInt64LE(24)), sectors - 1);
    assert.equal(Number(b.readBigUInt64LE(32)), 1);
    // A changed byte in the primary header breaks its CRC: libblkid reads the backup, which lists the same.
    writeSync(fd, Buffer.from([0x42]), 0, 1, 512 + 60);
  } finally { closeSync(fd); }
  assert.equal(show(), out);

  await assert.rejects(writeGpt(img, [{ type: ESP_TYPE, first: 10, last: 100, name: "x" }]), /outside/);
  await assert.rejects(writeGpt(img, [{ type: ESP_TYPE, first: 2048, last: sectors, name: "x" }]), /outside/);
  await assert.rejects(writeGpt(img, [
    { type: ESP_TYPE, first: 2048, last: 4096, name: "a" }, { type: ESP_TYPE, first: 4096, last: 5000, name: "b" }]), /overlaps/);
});

const grubDir = ((): string | null => {
  try {
    const g = execFileSync("sh", ["-c", `ls -d ${defaultCacheDir()}/grub-efi-arm64-*/usr/lib/grub/arm64-efi 2>/dev/null | tail -1`]).toString().trim();
    return g !== "" && existsSync(join(g, "linux.mod")) ? g : null;
  } catch { return null; }
})();

test("debian-uefi: the assembled disk has a GPT, a FAT ESP with GRUB and grub.cfg, and the ext4 root at its offset",
  { skip: ["partx", "blkid", "mkfs.ext4", "debugfs", "mformat", "grub-mkimage"].every(has) ? false : "needs util-linux, e2fsprogs, mtools, grub-common" }, async () => {
    const grub = grubDir ?? await ensureGrubArm64Efi(defaultCacheDir());
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "etc"), { recursive: true });
    writeFileSync(join(tree, "etc", "hello"), "from the tree\n");
    const ids = newUefiIds(), disk = join(dir, "disk.img");
    const l = await assembleUefiDisk({ tree, out: disk, size: 300 << 20, ids, grubModules: grub, mkfs: "mkfs.ext4", label: "xeno-root" });
    assert.deepEqual(l, { espFirst: 2048, espLast: 133119, rootFirst: 133120, rootLast: 612351 });
    const parts = sh("partx", ["-P", "-o", "NR,START,END,NAME", disk]);
    assert.match(parts, /NR="1" START="2048" END="133119" NAME="EFI system partition"/);
    assert.match(parts, /NR="2" START="133120" END="612351" NAME="xeno-root"/);
    assert.match(sh("blkid", ["-p", "-O", String(2048 * 512), disk]), new RegExp(`UUID="${espUuid(ids.espSerial)}".*TYPE="vfat"`));
    assert.match(sh("blkid", ["-p", "-O", String(133120 * 512), disk]), new RegExp(`LABEL="xeno-root" UUID="${ids.rootUuid}".*TYPE="ext4"`));
    assert.equal(sh("debugfs", ["-R", "cat /etc/hello", `${disk}?offset=${133120 * 512}`]), "from the tree\n");
    const cfg = sh("mtype", ["-i", `${disk}@@${2048 * 512}`, "::/EFI/BOOT/grub.cfg"]);
    assert.match(cfg, new RegExp(`search --no-floppy --fs-uuid --set=root ${ids.rootUuid}`));
    assert.match(cfg, new RegExp(`linux /vmlinuz root=UUID=${ids.rootUuid} ro console=ttyAMA0`));
    assert.ok(cfg.includes(UEFI_GRUB_MARKER));
    // GRUB's image is a PE/COFF file for arm64 (machine 0xaa64).
    const efi = execFileSync("mtype", ["-i", `${disk}@@${2048 * 512}`, "::/EFI/BOOT/BOOTAA64.EFI"]);
    assert.equal(efi.toString("latin1", 0, 2), "MZ");
    assert.equal(efi.readUInt16LE(efi.readUInt32LE(0x3c) + 4), 0xaa64);
  });
