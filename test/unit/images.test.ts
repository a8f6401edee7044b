/**
 * Guest image building blocks: the newc cpio writer (checked with the host `cpio` when present), arm64 Image
 * header parsing (on the cached Debian kernel when `xeno image fetch` has run, else on crafted headers), module
 * metadata and modules.dep, and the initramfs layout. No network: nothing here calls apt.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { type CpioEntry, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, readCpio, writeCpio } from "../../src/images/cpio.js";
import { ImageError } from "../../src/images/errors.js";
import { defaultCacheDir } from "../../src/images/index.js";
import { GUEST_READY_MARKER, INITTAB, SHELL_SCRIPT, buildInitramfs, initScript, initramfsRecipe } from "../../src/images/initramfs.js";
import { type KernelModule, elfSection, modulesAlias, modulesDep, readModinfo, resolveModules } from "../../src/images/modules.js";
import { ARM64_IMAGE_MAGIC, ImageFormatError, parseArm64Image } from "../../src/machine/arm64-image.js";

const enc = new TextEncoder();
const hasCpio = spawnSync("cpio", ["--version"]).status === 0;
const imageCode = (c: string) => (e: unknown): boolean => e instanceof ImageError && e.code === c;
const formatCode = (c: string) => (e: unknown): boolean => e instanceof ImageFormatError && e.code === c;

const sampleEntries: CpioEntry[] = [
  { type: "dir", path: "bin" },
  { type: "file", path: "bin/hello", data: enc.encode("#!/bin/sh\necho hi\n"), mode: 0o755 },
  { type: "symlink", path: "bin/hi", target: "hello" },
  { type: "dir", path: "etc" },
  { type: "file", path: "etc/empty", data: new Uint8Array(0) },
  { type: "file", path: "etc/odd-length-name.txt", data: enc.encode("12345") },
];

test("cpio: newc headers, 4-byte alignment, trailer, and our reader agrees", () => {
  const arc = writeCpio([...sampleEntries, { type: "char", path: "console", major: 5, minor: 1 }]);
  assert.equal(arc.toString("latin1", 0, 6), "070701");
  assert.equal(arc.length % 4, 0);
  assert.ok(arc.includes("TRAILER!!!\0"));
  const recs = readCpio(arc);
  assert.deepEqual(recs.map((r) => r.path), ["bin", "bin/hello", "bin/hi", "etc", "etc/empty", "etc/odd-length-name.txt", "console"]);
  const by = new Map(recs.map((r) => [r.path, r]));
  assert.equal(by.get("bin")!.mode & S_IFMT, S_IFDIR);
  assert.equal(by.get("bin/hello")!.mode, S_IFREG | 0o755);
  assert.equal(by.get("bin/hi")!.mode & S_IFMT, S_IFLNK);
  assert.equal(by.get("bin/hi")!.data.toString(), "hello");
  assert.equal(by.get("etc/odd-length-name.txt")!.data.toString(), "12345");
  const con = by.get("console")!;
  assert.deepEqual([con.mode & S_IFMT, con.rdevMajor, con.rdevMinor], [S_IFCHR, 5, 1]);
  // Every header starts on a 4-byte boundary: walk them by magic.
  let at = arc.indexOf("070701");
  while (at >= 0) { assert.equal(at % 4, 0, `header at ${at}`); at = arc.indexOf("070701", at + 1); }
});

test("cpio: bad paths and duplicates are refused", () => {
  assert.throws(() => writeCpio([{ type: "dir", path: "a/../b" }]), imageCode("EIMAGES_CPIO"));
  assert.throws(() => writeCpio([{ type: "dir", path: "/" }]), imageCode("EIMAGES_CPIO"));
  assert.throws(() => writeCpio([{ type: "dir", path: "a" }, { type: "dir", path: "/a/" }]), imageCode("EIMAGES_CPIO"));
});

test("cpio: the host cpio lists and extracts our archive", {
  skip: hasCpio ? false : "host cpio not found (apt-get install cpio); our own reader still checks the format",
}, () => {
  const arc = writeCpio(sampleEntries);
  const list = execFileSync("cpio", ["-t", "--quiet"], { input: arc, encoding: "utf8" });
  assert.deepEqual(list.trim().split("\n"), sampleEntries.map((e) => e.path));
  const dir = mkdtempSync(join(tmpdir(), "xeno-cpio-"));
  try {
    execFileSync("cpio", ["-i", "-d", "--quiet", "--no-absolute-filenames"], { input: arc, cwd: dir });
    assert.equal(readFileSync(join(dir, "bin/hello"), "utf8"), "#!/bin/sh\necho hi\n");
    assert.equal(lstatSync(join(dir, "bin/hello")).mode & 0o777, 0o755);
    assert.equal(readlinkSync(join(dir, "bin/hi")), "hello");
    assert.equal(readFileSync(join(dir, "etc/empty")).length, 0);
    assert.equal(readFileSync(join(dir, "etc/odd-length-name.txt"), "utf8"), "12345");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A minimal arm64 Image header per booting.rst. */
function craftedImage(opts: { textOffset?: number; imageSize?: number; flags?: number; mz?: boolean } = {}): Uint8Array {
  const b = new Uint8Array(4096);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, opts.mz ? 0xfa405a4d : 0x14000010, true); // "MZ" + branch, or b #0x40
  dv.setBigUint64(8, BigInt(opts.textOffset ?? 0), true);
  dv.setBigUint64(16, BigInt(opts.imageSize ?? 0x2000000), true);
  dv.setBigUint64(24, BigInt(opts.flags ?? 0b1010), true); // 4K pages, placement anywhere
  dv.setUint32(56, ARM64_IMAGE_MAGIC, true);
  dv.setUint32(60, 0x40, true);
  return b;
}

test("arm64 Image: crafted headers", () => {
  const h = parseArm64Image(craftedImage());
  assert.deepEqual([h.textOffset, h.imageSize, h.bigEndian, h.pageSize, h.placementAnywhere, h.legacy, h.peHeaderOffset],
    [0, 0x2000000, false, 4096, true, false, null]);
  const be64k = parseArm64Image(craftedImage({ flags: 0b0111, textOffset: 0x80000, mz: true }));
  assert.deepEqual([be64k.bigEndian, be64k.pageSize, be64k.placementAnywhere, be64k.textOffset, be64k.peHeaderOffset],
    [true, 65536, false, 0x80000, 0x40]);
  assert.equal(parseArm64Image(craftedImage({ flags: 0 })).pageSize, null);
  const legacy = parseArm64Image(craftedImage({ imageSize: 0, textOffset: 0x1234 }));
  assert.deepEqual([legacy.legacy, legacy.textOffset, legacy.imageSize], [true, 0x80000, 4096]);
});

test("arm64 Image: non-Image inputs get an error naming what they are", () => {
  const gz = gzipSync(craftedImage());
  assert.throws(() => parseArm64Image(gz), (e: unknown) => formatCode("EIMAGE_GZIP")(e) && /gzip/.test((e as Error).message));
  assert.throws(() => parseArm64Image(enc.encode("\x7fELF\x02\x01\x01" + "\0".repeat(80))), formatCode("EIMAGE_ELF"));
  assert.throws(() => parseArm64Image(new Uint8Array(10)), formatCode("EIMAGE_TOO_SHORT"));
  assert.throws(() => parseArm64Image(new Uint8Array(128)), formatCode("EIMAGE_BAD_MAGIC"));
  const zboot = new Uint8Array(128);
  zboot.set(enc.encode("MZ\0\0zimg"));
  zboot.set(enc.encode("gzip"), 24);
  assert.throws(() => parseArm64Image(zboot), (e: unknown) => formatCode("EIMAGE_ZBOOT")(e) && /gzip/.test((e as Error).message));
});

/** The cached kernel from a previous `xeno image fetch`, if any. */
function cachedKernel(): { image: string; modulesDir: string; release: string } | null {
  try {
    const m = JSON.parse(readFileSync(join(defaultCacheDir(), "manifest.json"), "utf8")) as { kernelRelease: string };
    const dir = join(defaultCacheDir(), `linux-${m.kernelRelease}`);
    const image = join(dir, "Image");
    return existsSync(image) ? { image, modulesDir: join(dir, "lib", "modules", m.kernelRelease), release: m.kernelRelease } : null;
  } catch { return null; }
}
const cached = cachedKernel();

test("arm64 Image: the cached Debian cloud kernel", {
  skip: cached ? false : "no cached kernel (run `xeno image fetch`); crafted headers are tested above",
}, () => {
  const img = readFileSync(cached!.image);
  const h = parseArm64Image(img);
  assert.equal(h.bigEndian, false);
  assert.equal(h.pageSize, 4096);
  assert.equal(h.textOffset, 0); // since Linux 5.8 text_offset is 0
  assert.ok(h.imageSize >= img.length, "image_size covers the file (plus BSS)");
  assert.notEqual(h.peHeaderOffset, null, "Debian builds the EFI stub");
});

/** A minimal ELF64 LE relocatable with a .modinfo and a .shstrtab section (ELF spec section header layout). */
function fakeModule(info: string[]): Buffer {
  const modinfo = Buffer.from(info.map((s) => s + "\0").join(""));
  const shstr = Buffer.from("\0.modinfo\0.shstrtab\0");
  const dataOff = 64, shstrOff = dataOff + modinfo.length, shoff = (shstrOff + shstr.length + 7) & ~7;
  const b = Buffer.alloc(shoff + 3 * 64);
  b.write("\x7fELF", 0, "latin1");
  b[4] = 2; b[5] = 1; b[6] = 1; // ELFCLASS64, little-endian, version 1
  b.writeUInt16LE(1, 16); b.writeUInt16LE(183, 18); // ET_REL, EM_AARCH64
  b.writeBigUInt64LE(BigInt(shoff), 0x28);
  b.writeUInt16LE(64, 0x34); b.writeUInt16LE(64, 0x3a); b.writeUInt16LE(3, 0x3c); b.writeUInt16LE(2, 0x3e);
  modinfo.copy(b, dataOff);
  shstr.copy(b, shstrOff);
  const sh = (i: number, name: number, type: number, off: number, size: number): void => {
    const o = shoff + i * 64;
    b.writeUInt32LE(name, o); b.writeUInt32LE(type, o + 4);
    b.writeBigUInt64LE(BigInt(off), o + 24); b.writeBigUInt64LE(BigInt(size), o + 32);
  };
  sh(1, 1, 1, dataOff, modinfo.length); // .modinfo, SHT_PROGBITS
  sh(2, 10, 3, shstrOff, shstr.length); // .shstrtab, SHT_STRTAB
  return b;
}

test("modules: .modinfo parsing", () => {
  const ko = fakeModule(["alias=xen:vbd", "alias=xenblk", "depends=a-b,c", "name=xen_blkfront"]);
  assert.ok(elfSection(ko, ".modinfo"));
  assert.equal(elfSection(ko, ".nope"), null);
  const info = readModinfo(ko);
  assert.deepEqual(info.get("alias"), ["xen:vbd", "xenblk"]);
  assert.deepEqual(info.get("depends"), ["a-b,c"]);
  assert.throws(() => readModinfo(Buffer.from("not elf")), imageCode("EIMAGES_MODULE"));
});

const mod = (name: string, depends: string[] = [], aliases: string[] = []): KernelModule =>
  ({ name, relPath: `kernel/x/${name}.ko`, data: fakeModule([`name=${name}`]), depends, aliases });

test("modules: modules.dep lists the closure so that the last entry loads first", () => {
  // Load order c, b, a (a needs b and c; b needs c). kmod and busybox modprobe load from the end of the list.
  const mods = [mod("c"), mod("b", ["c"]), mod("a", ["b", "c"], ["xen:vbd"])];
  assert.equal(modulesDep(mods), "kernel/x/c.ko:\nkernel/x/b.ko: kernel/x/c.ko\nkernel/x/a.ko: kernel/x/b.ko kernel/x/c.ko\n");
  assert.match(modulesAlias(mods), /^alias xen:vbd a$/m);
});

test("modules: dependency closure of xen-blkfront in the cached kernel", {
  skip: cached ? false : "no cached kernel (run `xeno image fetch`)",
}, async () => {
  const { modules, missing } = await resolveModules(cached!.modulesDir, ["xen-blkfront", "xen_netfront", "no-such-module"]);
  assert.deepEqual(missing, ["no_such_module"]);
  const names = modules.map((m) => m.name);
  assert.ok(names.includes("xen_blkfront") && names.includes("xen_netfront"));
  for (const m of modules) {
    for (const d of m.depends) assert.ok(names.indexOf(d) < names.indexOf(m.name), `${d} before ${m.name}`);
    assert.match(m.relPath, /^kernel\/.*\.ko$/);
    assert.ok(m.aliases.length > 0);
  }
});

test("initramfs: layout, /init and recipe", () => {
  const busybox = enc.encode("fake busybox");
  const mods = [mod("c"), mod("a", ["c"], ["xen:vif"])];
  const input = { kernelRelease: "6.1.0-99-cloud-arm64", busybox, modules: mods, load: ["a"] };
  const built = buildInitramfs(input);
  const recs = readCpio(gunzipSync(built.image));
  assert.equal(recs.length, built.fileCount);
  const by = new Map(recs.map((r) => [r.path, r]));
  const seen = new Set<string>();
  for (const r of recs) {
    const slash = r.path.lastIndexOf("/");
    const parent = slash > 0 ? r.path.slice(0, slash) : "";
    if (parent) assert.ok(seen.has(parent), `${parent} precedes ${r.path}`);
    seen.add(r.path);
  }
  assert.equal(by.get("init")!.mode, S_IFREG | 0o755);
  const init = by.get("init")!.data.toString();
  assert.match(init, /mount -t devtmpfs/);
  // busybox init becomes PID 1 (it handles the signals poweroff/halt/reboot send); the shell runs from inittab.
  assert.match(init, /^exec \/bin\/busybox init$/m);
  assert.match(init, /poweroff -f\n$/);
  assert.equal(by.get("etc/inittab")!.data.toString(), INITTAB);
  assert.match(INITTAB, /^::once:\/etc\/xeno-shell$/m);
  const shell = by.get("etc/xeno-shell")!;
  assert.equal(shell.mode, S_IFREG | 0o755);
  assert.match(shell.data.toString(), new RegExp(`^echo ${GUEST_READY_MARKER}$`, "m"));
  assert.match(shell.data.toString(), /\npoweroff\n$/);
  assert.equal(by.get("bin/busybox")!.mode, S_IFREG | 0o755);
  for (const a of ["sh", "mount", "mkdir", "cat", "echo", "ls", "insmod", "modprobe", "poweroff", "reboot", "halt", "init", "sleep", "uname", "grep"]) {
    assert.equal(by.get(`bin/${a}`)?.data.toString(), "busybox", a);
  }
  const con = by.get("dev/console")!;
  assert.deepEqual([con.mode & S_IFMT, con.rdevMajor, con.rdevMinor], [S_IFCHR, 5, 1]);
  const base = "lib/modules/6.1.0-99-cloud-arm64";
  assert.ok(by.has(`${base}/kernel/x/a.ko`) && by.has(`${base}/kernel/x/c.ko`));
  assert.equal(by.get(`${base}/modules.dep`)!.data.toString(), "kernel/x/c.ko:\nkernel/x/a.ko: kernel/x/c.ko\n");
  // The recipe changes with anything that changes the archive, and only then.
  assert.equal(built.recipe, initramfsRecipe({ ...input, busybox: enc.encode("fake busybox") }));
  assert.notEqual(built.recipe, initramfsRecipe({ ...input, busybox: enc.encode("other busybox") }));
  assert.notEqual(built.recipe, initramfsRecipe({ ...input, load: [] }));
});

test("initramfs: /init is valid POSIX sh", { skip: existsSync("/bin/sh") ? false : "no /bin/sh" }, () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-init-"));
  try {
    const f = join(dir, "init");
    writeFileSync(f, initScript("6.1.0-99-cloud-arm64", [mod("c"), mod("a", ["c"])], ["a"]));
    const r = spawnSync("/bin/sh", ["-n", f], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    writeFileSync(f, SHELL_SCRIPT);
    const s = spawnSync("/bin/sh", ["-n", f], { encoding: "utf8" });
    assert.equal(s.status, 0, s.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
