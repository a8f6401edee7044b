/**
 * The demo guest (Debian's stock arm64 kernel as a Xen DomU, `xeno create --standalone -c examples/demo.cfg`)
 * with a qcow2 disk: `disk = ['format=qcow2, vdev=xvda, access=rw, target=ov.qcow2']`, the image an overlay made
 * by `qemu-img create -b base.raw -F raw`. Through the guest's own blkfront and blkback's I/O thread
 * (src/storage/qcow2.ts mapping every request):
 *  - the guest reads the backing file's bytes through the overlay (md5 of its first MiB);
 *  - it writes files with busybox `tar cf /dev/xvda …` and a `dd … seek=` at 20 MiB, discards 8-12 MiB with
 *    `blkdiscard` (and reads zeros there, where the backing file has data), then powers off;
 *  - on the host, `qemu-img check` finds no errors or leaks; `qemu-img convert -O raw` gives a disk where
 *    GNU tar extracts the guest's files byte for byte, the dd range holds the guest's bytes, the discarded range
 *    is zeros, an untouched range still holds the backing file's, and the backing file is unchanged.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { linkStableImages } from "../../src/images/stable-links.js";
import { Domain, ROOT } from "../machine/cli-domain.js";

const BOOT_MS = 6 * 60_000;
const DISK = 32 << 20;
/** The guest's data file: `yes XENO-QCOW2-<n> | head -c DATA_LEN` (busybox yes repeats its argument). */
const DATA_LEN = 300_000;
/** dd writes the data file at 4 KiB block DD_BLOCK (20 MiB): a region tar does not reach. */
const DD_BLOCK = 5120;
const md5 = (b: Uint8Array): string => createHash("md5").update(b).digest("hex");

test("qcow2 disk for the demo guest: reads through the backing file, tar and dd writes, blkdiscard, qemu-img check clean, files read back on the host",
  { timeout: BOOT_MS + 300_000 }, async () => {
    const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
    await linkStableImages(images.cacheDir);
    const dir = mkdtempSync(join(tmpdir(), "xeno-qcow2-e2e-"));
    const base = join(dir, "base.raw"), ov = join(dir, "ov.qcow2");
    const baseBytes = Buffer.alloc(DISK);
    let x = 0x9e3779b9;
    for (let i = 0; i < DISK; i += 4) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; baseBytes.writeUInt32LE(x, i); }
    writeFileSync(base, baseBytes);
    const baseSum = md5(baseBytes);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", ov]);
    const d = new Domain([join(ROOT, "examples", "demo.cfg"), `disk=['format=qcow2, vdev=xvda, access=rw, target=${ov}']`]);
    try {
      await d.waitFor(new RegExp(`^${GUEST_READY_MARKER}\\r?$`, "m"), 0, BOOT_MS, "boot marker");
      const size = await d.run("for i in $(seq 1 60); do [ -e /sys/block/xvda ] && break; sleep 1; done; echo SZ$(cat /sys/block/xvda/size)SZ", /^SZ(\d*)SZ\r?$/m);
      assert.equal(size[1], String(DISK / 512), d.tail());
      const head = await d.run("dd if=/dev/xvda bs=65536 count=16 2>/dev/null | md5sum | sed 's/ .*//;s/^/MD/'", /^MD([0-9a-f]{32})\r?$/m);
      assert.equal(head[1], md5(baseBytes.subarray(0, 1 << 20)), "the first MiB read through the overlay is the backing file's");
      const wr = await d.run(
        `cd /tmp && echo hello-from-the-guest > hello.txt && yes XENO-QCOW2-$((6*7)) | head -c ${DATA_LEN} > data.bin && ` +
        `tar cf /dev/xvda hello.txt data.bin && dd if=data.bin of=/dev/xvda bs=4096 seek=${DD_BLOCK} conv=fsync 2>/dev/null && sync && ` +
        `md5sum data.bin | sed 's/ .*//;s/^/W/;s/$/W/'`, /^W([0-9a-f]{32})W\r?$/m);
      const guestSum = wr[1]!;
      // Discard 8-12 MiB (blkfront sends BLKIF_OP_DISCARD; qcow2 turns whole clusters into zero clusters).
      const disc = await d.run("busybox blkdiscard -o 8388608 -l 4194304 /dev/xvda; echo DR$?DR; dd if=/dev/xvda bs=65536 skip=128 count=64 2>/dev/null | md5sum | sed 's/ .*//;s/^/DZ/'",
        /^DZ([0-9a-f]{32})\r?$/m);
      assert.match(d.out, /^DR0DR\r?$/m, d.tail());
      assert.equal(disc[1], md5(Buffer.alloc(4 << 20)), "the discarded range reads as zeros in the guest");
      d.child.stdin!.write("poweroff -f\n");
      const end = await d.ended(120_000);
      assert.equal(end.code, 0, d.tail());

      const c = spawnSync("qemu-img", ["check", ov], { encoding: "utf8" });
      assert.equal(c.status, 0, `qemu-img check: ${c.stdout}${c.stderr}`);
      assert.match(c.stdout, /No errors were found on the image/);
      process.stderr.write(`# qemu-img check: ${c.stdout.trim().split("\n").join("; ")}\n`);
      const raw = join(dir, "out.raw");
      execFileSync("qemu-img", ["convert", "-O", "raw", ov, raw]);
      const out = join(dir, "x");
      mkdirSync(out);
      execFileSync("tar", ["xf", raw, "-C", out]);
      assert.equal(readFileSync(join(out, "hello.txt"), "utf8"), "hello-from-the-guest\n");
      const data = readFileSync(join(out, "data.bin"));
      const want = Buffer.from("XENO-QCOW2-42\n".repeat(Math.ceil(DATA_LEN / 14))).subarray(0, DATA_LEN);
      assert.ok(data.equals(want), "data.bin as the guest wrote it");
      assert.equal(md5(data), guestSum);
      const disk = readFileSync(raw);
      assert.equal(disk.length, DISK);
      assert.ok(disk.subarray(DD_BLOCK * 4096, DD_BLOCK * 4096 + DATA_LEN).equals(want), "the dd range");
      assert.ok(disk.subarray(8 << 20, 12 << 20).every((b) => b === 0), "the discarded range");
      assert.ok(disk.subarray(DISK - (1 << 20)).equals(baseBytes.subarray(DISK - (1 << 20))), "an untouched range is the backing file's");
      assert.equal(md5(readFileSync(base)), baseSum, "the backing file is unchanged");
      assert.doesNotMatch(d.out, /blkfront.*(fail|error)|I\/O error|Kernel panic|Oops/i);
    } finally {
      d.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
