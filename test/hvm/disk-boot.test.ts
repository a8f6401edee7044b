/**
 * HVM storage with real firmware, a real GRUB and a real kernel (docs/hvm.md): virtio-blk disks on the emulated
 * PCIe bus (src/devices/pci, src/devices/virtio) seen by Debian's AAVMF and by Debian's cloud kernel.
 *  - The firmware: a FAT image made on the host with mtools (a raw disk) and its `qemu-img convert -O qcow2` copy
 *    (a second disk, a read-only cdrom) are both mapped by the UEFI shell (FS0 and FS1 on PciRoot(0x0)/Pci(0x1,0x0)
 *    and Pci(0x2,0x0)), and `type` prints a file from each; with xl's boot="dc" (fw_cfg's bootorder file) the
 *    firmware tries the cdrom before the disk.
 *  - GRUB → kernel (the issue's acceptance line "an ESP built independently with Debian's GRUB tools … boots to
 *    its shell"): an ESP built with grub-mkimage -O arm64-efi (grub-efi-arm64-bin:arm64's modules) and mtools,
 *    holding Debian's arm64 cloud kernel and Xeno's initramfs (which loads virtio_pci and virtio_blk: they are
 *    modules in that kernel), is the first disk of `xeno create --standalone -c` with type=hvm; the firmware
 *    starts \EFI\BOOT\BOOTAA64.EFI, GRUB loads the kernel, and its shell answers on the PL011: the kernel sees
 *    the three disks (the ESP, a scratch disk it writes, a read-only cdrom), its write reaches the host's file,
 *    it finds Xen too (PV on HVM, xen_platform_pci's default: /sys/hypervisor, the balloon's XenStore target),
 *    and `poweroff` ends the domain;
 *  - virtio-rng (on by default, after the disks): Debian's kernel config has it as a module
 *    (CONFIG_HW_RANDOM_VIRTIO=m), its virtio-rng.ko (from the image cache, on the program disk) loads and binds,
 *    /sys/class/misc/hw_random/rng_available names virtio_rng, and /dev/hwrng gives bytes that are not all equal;
 *  - hostile device input from a guest program (test/hvm/programs/virtio_hostile.c, run as root in that guest: it
 *    unbinds a virtio disk from Linux and drives it with buffers in the flash and past RAM, sectors past the end, a
 *    descriptor loop, a head past the queue; the same for virtio-rng; and fw_cfg's DMA through /dev/mem with
 *    buffers in the flash and past RAM, an oversized length, a write, undefined control bits, a key with no item,
 *    descriptors outside RAM): I/O errors, 0-byte answers, fw_cfg's error bit and DEVICE_NEEDS_RESET come back, a
 *    reset makes each device serve again (virtio-rng: Linux's driver bound again reads from it), and the guest
 *    stays up. The NIC's hostile cases run in test/hvm/hvm-net.test.ts.
 * mtools and grub-common are installed on first use (src/images/host-packages.ts); the kernel, the initramfs and
 * GRUB's modules come from the image cache (src/images). Console polling with deadlines, no fixed sleeps.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Board } from "../../src/machine/board.js";
import { bootFirmware, FLASH_BYTES } from "../../src/machine/firmware.js";
import { RawImage } from "../../src/storage/block-image.js";
import { Qcow2Image } from "../../src/storage/qcow2.js";
import { ensureHostTools } from "../../src/images/host-packages.js";
import { buildGrubEsp, ensureGrubArm64Efi, ESP_TOOLS, GRUB_ESP_MARKER } from "../../src/images/uefi-esp.js";
import { defaultCacheDir, ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Domain } from "../machine/cli-domain.js";
import { hostileProgram, programDisk } from "./guest-programs.js";

const AAVMF_CODE = "/usr/share/AAVMF/AAVMF_CODE.fd", AAVMF_VARS = "/usr/share/AAVMF/AAVMF_VARS.fd";
const BOOT_MS = 5 * 60_000, CMD_MS = 60_000;
const dir = mkdtempSync(join(tmpdir(), "xeno-hvm-disk-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const plain = (s: string): string => s.replace(/\x1b\[[0-9;=?]*[a-zA-Z]/g, "");

before(() => {
  for (const f of [AAVMF_CODE, AAVMF_VARS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run scripts/setup.sh (apt package qemu-efi-aarch64)`);
  }
  ensureHostTools(ESP_TOOLS, "test/hvm/disk-boot", (l) => process.stderr.write(`# ${l}\n`));
});

test("AAVMF maps a FAT disk made with mtools (raw) and its qcow2 copy (a cdrom) on the PCIe bus, tries them in boot=\"dc\" order, and reads files from both", { timeout: BOOT_MS + 2 * CMD_MS }, async () => {
  const raw = join(dir, "fat.img"), qcow = join(dir, "fat.qcow2"), hello = join(dir, "hello.txt");
  writeFileSync(hello, "XENO-FAT-FILE-CONTENTS\r\n");
  execFileSync("truncate", ["-s", "48M", raw]);
  execFileSync("mformat", ["-i", raw, "-F", "-v", "XENOFAT", "::"]);
  execFileSync("mcopy", ["-i", raw, hello, "::/HELLO.TXT"]);
  execFileSync("qemu-img", ["convert", "-O", "qcow2", raw, qcow]);

  let text = "";
  const board = new Board({ memMiB: 256, vcpus: 1, romBytes: FLASH_BYTES, consoleOut: (b) => { text += Buffer.from(b).toString("latin1"); } });
  const disks = [RawImage.open(raw, false), Qcow2Image.open(qcow, true)];
  const dev = bootFirmware(board, {
    code: readFileSync(AAVMF_CODE), vars: readFileSync(AAVMF_VARS),
    disks: [{ disk: disks[0]!, readOnly: false }, { disk: disks[1]!, readOnly: true, cdrom: true }],
    // xl's boot="dc": the cdrom (slot 2) first, then the disk (slot 1), through fw_cfg's bootorder file.
    bootOrder: "dc",
  });
  const until = async (re: RegExp, ms: number, what: string): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!re.test(plain(text))) {
      if (Date.now() > deadline) assert.fail(`${what}: not seen within ${ms / 1000} s\n${plain(text).slice(-2000)}`);
      const w = board.runSlice();
      if (w < 0) assert.fail(`${what}: the board stopped (${board.state}: ${board.reason})\n${plain(text).slice(-2000)}`);
      if (w > 0) await new Promise((r) => setTimeout(r, Math.min(w, 10)));
    }
  };
  try {
    const t0 = Date.now();
    await until(/Shell> /, BOOT_MS, "the UEFI shell prompt");
    process.stderr.write(`# Xeno: UEFI shell with two virtio-blk disks after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    // Neither disk has a boot loader: the firmware tries both, in the bootorder file's order (without the file, in
    // slot order: Pci(0x1,0x0) first), then starts its shell.
    const tried = [...plain(text).matchAll(/BdsDxe: failed to load Boot\d+ "[^"]*" from (PciRoot\(0x0\)\/Pci\(0x\d,0x0\))/g)].map((m) => m[1]);
    assert.deepEqual(tried, ["PciRoot(0x0)/Pci(0x2,0x0)", "PciRoot(0x0)/Pci(0x1,0x0)"], plain(text).slice(-3000));
    // The startup mapping table lists both file systems with their PCI device paths.
    assert.match(plain(text), /FS0: Alias\(s\):[^\n]*\n\s*PciRoot\(0x0\)\/Pci\(0x1,0x0\)/);
    assert.match(plain(text), /FS1: Alias\(s\):[^\n]*\n\s*PciRoot\(0x0\)\/Pci\(0x2,0x0\)/);
    board.input(Buffer.from("type fs0:\\HELLO.TXT\r"));
    await until(/type fs0:\\HELLO\.TXT\r?\n(.*\n)*?XENO-FAT-FILE-CONTENTS/, CMD_MS, "the file from the raw disk");
    board.input(Buffer.from("type fs1:\\HELLO.TXT\r"));
    await until(/type fs1:\\HELLO\.TXT\r?\n(.*\n)*?XENO-FAT-FILE-CONTENTS/, CMD_MS, "the file from the qcow2 disk");
  } finally {
    for (const d of disks) d.close();
  }
  assert.ok(dev.disks[0]!.stats.readBytes > 0 && dev.disks[1]!.stats.readBytes > 0, "both devices served reads");
  assert.equal(dev.disks[0]!.stats.ioErrors + dev.disks[1]!.stats.ioErrors, 0, "no I/O errors");
  assert.equal(dev.disks[0]!.vstats.needsReset + dev.disks[1]!.vstats.needsReset, 0);
});

test("an ESP built with Debian's GRUB tools (grub-mkimage -O arm64-efi, mtools) holding Debian's kernel and an initramfs boots to its shell under xeno create; the kernel sees and writes the virtio disks", { timeout: 12 * 60_000 }, async () => {
  const cache = defaultCacheDir();
  const say = (m: string): void => { process.stderr.write(`# ${m}\n`); };
  const images = await ensureImages({ onProgress: say });
  const grub = await ensureGrubArm64Efi(cache, say);
  const esp = join(dir, "esp.img"), scratch = join(dir, "scratch.img"), cd = join(dir, "cd.img");
  // The hostile driver (test/hvm/programs/virtio_hostile.c) and Debian's virtio-rng.ko (not in Xeno's initramfs),
  // on a disk of their own (the 4th: slot 4); `fetch` copies one to /tmp in the guest.
  const rngConfig = readFileSync(join(images.modulesDir, "../../../boot", `config-${images.kernelVersion}`), "utf8");
  assert.match(rngConfig, /^CONFIG_HW_RANDOM_VIRTIO=m$/m, "Debian's kernel has virtio-rng as a module");
  assert.match(rngConfig, /^CONFIG_HW_RANDOM=y$/m, "and the hw_random core built in");
  const { disk: progDisk, fetch } = programDisk(dir, {
    h: hostileProgram(dir),
    "virtio-rng.ko": readFileSync(join(images.modulesDir, "kernel/drivers/char/hw_random/virtio-rng.ko")),
  }, "/dev/vdd");
  await buildGrubEsp({ out: esp, grubModules: grub, kernel: images.kernel, initrd: images.initrd, cmdline: "console=ttyAMA0" });
  writeFileSync(scratch, new Uint8Array(4 << 20));
  writeFileSync(cd, new Uint8Array(1 << 20).fill(0x5a));
  const cfg = join(dir, "hvm-disk.cfg"), uuid = "5a5e0d13-0b0e-4c1a-9d2f-1e2d3c4b5a69";
  writeFileSync(cfg, [
    'name = "hvm-disk"', 'type = "hvm"', "memory = 512", "vcpus = 1", `uuid = "${uuid}"`,
    `uefi_vars = "${join(dir, "VARS.fd")}"`,
    `disk = [ '${esp},raw,xvda,rw', '${scratch},raw,xvdb,rw', '${cd},raw,hdc,devtype=cdrom', '${progDisk},raw,xvdd,rw' ]`,
    'on_poweroff = "destroy"', 'on_reboot = "destroy"', "",
  ].join("\n"));
  const t0 = Date.now();
  const d = new Domain([cfg]);
  try {
    await d.waitFor(new RegExp(GRUB_ESP_MARKER), 0, BOOT_MS, "GRUB");
    const tGrub = (Date.now() - t0) / 1000;
    const ready = await d.waitFor(new RegExp(GUEST_READY_MARKER), 0, BOOT_MS, "the kernel's shell");
    process.stderr.write(`# Xeno: GRUB after ${tGrub.toFixed(1)} s, the guest's shell after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    assert.match(plain(d.out), /BdsDxe: starting Boot\d+ "UEFI Misc Device" from PciRoot\(0x0\)\/Pci\(0x1,0x0\)|BdsDxe: starting Boot\d+ .*PciRoot\(0x0\)\/Pci\(0x1,0x0\)/);
    void ready;
    // PV on HVM (xen_platform_pci defaults to 1, as in xl): the kernel found Xen's /hypervisor node in the device
    // tree the firmware handed it and makes hypercalls (the UUID is XENVER_guest_handle: the config's uuid);
    // hvm-net.test.ts boots with 0 and finds none.
    await d.run("cat /sys/hypervisor/type /sys/hypervisor/uuid; dmesg | grep -o 'Xen [0-9.]* support found'",
      new RegExp(String.raw`xen\r?\n${uuid}\r?\nXen 4\.\d+ support found`));
    // Its xenbus talks to XenStore: an XS_READ (type 2, req_id 1, tx_id 0, len 5) of "name", relative to
    // /local/domain/<domid>, written to the kernel's /dev/xen/xenbus, answers the domain's name.
    await d.run(String.raw`exec 3<>/dev/xen/xenbus; printf '\002\0\0\0\001\0\0\0\0\0\0\0\005\0\0\0name\0' >&3; ` +
      "echo XS[$(dd bs=256 count=1 <&3 2>/dev/null | tr -dc 'a-z-')]; exec 3<&-", /XS\[hvm-disk\]/);
    // Its PV console front-end (hvc_xen: the console ring and its event channel) reaches Xeno's console back-end,
    // whose output joins the serial console's.
    await d.run("echo PV-CONSOLE-$((6*7)) > /dev/hvc0", /PV-CONSOLE-42/);
    // Its balloon gives 16 MiB back to Xen (XENMEM_decrease_reservation, on the P2M of a board whose flash comes
    // first in the domain memory) and takes them again (XENMEM_populate_physmap); the shell waits for the driver.
    const bal = "/sys/devices/system/xen_memory/xen_memory0";
    await d.run(`c=$(cat ${bal}/info/current_kb); echo $((c - 16384)) > ${bal}/target_kb; i=0; ` +
      `while [ $(cat ${bal}/info/current_kb) -gt $((c - 16384)) ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ` +
      `echo BALLOON-DOWN $((c - $(cat ${bal}/info/current_kb))); echo $c > ${bal}/target_kb; i=0; ` +
      `while [ $(cat ${bal}/info/current_kb) -lt $c ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ` +
      "echo BALLOON-UP $(($(cat " + bal + "/info/current_kb) - c)); grep MemTotal /proc/meminfo", /BALLOON-DOWN 16384\r?\nBALLOON-UP 0\r?\n/, 120_000);
    // The three disks, in slot order: the ESP (its size in sectors), the scratch disk, the read-only cdrom.
    const espSectors = readFileSync(esp).length / 512;
    await d.run("cat /sys/block/vda/size /sys/block/vdb/size /sys/block/vdc/size", new RegExp(`${espSectors}\\r?\\n8192\\r?\\n2048`));
    await d.run("cat /sys/block/vda/serial; echo; cat /sys/block/vdc/ro", /xvda\r?\n1\r?\n/); // serial has no newline
    await d.run("echo XENO-GUEST-WROTE-THIS | dd of=/dev/vdb bs=512 seek=3 conv=sync,fsync 2>/dev/null && echo DD-$((40+2))", /DD-42/);
    await d.run("dd if=/dev/vdc bs=512 count=1 2>/dev/null | hexdump -C | head -1", /00000000  5a 5a 5a 5a/);
    await d.run("dd if=/dev/zero of=/dev/vdc bs=512 count=1 conv=fsync 2>&1; echo CD-WRITE-$?", /CD-WRITE-1/);
    // The firmware's EFI_RNG_PROTOCOL (AAVMF's VirtioRngDxe on virtio-rng) gave the kernel's EFI stub a seed: the
    // kernel finds its random-seed table (hvm-net.test.ts, with virtio_rng = 0, finds none).
    assert.match(plain(d.out), /efi: [^\n]*\bRNG=0x[0-9a-f]+/);
    // virtio-rng (xl has no key; Xeno's virtio_rng defaults to 1): the function after the disks (slot 5), PCI
    // ID 1af4:1044; Debian's module binds it and the kernel's hw_random core reads the host's random bytes.
    await d.run(`${fetch("virtio-rng.ko", "/tmp/virtio-rng.ko")} && insmod /tmp/virtio-rng.ko && cat /sys/bus/pci/devices/0000:00:05.0/device ` +
      "/sys/class/misc/hw_random/rng_available /sys/class/misc/hw_random/rng_current; basename $(readlink /sys/bus/pci/devices/0000:00:05.0/virtio*/driver)",
      /0x1044\r?\n(?:.* )?virtio_rng\.\d+ ?\r?\nvirtio_rng\.\d+\r?\nvirtio_rng\r?\n/);
    // 256 bytes from /dev/hwrng: random bytes hold well over 100 distinct values (all equal would be 1).
    const distinct = "dd if=/dev/hwrng bs=256 count=1 2>/dev/null | hexdump -v -e '1/1 \"%02x\\n\"' | sort -u | wc -l";
    const hwrng = Number((await d.run(`echo HWRNG-DISTINCT $(${distinct})`, /HWRNG-DISTINCT (\d+)\r?\n/))[1]);
    assert.ok(hwrng > 64, `256 bytes from /dev/hwrng hold ${hwrng} distinct values`);
    // The acceptance line: hostile device input from a guest program (a descriptor loop, out-of-range
    // addresses, an oversized length, a head past the queue) gets errors from the device; the guest and the
    // domain stay up, and the device serves again after a reset.
    await d.run(`${fetch("h", "/tmp/h")} && chmod +x /tmp/h && /tmp/h blk 0000:00:04.0`,
      /HOSTILE oob=1 huge=1 past=1 loop=0x40 head=0x40 ok=0 byte0=0x7f used=1 flash=same\r?\n/);
    // virtio-rng: bad buffers come back with 0 bytes, a loop and a head past the queue need a reset; after one the
    // device fills a buffer again, and once Linux's driver is bound again /dev/hwrng reads from it.
    await d.run("/tmp/h rng 0000:00:05.0", /RNG oob=0 huge=0 ro=0 loop=0x40 head=0x40 ok=256 distinct=(?:[7-9]\d|[1-2]\d\d) flash=same\r?\n/);
    await d.run(`echo 0000:00:05.0 > /sys/bus/pci/drivers/virtio-pci/bind; echo REBOUND-HWRNG $(${distinct})`, /REBOUND-HWRNG (?:[7-9]\d|[1-2]\d\d)\r?\n/);
    // fw_cfg, at the device tree's address through /dev/mem: DMA into the flash, past RAM, 0xfffff000 bytes, a
    // write, only undefined control bits, a key with no item, descriptors outside RAM; then it serves again.
    await d.run("/tmp/h fwcfg",
      /FWCFG sig=QEMU dmasig=QEMU-CFG datanokey=0 ok=0 buf=QEMU flash=1 far=1 huge=1 write=1 bits=0 nokey=0 zeros=1 after=0 again=QEMU flashbytes=same\r?\n/);
    // The guest still answers and reads its disk, and Linux disabled no interrupt line as stuck ("irq N: nobody
    // cared": a device holding INTx up would do that to vda's line, which the virtio-rng function shares). The
    // program masks INTx of the devices it drives; without the mask this passed too (one run), the lines raised only
    // briefly.
    await d.run("cat /sys/block/vda/size; echo NOBODY-CARED $(dmesg | grep -c 'nobody cared'); echo STILL-UP-$((1+1))",
      new RegExp(`${espSectors}\r?\nNOBODY-CARED 0\r?\nSTILL-UP-2`));
    d.child.stdin!.write("poweroff\n");
    const end = await d.ended(120_000);
    assert.equal(end.code, 0, d.tail());
  } finally { d.kill(); }
  const fd = openSync(scratch, "r"), b = Buffer.alloc(21);
  try { readSync(fd, b, 0, 21, 3 * 512); } finally { closeSync(fd); }
  assert.equal(b.toString("latin1"), "XENO-GUEST-WROTE-THIS", "the guest's write is in the scratch disk's file");
  assert.ok(readFileSync(cd).every((x) => x === 0x5a), "the cdrom's file is unchanged");
});
