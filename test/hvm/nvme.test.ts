/**
 * The emulated NVMe controller (src/devices/nvme) with real firmware, a real GRUB and a real kernel, in one boot:
 *  - AAVMF's NvmExpressDxe finds the first disk, vdev=nvme0, an NVMe controller holding an ESP built with Debian's
 *    GRUB tools (src/images/uefi-esp.ts), and boots GRUB from it; GRUB boots Debian's cloud kernel from it;
 *  - the kernel's nvme driver (built in: CONFIG_BLK_DEV_NVME=y, over INTx: no MSI on this bus) finds four
 *    controllers, each serial its vdev; an `access=ro` one (nvme3) is read-only to it (a write fails, the file
 *    is unchanged); a qcow2 disk (nvme1) takes 1 MiB of random data that reads back
 *    identical after the page cache is dropped, and on the host (`qemu-img check` clean, the same bytes through
 *    `qemu-img convert`); a range discarded with blkdiscard (Dataset Management) reads as zeros;
 *  - a hostile guest program (test/hvm/programs/nvme_hostile.c) unbinds nvme2 from the driver and sends PRPs into
 *    the flash, MMIO and a list with a flash entry, a misaligned PRP, LBAs past the end, a transfer past MDTS, a
 *    namespace and queue ids never created, a 65536-entry queue, a queue in the flash, an unknown opcode, and
 *    doorbells for missing queues or past a queue: each gets its status (or is ignored), the controller works
 *    after a controller reset, Linux's driver takes it back (sysfs bind) and reads what the program wrote, and
 *    the guest stays up until `poweroff`.
 * mtools and grub-common are installed on first use; kernel, initramfs and GRUB modules come from the image cache.
 * Console polling with deadlines, no fixed sleeps.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureHostTools } from "../../src/images/host-packages.js";
import { buildGrubEsp, ensureGrubArm64Efi, ESP_TOOLS, GRUB_ESP_MARKER } from "../../src/images/uefi-esp.js";
import { defaultCacheDir, ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Domain, ROOT } from "../machine/cli-domain.js";

const AAVMF_CODE = "/usr/share/AAVMF/AAVMF_CODE.fd", AAVMF_VARS = "/usr/share/AAVMF/AAVMF_VARS.fd";
const BOOT_MS = 6 * 60_000;
const dir = mkdtempSync(join(tmpdir(), "xeno-hvm-nvme-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const plain = (s: string): string => s.replace(/\x1b\[[0-9;=?]*[a-zA-Z]/g, "");

before(() => {
  for (const f of [AAVMF_CODE, AAVMF_VARS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run scripts/setup.sh (apt package qemu-efi-aarch64)`);
  }
  ensureHostTools(ESP_TOOLS, "test/hvm/nvme", (l) => process.stderr.write(`# ${l}\n`));
});

test("AAVMF boots GRUB from an NVMe disk; Debian's kernel drives three NVMe controllers (raw and qcow2), and a hostile guest program gets NVMe errors, never host memory", { timeout: 15 * 60_000 }, async () => {
  const cache = defaultCacheDir();
  const say = (m: string): void => { process.stderr.write(`# ${m}\n`); };
  const images = await ensureImages({ onProgress: say });
  const grub = await ensureGrubArm64Efi(cache, say);
  const esp = join(dir, "esp.img"), scratch = join(dir, "scratch.qcow2"), hostile = join(dir, "hostile.img"), prog = join(dir, "nvme_hostile");
  const ro = join(dir, "ro.img");
  writeFileSync(ro, new Uint8Array(1 << 20).fill(0x3c));
  execFileSync("aarch64-linux-gnu-gcc", ["-static", "-O2", "-o", prog, join(ROOT, "test/hvm/programs/nvme_hostile.c")]);
  const elf = readFileSync(prog), progDisk = join(dir, "prog.img");
  writeFileSync(progDisk, Buffer.concat([elf, Buffer.alloc(4096 - (elf.length % 4096))]));
  await buildGrubEsp({ out: esp, grubModules: grub, kernel: images.kernel, initrd: images.initrd, cmdline: "console=ttyAMA0" });
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", scratch, "8M"]);
  writeFileSync(hostile, new Uint8Array(1 << 20).fill(0xa5));
  const cfg = join(dir, "hvm-nvme.cfg");
  writeFileSync(cfg, [
    'name = "hvm-nvme"', 'type = "hvm"', "memory = 512", "vcpus = 1", "xen_platform_pci = 0",
    `uefi_vars = "${join(dir, "VARS.fd")}"`,
    // Slots 1..4: NVMe controllers (the 4th read-only); slot 5: a virtio-blk disk carrying the hostile program.
    `disk = [ '${esp},raw,nvme0,rw', '${scratch},qcow2,nvme1,rw', '${hostile},raw,nvme2,rw', '${ro},raw,nvme3,ro', '${progDisk},raw,xvde,rw' ]`,
    'on_poweroff = "destroy"', 'on_reboot = "destroy"', "",
  ].join("\n"));
  const t0 = Date.now();
  const d = new Domain([cfg]);
  let md5 = "";
  try {
    await d.waitFor(new RegExp(GRUB_ESP_MARKER), 0, BOOT_MS, "GRUB from the NVMe disk");
    const tGrub = (Date.now() - t0) / 1000;
    await d.waitFor(new RegExp(GUEST_READY_MARKER), 0, BOOT_MS, "the kernel's shell");
    say(`Xeno: GRUB from NVMe after ${tGrub.toFixed(1)} s, the guest's shell after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // The firmware's boot option for the first slot is the NVMe namespace (NvmExpressDxe's device path).
    const bds = /BdsDxe: starting Boot\d+ "[^"]*" from PciRoot\(0x0\)\/Pci\(0x1,0x0\)\/NVMe\(0x1,[^)]*\)/.exec(plain(d.out));
    assert.ok(bds !== null, d.tail());
    say(bds[0]);
    // Linux's controllers by serial (the vdev) and PCI address.
    const m = await d.run("for c in /sys/class/nvme/nvme*; do echo CTRL $(basename $c)=$(cat $c/serial)@$(basename $(readlink $c/device)); done; echo CTRLS-DONE-$((1+1))",
      /(CTRL nvme\d+=nvme\d\s*@[0-9a-f:.]+\s+){4}CTRLS-DONE-2/);
    const ctrl = new Map([...m[0].matchAll(/CTRL (nvme\d+)=(nvme\d)\s*@([0-9a-f:.]+)/g)].map((x) => [x[2]!, { name: x[1]!, pci: x[3]! }]));
    assert.deepEqual([...ctrl.keys()].sort(), ["nvme0", "nvme1", "nvme2", "nvme3"]);
    assert.equal(ctrl.get("nvme0")!.pci, "0000:00:01.0"); assert.equal(ctrl.get("nvme2")!.pci, "0000:00:03.0");
    const ns = (v: string): string => `/dev/${ctrl.get(v)!.name}n1`, sys = (v: string): string => `/sys/block/${ctrl.get(v)!.name}n1`;
    const espSectors = readFileSync(esp).length / 512;
    await d.run(`cat ${sys("nvme0")}/size ${sys("nvme1")}/size ${sys("nvme2")}/size; echo SIZES-$((2*2))`,
      new RegExp(`${espSectors}\\r?\\n16384\\r?\\n2048\\r?\\nSIZES-4`));
    await d.run("dmesg | grep -c 'nvme nvme[0-9]: 1/0/0 default/read/poll queues'; echo Q-$((3*3))", /4\r?\nQ-9/);
    // access=ro: the namespace is write-protected (NSATTR), so Linux makes the disk read-only and a write fails.
    await d.run(`cat ${sys("nvme3")}/ro; dd if=/dev/zero of=${ns("nvme3")} bs=512 count=1 conv=fsync 2>/dev/null; echo RO-WRITE-$?`, /\n1\r?\n([^\n]*\n)*?RO-WRITE-1/);
    // 1 MiB of random data through the qcow2 disk, read back after dropping the page cache.
    const dev = ns("nvme1");
    const out = await d.run(`dd if=/dev/urandom of=/tmp/r bs=4096 count=256 2>/dev/null; dd if=/tmp/r of=${dev} bs=65536 seek=3 conv=fsync 2>/dev/null; ` +
      `echo 3 > /proc/sys/vm/drop_caches; dd if=${dev} bs=65536 skip=3 count=16 2>/dev/null | cmp - /tmp/r && echo RW-SAME-$((40+2)); md5sum /tmp/r`,
      /RW-SAME-42\r?\n([0-9a-f]{32}) /);
    md5 = out[1]!;
    // Discard (Dataset Management, deallocate): the first 64 KiB, written first, read as zeros.
    await d.run(`cat ${sys("nvme1")}/queue/discard_max_bytes; dd if=/tmp/r of=${dev} bs=65536 count=1 conv=fsync 2>/dev/null; ` +
      `blkdiscard -o 0 -l 65536 ${dev} && echo 3 > /proc/sys/vm/drop_caches; echo NONZERO-$(dd if=${dev} bs=65536 count=1 2>/dev/null | tr -d '\\000' | wc -c)-END`,
      /\n[1-9]\d*\r?\n([^\n]*\n)*?NONZERO-0-END/); // discard offered (its limit), then zeros (a kernel line may come between)
    // The hostile program against nvme2 (slot 3).
    const pci = ctrl.get("nvme2")!.pci;
    await d.run(`dd if=/dev/vda bs=4096 2>/dev/null | head -c ${elf.length} > /tmp/h; chmod +x /tmp/h; /tmp/h ${pci}`,
      new RegExp("NVME-HOSTILE oob=0x4 mmio=0x4 list=0x4 align=0x13 past=0x80 end=0x80 mdts=0x2 ns=0xb cqinv=0x100 qid=0x101 " +
        "qsize=0x102 qram=0x2 opc=0x1 db=ok cfs=0 ok=0x0 byte0=0xa5 rw=1"), 180_000);
    // Linux's driver takes the controller back (it resets it) and reads LBA 1 as the program wrote it.
    const back = await d.run(`echo ${pci} > /sys/bus/pci/drivers/nvme/bind; i=0; while ! ls /sys/bus/pci/devices/${pci}/nvme/*/nvme*n1 >/dev/null 2>&1 && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ` +
      `b=$(basename $(ls -d /sys/bus/pci/devices/${pci}/nvme/*/nvme*n1)); echo BOUND-$b; dd if=/dev/$b bs=512 skip=1 count=1 2>/dev/null | hexdump -C | head -1`,
      /BOUND-(nvme\d+n1)\r?\n00000000  03 0a 11 18 1f 26 2d 34/, 120_000);
    say(`the driver took nvme2 back as ${back[1]}`);
    await d.run("cat /proc/uptime >/dev/null; echo STILL-UP-$((1+1))", /STILL-UP-2/);
    d.child.stdin!.write("poweroff\n");
    const end = await d.ended(120_000);
    assert.equal(end.code, 0, d.tail());
  } finally {
    // XENO_TEST_CONSOLE=FILE keeps the whole console (a failure shows only its last 1500 characters).
    if (process.env.XENO_TEST_CONSOLE) writeFileSync(process.env.XENO_TEST_CONSOLE, d.out);
    d.kill();
  }
  // On the host: the qcow2 image is consistent and holds the guest's bytes at 3 × 64 KiB (its first 64 KiB discarded).
  execFileSync("qemu-img", ["check", "-q", scratch]);
  const raw = join(dir, "scratch.raw");
  execFileSync("qemu-img", ["convert", "-O", "raw", scratch, raw]);
  const bytes = readFileSync(raw);
  assert.equal(createHash("md5").update(bytes.subarray(3 * 65536, 3 * 65536 + (1 << 20))).digest("hex"), md5, "the guest's 1 MiB reached the qcow2 file");
  assert.ok(bytes.subarray(0, 65536).every((b) => b === 0), "the discarded range is zeros");
  const h = readFileSync(hostile);
  assert.ok(h.subarray(0, 512).every((b) => b === 0xa5), "LBA 0 untouched");
  assert.deepEqual([...h.subarray(512, 520)], [3, 10, 17, 24, 31, 38, 45, 52], "LBA 1 as the hostile program wrote it");
  assert.ok(readFileSync(ro).every((b) => b === 0x3c), "the read-only disk's file is unchanged");
});
