/**
 * blkback's negotiated features with the stock Debian arm64 kernel's own xen-blkfront, one boot of a 2-vCPU
 * DomU (`xen_blkfront.max_ring_page_order=2` on the command line: blkfront asks for single-page rings unless
 * told; XENO_BLK_PERSISTENT=1 for the disk: persistent grants are not offered by default). Checked:
 *  - XenStore: the back-end offers feature-persistent 1, max-ring-page-order 4, multi-queue-max-queues 2; the
 *    front-end answers feature-persistent 1, ring-page-order 2, multi-queue-num-queues 2 with queue-0/ and
 *    queue-1/ each holding ring-ref0..3 and an event-channel;
 *  - the guest's sysfs: two hardware queues (/sys/block/xvda/mq/0 and 1), blkfront's parameters, and its
 *    "persistent grants: enabled" line;
 *  - data: two writers in parallel (one per vCPU when busybox has taskset) write different patterns with
 *    O_DIRECT through both queues; each reads back identical after the page cache is dropped; a dd with
 *    conv=fsync is in the host's image file before the machine stops (the flush reached the image); both
 *    rings took requests; persistent grants are kept, within the bound;
 *  - after the back-end closes, no grant stays pinned;
 *  - a second disk with Xeno's I/O limit (rate 1 MB/s, bucket of one second): 3 MiB written with O_DIRECT take
 *    at least the ~2.1 s the limit allows after its burst, and read back identical.
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
import { MAX_PERSISTENT_GRANTS } from "../../src/backends/blk/persistent-grants.js";
import { framedCommand, framedOutput, machineRunner } from "./run-machine.js";

const BOOT_MS = 12 * 60_000;
const DOMID = 11;
const BYTES = 16 << 20;
const md5 = (b: Uint8Array): string => createHash("md5").update(b).digest("hex");
/** Pattern k: `yes XENO-MQ-<k>` cut to 256 KiB, written at MiB 2 + 4k. */
const LEN = 256 << 10;
const pattern = (k: number): Buffer => Buffer.from(`XENO-MQ-${k}\n`.repeat(Math.ceil(LEN / 10))).subarray(0, LEN);
const at = (k: number): number => (2 + 4 * k) << 20;
/** xvdb's limit (bytes/s) and what the guest writes to it. */
const LIMIT = 1_000_000, LIMITED_BYTES = 3 << 20;

test("blkback features with the stock blkfront: persistent grants, 4-page rings, 2 queues; data and flush", { timeout: BOOT_MS + 180_000 }, async () => {
  const t0 = Date.now();
  const images = await ensureImages({ onProgress: (msg) => process.stderr.write(`# images: ${msg}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xeno-blkf-"));
  const path = join(dir, "xvda.img"), limitedPath = join(dir, "xvdb.img");
  writeFileSync(path, "");
  truncateSync(path, BYTES);
  writeFileSync(limitedPath, "");
  truncateSync(limitedPath, BYTES);
  const store = new XenStore();
  let out = "";
  const m = new Machine({
    memMiB: 256, vcpus: 2, xen: true, xenstore: store, domid: DOMID, name: "xeno-blk-features",
    kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd),
    cmdline: "console=hvc0 xen_blkfront.max_ring_page_order=2",
    consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
  });
  let back: BlkBack | undefined;
  try {
    const env = process.env.XENO_BLK_PERSISTENT;
    process.env.XENO_BLK_PERSISTENT = "1"; // read when the disk is attached
    try { m.attachDisk({ path, devid: 51712, vdev: "xvda", readOnly: false }); } finally {
      if (env === undefined) delete process.env.XENO_BLK_PERSISTENT; else process.env.XENO_BLK_PERSISTENT = env;
    }
    back = m.xenPv!.blk[0]!;
    m.attachDisk({ path: limitedPath, devid: 51728, vdev: "xvdb", readOnly: false, limit: { bytesPerSecond: LIMIT } });
    const limited = m.xenPv!.blk[1]!;
    const runUntil = machineRunner(m, () => out, Date.now() + BOOT_MS);
    await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
    const bootS = (Date.now() - t0) / 1000;
    let n = 0;
    const sh = async (cmd: string): Promise<string> => {
      const k = ++n + 2000, from = out.length;
      m.input(Buffer.from(framedCommand(cmd, k)));
      await runUntil(() => framedOutput(out.slice(from), k) !== undefined, `output of: ${cmd}`);
      return framedOutput(out.slice(from), k)!;
    };
    await sh("for i in $(seq 1 120); do [ -e /sys/block/xvda ] && break; sleep 1; done");
    assert.ok(back.connected, "xvda connected");

    // XenStore, as the guest sees it.
    const xs = (p: string): string | null => { try { return Buffer.from(store.read(store.connect(0, () => {}), null, p)).toString("latin1"); } catch { return null; } };
    const B = `/local/domain/0/backend/vbd/${DOMID}/51712`, F = `/local/domain/${DOMID}/device/vbd/51712`;
    assert.equal(xs(`${B}/feature-persistent`), "1");
    assert.equal(xs(`${B}/max-ring-page-order`), "4");
    assert.equal(xs(`${B}/multi-queue-max-queues`), "2");
    assert.equal(xs(`${F}/feature-persistent`), "1", "blkfront wants persistent grants");
    assert.equal(xs(`${F}/ring-page-order`), "2");
    assert.equal(xs(`${F}/multi-queue-num-queues`), "2");
    for (const q of [0, 1]) {
      for (let i = 0; i < 4; i++) assert.match(xs(`${F}/queue-${q}/ring-ref${i}`) ?? "", /^\d+$/, `queue-${q}/ring-ref${i}`);
      assert.match(xs(`${F}/queue-${q}/event-channel`) ?? "", /^\d+$/);
    }
    assert.equal(back.queues, 2);
    assert.equal(back.ringPageOrder, 2);

    // The guest's sysfs and its blkfront line.
    const sys = await sh("ls -1 /sys/block/xvda/mq; cat /sys/module/xen_blkfront/parameters/max_ring_page_order " +
      "/sys/module/xen_blkfront/parameters/max_queues /sys/module/xen_blkfront/parameters/feature_persistent 2>&1; " +
      "command -v taskset >/dev/null && echo have-taskset");
    const sysLines = sys.trim().split("\n").map((l) => l.trim());
    assert.ok(sysLines.includes("0") && sysLines.includes("1"), `two hardware queues: ${sys}`);
    assert.ok(sysLines.includes("2"), `max_ring_page_order 2: ${sys}`);
    const taskset = sysLines.includes("have-taskset");
    assert.match(out, /blkfront: xvda: .*persistent grants: enabled/, "blkfront says persistent grants are on");

    // Two writers in parallel, O_DIRECT (through the rings, not the page cache), one per vCPU when possible.
    const before = back.stats.writes;
    const w = (k: number): string => `${taskset ? `taskset -c ${k} ` : ""}dd if=/tmp/p${k} of=/dev/xvda bs=64k seek=${at(k) / 65536} oflag=direct 2>/dev/null`;
    const wr = await sh(`for k in 0 1; do yes XENO-MQ-$k | head -c ${LEN} > /tmp/p$k; done; (${w(0)}; echo w0=$?) & (${w(1)}; echo w1=$?) & wait`);
    assert.match(wr, /^w0=0$/m, wr);
    assert.match(wr, /^w1=0$/m, wr);
    assert.ok(back.stats.writes > before, "writes reached blkback");
    // A write with fsync: in the image file as soon as dd returns (the flush reached the image).
    const fs1 = await sh(`dd if=/tmp/p0 of=/dev/xvda bs=64k seek=${at(2) / 65536} conv=fsync 2>/dev/null; echo fs=$?`);
    assert.match(fs1, /^fs=0$/m);
    assert.ok(back.stats.flushes >= 1, "fsync sent a flush");
    assert.ok(readFileSync(path).subarray(at(2), at(2) + LEN).equals(pattern(0)), "fsync'd data in the host image while the guest runs");

    const rd = await sh(`sync; echo 3 > /proc/sys/vm/drop_caches; for k in 0 1; do dd if=/dev/xvda bs=64k skip=$((${at(0) / 65536} + 64 * k)) count=4 iflag=direct 2>/dev/null | md5sum; done`);
    const sums = rd.split("\n").filter((l) => /^[0-9a-f]{32}\s/.test(l)).map((l) => l.slice(0, 32));
    assert.deepEqual(sums, [md5(pattern(0)), md5(pattern(1))], rd);

    // The limited disk: 3 MiB with O_DIRECT, timed on the host around the command.
    await sh(`for i in $(seq 1 120); do [ -e /sys/block/xvdb ] && break; sleep 1; done; head -c ${LIMITED_BYTES} /dev/urandom > /tmp/l`);
    const t1 = Date.now();
    const lw = await sh("dd if=/tmp/l of=/dev/xvdb bs=64k oflag=direct 2>/dev/null; echo lw=$?");
    const limitedS = (Date.now() - t1) / 1000;
    assert.match(lw, /^lw=0$/m);
    const minS = (LIMITED_BYTES - LIMIT) / LIMIT; // after the one-second burst
    assert.ok(limitedS >= minS * 0.95, `3 MiB at 1 MB/s took ${limitedS.toFixed(2)} s, at least ${minS.toFixed(2)} s expected`);
    const lr = await sh("echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/xvdb bs=64k count=48 iflag=direct 2>/dev/null | md5sum; md5sum /tmp/l");
    const lsums = lr.split("\n").filter((l) => /^[0-9a-f]{32}\s/.test(l)).map((l) => l.slice(0, 32));
    assert.equal(lsums.length, 2, lr);
    assert.equal(lsums[0], lsums[1], "read back from the limited disk");
    assert.ok(limited.stats.bytesWritten >= LIMITED_BYTES);

    const perRing = back.requestsPerQueue;
    const pg = back.persistentGrants!;
    assert.ok(pg > 0 && pg <= 2 * MAX_PERSISTENT_GRANTS, `persistent grants kept: ${pg}`);
    if (taskset) assert.ok(perRing.every((x) => x > 0), `both rings took requests: ${perRing.join(", ")}`);
    assert.equal(back.stats.errors, 0, JSON.stringify(back.stats));
    assert.doesNotMatch(out, /Kernel panic|kernel BUG|Oops|Call trace:/i);
    assert.doesNotMatch(out, /blkfront.*(fail|error)|I\/O error/i);
    process.stderr.write(`# boot ${bootS.toFixed(1)} s; total ${((Date.now() - t0) / 1000).toFixed(1)} s; requests per queue ${perRing.join(", ")}; ` +
      `persistent grants ${pg}; taskset ${taskset}; 3 MiB to the 1 MB/s disk in ${limitedS.toFixed(2)} s (bound ${minS.toFixed(2)} s)\n# stats ${JSON.stringify(back.stats)}\n` +
      `# guest: ${(/blkfront: xvda: .*/.exec(out) ?? [""])[0].trim()}\n`);

    const xen = m.xen!;
    back.close();
    limited.close();
    assert.equal(xen.gnttab.pinned, 0, "no grant pinned after the back-end closed");
    m.dispose();
    const img = readFileSync(path);
    for (const k of [0, 1]) assert.ok(img.subarray(at(k), at(k) + LEN).equals(pattern(k)), `pattern ${k} in the host image`);
  } finally {
    for (const b of m.xenPv?.blk ?? []) b.close();
    back?.close();
    m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
