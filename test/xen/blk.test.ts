/**
 * Boots Debian's stock arm64 kernel as a Xen DomU with two virtual disks served by blkback, and checks, in one
 * boot, with the guest's own xen-blkfront (loaded by the initramfs) and busybox:
 *  - xvda (read-write, 8 MiB sparse image) and xvdb (read-only, 1 MiB of known bytes) appear with the right
 *    sizes; xvdb is read-only in the guest (/sys/block/xvdb/ro);
 *  - a pattern written with `dd … of=/dev/xvda conv=fsync` reads back in the guest after the page cache is
 *    dropped (so the read goes through the ring), and is in the host image at the right offset once the
 *    machine is torn down and the back-ends closed;
 *  - a dd write to xvdb fails, and the image is byte-identical; md5sum of /dev/xvdb in the guest equals the
 *    host's md5 of the image;
 *  - a slow third disk (xvdc, every operation delayed SLOW_MS by $XENO_BLK_TEST_DELAY_MS) does not stall the
 *    domain's thread: while the guest reads it, no runSlice() of the machine lasts anywhere near SLOW_MS — with
 *    blkback's I/O thread (the default); with XENO_BLK_SYNC=1 the same read stalls a slice for the whole delay,
 *    and the test checks that instead (the A/B).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { XenStore } from "../../src/xenstore/index.js";
import type { BlkBack } from "../../src/backends/blk/index.js";
import { framedCommand, framedOutput, machineRunner } from "./run-machine.js";

const BOOT_MS = 9 * 60_000;
const DOMID = 9;
const RW_BYTES = 8 << 20, RO_BYTES = 1 << 20;
/** xvdc's delay per operation (the slow disk). */
const SLOW_MS = 700;
/** The guest writes `yes XENO-BLK-PATTERN | head -c 65536` at 4 KiB block 37 of xvda. */
const PATTERN_LEN = 65536, PATTERN_BLOCK = 37;

const md5 = (b: Uint8Array): string => createHash("md5").update(b).digest("hex");

function roContent(): Buffer {
  const b = Buffer.alloc(RO_BYTES);
  let x = 0x12345678;
  for (let i = 0; i < b.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

test("blkback: two disks for the stock kernel's blkfront; dd write/read-back on xvda, read-only xvdb",
  { timeout: BOOT_MS + 120_000 }, async () => {
    const t0 = Date.now();
    const images = await ensureImages({ onProgress: (msg) => process.stderr.write(`# images: ${msg}\n`) });
    const dir = mkdtempSync(join(tmpdir(), "xeno-blk-e2e-"));
    const rwPath = join(dir, "xvda.img"), roPath = join(dir, "xvdb.img"), slowPath = join(dir, "xvdc-slow.img");
    writeFileSync(slowPath, roContent());
    writeFileSync(rwPath, "");
    truncateSync(rwPath, RW_BYTES);
    const ro = roContent();
    writeFileSync(roPath, ro);
    const roSum = md5(ro);
    const pattern = Buffer.from("XENO-BLK-PATTERN\n".repeat(Math.ceil(PATTERN_LEN / 17))).subarray(0, PATTERN_LEN);

    const store = new XenStore();
    let out = "";
    const m = new Machine({
      memMiB: 256, vcpus: 1, xen: true, xenstore: store, domid: DOMID, name: "xeno-blk-test",
      kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd),
      cmdline: "console=hvc0",
      consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
    });
    const backs: BlkBack[] = [];
    try {
      // Hot-plugged through the Machine, so its poll() answers what the disks' I/O threads complete.
      const attach = (path: string, devid: number, vdev: string, readOnly: boolean): BlkBack => {
        m.attachDisk({ path, devid, vdev, readOnly });
        const b = m.xenPv!.blk.find((x) => x.config.devid === devid)!;
        backs.push(b);
        return b;
      };
      const xvda = attach(rwPath, 51712, "xvda", false);
      const xvdb = attach(roPath, 51728, "xvdb", true);
      const delayEnv = process.env.XENO_BLK_TEST_DELAY_MS;
      process.env.XENO_BLK_TEST_DELAY_MS = `${SLOW_MS}:xvdc-slow`;
      let xvdc: BlkBack;
      try { xvdc = attach(slowPath, 51744, "xvdc", true); } finally {
        if (delayEnv === undefined) delete process.env.XENO_BLK_TEST_DELAY_MS; else process.env.XENO_BLK_TEST_DELAY_MS = delayEnv;
      }
      const runUntil = machineRunner(m, () => out, Date.now() + BOOT_MS);
      const times: string[] = [];
      const mark = (what: string, since: number): void => { times.push(`${what} ${((Date.now() - since) / 1000).toFixed(1)} s`); };

      let t = Date.now();
      await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
      mark("boot to ready marker", t);

      // One shell command; returns its output.
      let n = 0;
      const sh = async (cmd: string): Promise<string> => {
        const k = ++n + 1000, from = out.length;
        m.input(Buffer.from(framedCommand(cmd, k)));
        await runUntil(() => framedOutput(out.slice(from), k) !== undefined, `output of: ${cmd}`);
        return framedOutput(out.slice(from), k)!;
      };

      t = Date.now();
      await sh("for i in $(seq 1 120); do [ -e /sys/block/xvda ] && [ -e /sys/block/xvdb ] && [ -e /sys/block/xvdc ] && break; sleep 1; done");
      mark("disks present", t);
      assert.ok(xvda.connected && xvdb.connected && xvdc.connected, "the disks connected");
      const sizes = (await sh("cat /sys/block/xvda/size /sys/block/xvdb/size /sys/block/xvda/ro /sys/block/xvdb/ro")).trim().split("\n");
      assert.deepEqual(sizes, [String(RW_BYTES / 512), String(RO_BYTES / 512), "0", "1"]);

      t = Date.now();
      const wr = await sh(`yes XENO-BLK-PATTERN | head -c ${PATTERN_LEN} > /tmp/p; dd if=/tmp/p of=/dev/xvda bs=4096 seek=${PATTERN_BLOCK} conv=fsync; echo dd-rc=$?`);
      assert.match(wr, /^dd-rc=0$/m, wr);
      mark("dd write 64 KiB + fsync", t);
      const wrote = xvda.stats.bytesWritten;
      assert.ok(wrote >= PATTERN_LEN, `xvda wrote ${wrote} bytes`);
      assert.ok(xvda.stats.flushes >= 1, "conv=fsync sent a flush");

      t = Date.now();
      const readBefore = xvda.stats.bytesRead;
      const rd = await sh(`sync; echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/xvda bs=4096 skip=${PATTERN_BLOCK} count=${PATTERN_LEN / 4096} 2>/dev/null | md5sum; md5sum /tmp/p`);
      mark("read-back", t);
      assert.ok(xvda.stats.bytesRead - readBefore >= PATTERN_LEN, "the read-back went through the ring (page cache dropped)");
      // (Kernel messages may interleave on the console: "sh (94): drop_caches: 3".)
      const sums = rd.split("\n").filter((l) => /^[0-9a-f]{32}\s/.test(l)).map((l) => l.slice(0, 32));
      assert.equal(sums.length, 2, rd);
      assert.equal(sums[0], md5(pattern), `read back from xvda: ${rd}`);
      assert.equal(sums[1], md5(pattern));

      const roWr = await sh("dd if=/tmp/p of=/dev/xvdb bs=4096 count=1 conv=fsync; echo ro-rc=$?");
      assert.match(roWr, /^ro-rc=[1-9]\d*$/m, roWr);

      t = Date.now();
      const roRead = await sh("md5sum /dev/xvdb");
      mark("md5sum of xvdb (1 MiB)", t);
      assert.match(roRead, new RegExp(`^${roSum}  /dev/xvdb$`, "m"), roRead);

      // The slow disk: one read past what the partition scan cached, timed slice by slice on the host.
      await sh("for i in $(seq 1 120); do [ -e /sys/block/xvdc ] && break; sleep 1; done; echo 3 > /proc/sys/vm/drop_caches");
      const slowReads = xvdc.stats.reads;
      const k = ++n + 1000, from = out.length;
      m.input(Buffer.from(framedCommand("dd if=/dev/xvdc of=/dev/null bs=4096 skip=200 count=1; echo slow-rc=$?", k)));
      let maxSlice = 0, slices = 0;
      t = Date.now();
      while (framedOutput(out.slice(from), k) === undefined) {
        if (m.state !== "running" || Date.now() - t > 120_000) assert.fail(`slow read: ${m.state}\n${out.slice(-2000)}`);
        const t1 = performance.now();
        const w = m.runSlice();
        maxSlice = Math.max(maxSlice, performance.now() - t1);
        slices++;
        if (w !== 0 || slices % 50 === 0) await new Promise((r) => setTimeout(r, w > 0 ? Math.min(w, 5) : 0));
      }
      const slowMs = Date.now() - t;
      mark("dd from the slow xvdc", t);
      assert.match(framedOutput(out.slice(from), k)!, /^slow-rc=0$/m);
      assert.ok(xvdc.stats.reads > slowReads, "the read went to xvdc");
      assert.ok(slowMs >= SLOW_MS, `the slow read took ${slowMs} ms`);
      if (xvdc.threaded) assert.ok(maxSlice < SLOW_MS / 2, `a slice took ${maxSlice.toFixed(0)} ms while xvdc was slow`);
      else assert.ok(maxSlice >= SLOW_MS * 0.9, `XENO_BLK_SYNC=1: the slowest slice ${maxSlice.toFixed(0)} ms`);
      times.push(`slowest slice while xvdc (${SLOW_MS} ms/op) was read: ${maxSlice.toFixed(1)} ms of ${slices} (${xvdc.threaded ? "I/O thread" : "XENO_BLK_SYNC=1"})`);

      // Teardown: stop running the machine, close the back-ends (XenStore entries go, images closed; the guest
      // has nothing in flight, so every write is in its file already).
      for (const b of backs.splice(0)) b.close();
      m.dispose();
      const img = readFileSync(rwPath);
      assert.equal(img.length, RW_BYTES);
      assert.ok(img.subarray(PATTERN_BLOCK * 4096, PATTERN_BLOCK * 4096 + PATTERN_LEN).equals(pattern), "pattern in the host image");
      assert.ok(img.subarray(0, PATTERN_BLOCK * 4096).every((x) => x === 0), "nothing else written before it");
      assert.ok(img.subarray(PATTERN_BLOCK * 4096 + PATTERN_LEN).every((x) => x === 0), "nothing else written after it");
      assert.equal(md5(readFileSync(roPath)), roSum, "read-only image byte-identical");

      assert.equal(xvda.stats.errors, 0, JSON.stringify(xvda.stats));
      assert.equal(xvdb.stats.bytesWritten, 0);
      assert.equal(xvda.stats.unsupported + xvdb.stats.unsupported, 0);
      assert.doesNotMatch(out, /Kernel panic|kernel BUG|Oops|Call trace:/i);
      assert.doesNotMatch(out, /blkfront.*(fail|error)|I\/O error/i);
      const blkLines = out.split("\n").filter((l) => /blkfront|xvd[ab]/.test(l) && !/XO-|\/ #/.test(l)).map((l) => l.trim());
      assert.ok(blkLines.some((l) => /blkfront: xvda: flush diskcache: enabled/.test(l)), blkLines.join("\n"));
      // feature-max-indirect-segments: blkfront sends large I/O (the 1 MiB md5sum) as BLKIF_OP_INDIRECT.
      assert.ok(blkLines.some((l) => /indirect descriptors: enabled/.test(l)), blkLines.join("\n"));
      assert.ok(xvdb.stats.indirect > 0, `xvdb ${JSON.stringify(xvdb.stats)}`);
      const s = (b: BlkBack): string => JSON.stringify(b.stats);
      process.stderr.write(blkLines.map((l) => `# guest: ${l}\n`).join(""));
      process.stderr.write(`# timings: ${times.join("; ")}; total ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      process.stderr.write(`# xvda ${s(xvda)}\n# xvdb ${s(xvdb)}\n# xvdc ${s(xvdc)}\n`);
    } finally {
      for (const b of backs) b.close();
      m.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
