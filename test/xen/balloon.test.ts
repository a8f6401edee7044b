/**
 * Ballooning with the stock kernel's own xen-balloon driver (drivers/xen/xen-balloon.c, built in): the toolstack
 * writes memory/target in XenStore (what `xl mem-set` does), the guest gives pages back with
 * XENMEM_decrease_reservation, and the hypervisor's frame pool gains them; raising the target makes the guest
 * take them back with XENMEM_populate_physmap. One boot of a 512 MiB DomU:
 *  - 512 → 256 MiB: the domain's reservation falls to about 256 MiB, the pool gains ≥ 200 MiB free frames,
 *    and the guest still runs commands (and sees the lower MemTotal);
 *  - back to 512 MiB: the pool returns to where it was after boot;
 *  - after the machine is disposed, every frame is back in the pool.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { XenStore } from "../../src/xenstore/index.js";
import { FramePool } from "../../src/hv/frame-pool.js";
import { machineRunner } from "./run-machine.js";

const BOOT_MS = 9 * 60_000;
const DOMID = 3;
const MiB = 256; // frames per MiB

test("balloon 512 → 256 → 512 MiB through memory/target: frames leave and return to the pool", { timeout: BOOT_MS + 240_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const pool = new FramePool(1024 * MiB);
  const store = new XenStore();
  const dom0 = store.connect(0, () => {});
  const read = (path: string): string | null => {
    try { return Buffer.from(store.read(dom0, null, path)).toString("latin1"); } catch { return null; }
  };
  let out = "";
  const m = new Machine({
    memMiB: 512, vcpus: 1, xen: true, xenstore: store, domid: DOMID, name: "balloon-test", pool,
    kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd), cmdline: "console=hvc0",
    consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
  });
  const acct = m.xen!.account;
  const startFrames = acct.pages;
  assert.equal(pool.freeFrames, 1024 * MiB - startFrames, "the domain's RAM is claimed from the pool");
  const runUntil = machineRunner(m, () => out, Date.now() + BOOT_MS + 180_000);
  const t0 = Date.now();
  const shell = async (cmd: string, want: RegExp, what: string): Promise<string> => {
    const from = out.length;
    m.input(Buffer.from(`${cmd}\n`));
    await runUntil(() => want.test(out.slice(from)), what);
    return out.slice(from);
  };
  try {
    await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
    process.stderr.write(`# booted in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    assert.match(out, /xen:balloon: Initialising balloon driver/);
    const target = read(`/local/domain/${DOMID}/memory/target`);
    assert.equal(target, String(startFrames * 4), "memory/target starts at the domain's RAM in KiB");
    const freeAfterBoot = pool.freeFrames;

    // Down to 256 MiB.
    const t1 = Date.now();
    store.write(dom0, null, `/local/domain/${DOMID}/memory/target`, Buffer.from(String(256 * 1024)));
    await runUntil(() => acct.pages <= 260 * MiB, "the balloon inflates to ~256 MiB");
    process.stderr.write(`# ballooned down to ${(acct.pages / MiB).toFixed(1)} MiB in ${((Date.now() - t1) / 1000).toFixed(1)} s; ` +
      `pool free ${(freeAfterBoot / MiB).toFixed(0)} → ${(pool.freeFrames / MiB).toFixed(0)} MiB\n`);
    assert.ok(pool.freeFrames - freeAfterBoot >= 200 * MiB, `pool gained ${(pool.freeFrames - freeAfterBoot) / MiB} MiB`);
    assert.equal(pool.freeFrames + pool.claimedFrames, pool.totalFrames);
    assert.equal(pool.claimedFrames, acct.pages, "the pool's claimed frames are the domain's reservation");
    const mem = await shell("grep MemTotal /proc/meminfo", /MemTotal:\s+(\d+) kB/, "MemTotal after ballooning");
    const memTotalKiB = Number(/MemTotal:\s+(\d+) kB/.exec(mem)![1]);
    assert.ok(memTotalKiB < 300 * 1024, `guest MemTotal ${memTotalKiB} kB after ballooning to 256 MiB`);
    await shell("echo BALLOON-$((6*7))-OK", /^BALLOON-42-OK\r?$/m, "the guest still runs");

    // Back up to the full size.
    const t2 = Date.now();
    store.write(dom0, null, `/local/domain/${DOMID}/memory/target`, Buffer.from(String(startFrames * 4)));
    await runUntil(() => acct.pages >= startFrames - 4 * MiB && pool.freeFrames <= freeAfterBoot + 4 * MiB, "the balloon deflates");
    process.stderr.write(`# back to ${(acct.pages / MiB).toFixed(1)} MiB in ${((Date.now() - t2) / 1000).toFixed(1)} s\n`);
    await shell("echo BALLOON-UP-$((6*7))", /^BALLOON-UP-42\r?$/m, "the guest runs after deflating");
    assert.doesNotMatch(out, /Kernel panic|kernel BUG|Oops|Call trace:|Out of memory/i);
  } finally {
    m.dispose();
  }
  assert.equal(pool.freeFrames, pool.totalFrames, "every frame is back after dispose");
});
