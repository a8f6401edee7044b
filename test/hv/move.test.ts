/**
 * A running Xen DomU with a disk and a vif moves between worker threads (DomainRunner.moveTo): its worker saves
 * the whole machine between slices (board, P2M, Xen ABI, xenbus ring, console, blkback, netback), and the other
 * thread restores it over the same shared memory. The stock kernel's shell answers there, its clock runs on
 * (never backwards), data written to the disk before the move reads back after it and the image file holds
 * what was written after it, the vif answers ARP before and after, and input typed during the move arrives.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { DomainRunner, VmThread } from "../../src/hv/vm-host.js";
import { FramePool } from "../../src/hv/frame-pool.js";
import { XenStore } from "../../src/xenstore/index.js";
import { framedCommand, framedOutput } from "../xen/run-machine.js";
import { arpRequest, parse } from "../net/frames.js";

const GUEST_MAC = "00:16:3e:00:00:42", HOST_MAC = "02:00:00:00:00:01";
const BOOT_MS = 300_000;

test("a Xen DomU with a disk and a vif moves to another thread and back: shell, clock, disk and network go on",
  { timeout: BOOT_MS + 240_000 }, async () => {
    const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
    const dir = mkdtempSync(join(tmpdir(), "xeno-move-"));
    const disk = join(dir, "data.img");
    writeFileSync(disk, Buffer.alloc(8 << 20));
    const store = new XenStore();
    const pool = new FramePool(1 << 18);
    const t1 = new VmThread(), t2 = new VmThread();
    const r = new DomainRunner();
    let out = "";
    const tx: Buffer[] = [];
    r.on("output", (b) => { out += Buffer.from(b).toString("latin1"); });
    r.on("net-tx", (_vif, f) => tx.push(Buffer.from(f)));
    let stopped = "";
    r.on("stopped", (s) => { stopped = `${s.state}: ${s.reason}`; });
    const until = async (pred: () => boolean, what: string, ms = 120_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!pred()) {
        if (stopped !== "") assert.fail(`${what}: the domain stopped (${stopped})\n${out.slice(-3000)}`);
        if (Date.now() > end) assert.fail(`${what}: not seen in time\n${out.slice(-3000)}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    let k = 0;
    const sh = async (cmd: string, what: string): Promise<string> => {
      const n = ++k;
      r.input(Buffer.from(framedCommand(cmd, n)));
      await until(() => framedOutput(out, n) !== undefined, what);
      return framedOutput(out, n)!;
    };
    const arpReply = async (what: string): Promise<void> => {
      const from = tx.length;
      r.netRx(0, arpRequest(HOST_MAC, "10.0.0.1", "10.0.0.2"));
      await until(() => tx.slice(from).some((f) => parse(f).arp?.op === 2), what, 30_000);
    };
    try {
      r.start({
        memMiB: 256, vcpus: 2, kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd), cmdline: "console=hvc0",
        xen: true, name: "mover", domid: 7, store, pool,
        disks: [{ path: disk, devid: 51712, vdev: "xvda", readOnly: false }],
        vifs: [{ devid: 0, mac: GUEST_MAC, mtu: 1500, bridge: "xenbr0" }],
      }, t1);
      await until(() => out.includes(GUEST_READY_MARKER), "guest ready marker", BOOT_MS);
      const before = await sh("echo move-me-1 | dd of=/dev/xvda bs=512 conv=sync,fsync 2>/dev/null; ip addr add 10.0.0.2/24 dev eth0; " +
        "ip link set eth0 up; cat /proc/uptime; date +%s", "disk write, network up, clock");
      await arpReply("ARP reply before the move");
      const up0 = Number(/^([\d.]+) /m.exec(before)![1]), date0 = Number(/^(\d{9,})$/m.exec(before)![1]);
      const pagesBefore = pool.freeFrames;

      // Move, with console input typed while it moves.
      const t0 = performance.now();
      const moved = r.moveTo(t2, { resave: true });
      r.input(Buffer.from("echo typed-during-the-move\n"));
      const result = await moved;
      process.stderr.write(`# move to another thread (with the resave): ${(performance.now() - t0).toFixed(1)} ms\n`);
      // save → restore → save: the new thread's state before it ran equals what the old one saved (the domain
      // clock has run on meanwhile: only forwards).
      assert.ok(result?.resaved !== undefined);
      const { saved, resaved } = { saved: result.saved, resaved: result.resaved! };
      assert.ok(resaved.board.clock.counter >= saved.board.clock.counter);
      const noClock = (x: typeof saved): unknown => ({ ...x, board: { ...x.board, clock: null } });
      assert.deepEqual(noClock(resaved), noClock(saved));
      assert.equal(saved.pv!.blk.length, 1);
      assert.equal(saved.pv!.net.length, 1);
      assert.equal(r.currentThread, t2);
      assert.equal(t1.load, 0, "the old thread let the domain go");
      assert.equal(pool.freeFrames, pagesBefore, "the frames stay claimed: nothing released or claimed twice");
      await until(() => /^typed-during-the-move\r?$/m.test(out), "input typed during the move");

      const after = await sh("echo $((6*7)); cat /proc/uptime; date +%s; dd if=/dev/xvda bs=512 count=1 2>/dev/null | head -c 9; echo; " +
        "echo move-me-2 | dd of=/dev/xvda bs=512 seek=1 conv=sync,fsync 2>/dev/null; echo written", "shell after the move");
      assert.match(after, /^42$/m, after);
      assert.match(after, /^move-me-1$/m, "the disk read back after the move");
      assert.match(after, /^written$/m);
      const up1 = Number(/^([\d.]+) /m.exec(after)![1]), date1 = Number(/^(\d{9,})$/m.exec(after)![1]);
      assert.ok(up1 >= up0, `uptime ${up0} → ${up1}`);
      assert.ok(date1 >= date0, `date ${date0} → ${date1}`);
      const img = readFileSync(disk);
      assert.equal(img.subarray(0, 9).toString(), "move-me-1");
      assert.equal(img.subarray(512, 521).toString(), "move-me-2", "the image holds what was written after the move");
      await arpReply("ARP reply after the move");

      // And back: a second move, then both vCPUs and the store (xenbus: a read through the guest's connection).
      const t1s = performance.now();
      await r.moveTo(t1);
      process.stderr.write(`# move back: ${(performance.now() - t1s).toFixed(1)} ms\n`);
      assert.equal(r.currentThread, t1);
      const back = await sh("for c in 0 1; do taskset -c $c echo ran on $c & done; wait; cat /sys/devices/vif-0/nodename 2>/dev/null || " +
        "cat /sys/bus/xen/devices/vif-0/nodename", "shell after the move back");
      assert.match(back, /ran on 0/);
      assert.match(back, /ran on 1/);
      assert.match(back, /device\/vif\/0/, "xenbus answers");
      assert.doesNotMatch(out, /Kernel panic|kernel BUG|Oops|rcu_sched self-detected stall|xenbus.*timeout/i);
    } finally {
      await r.destroy();
      await t1.close();
      await t2.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
