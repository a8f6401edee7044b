/**
 * A running guest moves to another thread: the stock kernel boots on a bare board (2 vCPUs) in this thread;
 * between slices its state is saved (src/machine/board-state.ts: vCPUs, GIC, PL011, PL031, the domain clock),
 * and a worker thread builds a new board from that state over the same shared domain memory (RAM is not
 * copied). The shell answers there, the guest's clock (uptime, date) went on without running backwards, and the
 * state the worker restored saves back to the same state.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Worker, threadId } from "node:worker_threads";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Board } from "../../src/machine/board.js";
import { saveBoard, type BoardState } from "../../src/machine/board-state.js";
import { framedCommand, framedOutput, machineRunner } from "../xen/run-machine.js";

const BOOT_MS = 240_000;

test("a booted guest is saved, restored in another thread over the same memory, and its shell and clock go on",
  { timeout: BOOT_MS + 120_000 }, async () => {
    const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
    let out = "";
    const memMiB = 192, vcpus = 2;
    const b = new Board({ memMiB, vcpus, consoleOut: (x) => { out += Buffer.from(x).toString("latin1"); } });
    b.boot({ kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd), cmdline: "console=ttyAMA0" });
    const runUntil = machineRunner(b, () => out, Date.now() + BOOT_MS);
    await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
    b.input(Buffer.from(framedCommand("cat /proc/uptime; date +%s; echo cpus $(grep -c ^processor /proc/cpuinfo)", 1)));
    await runUntil(() => framedOutput(out, 1) !== undefined, "uptime before the move");
    const before = framedOutput(out, 1)!;
    const up0 = Number(/^([\d.]+) /m.exec(before)![1]);
    const date0 = Number(/^(\d{9,})$/m.exec(before)![1]);
    assert.match(before, /^cpus 2$/m);

    // Between slices: save, and never run this board again.
    const state = saveBoard(b);
    const worker = new Worker(new URL("./snapshot-worker.js", import.meta.url), { workerData: { state, memory: b.memory, memMiB, vcpus } });
    let out2 = "";
    let restored: { state: BoardState; threadId: number } | undefined;
    let stopped = "";
    worker.on("message", (m: { type: string; bytes?: Uint8Array; state?: BoardState; threadId?: number; reason?: string }) => {
      if (m.type === "out") out2 += Buffer.from(m.bytes!).toString("latin1");
      if (m.type === "restored") restored = { state: m.state!, threadId: m.threadId! };
      if (m.type === "stopped") stopped = `${String(m.state)} ${m.reason}`;
    });
    const errors: Error[] = [];
    worker.on("error", (e) => errors.push(e));
    const until = async (pred: () => boolean, what: string, ms = 120_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!pred()) {
        if (errors.length > 0) throw errors[0];
        if (stopped !== "") assert.fail(`${what}: the restored board stopped (${stopped})\n${out2.slice(-2000)}`);
        if (Date.now() > end) assert.fail(`${what}: not seen in time\n${out2.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await until(() => restored !== undefined, "the worker's restored state");
      assert.notEqual(restored!.threadId, threadId, "restored in another thread");
      // save → restore → save: the same state (the clock has run on meanwhile: only forwards).
      const again = restored!.state;
      assert.ok(again.clock.counter >= state.clock.counter, "the restored counter is not behind the saved one");
      assert.deepEqual({ ...again, clock: null }, { ...state, clock: null });

      worker.postMessage({ type: "input", bytes: Buffer.from(framedCommand("echo $((6*7)); cat /proc/uptime; date +%s", 2)) });
      await until(() => framedOutput(out2, 2) !== undefined, "shell output after the move");
      const after = framedOutput(out2, 2)!;
      assert.match(after, /^42$/m, after);
      const up1 = Number(/^([\d.]+) /m.exec(after)![1]);
      const date1 = Number(/^(\d{9,})$/m.exec(after)![1]);
      assert.ok(up1 >= up0, `uptime ${up0} → ${up1}: never backwards`);
      assert.ok(date1 >= date0, `date ${date0} → ${date1}: never backwards`);
      // Both vCPUs still run: a job pinned to each (taskset fails for a CPU that is not online).
      worker.postMessage({ type: "input", bytes: Buffer.from(framedCommand("for c in 0 1; do taskset -c $c echo ran on $c & done; wait", 3)) });
      await until(() => framedOutput(out2, 3) !== undefined, "a job on each vCPU");
      assert.match(framedOutput(out2, 3)!, /ran on 0/);
      assert.match(framedOutput(out2, 3)!, /ran on 1/);
      assert.doesNotMatch(out2, /Kernel panic|kernel BUG|Oops|rcu_sched self-detected stall/i);
    } finally {
      worker.postMessage({ type: "stop" });
      await worker.terminate();
    }
  });
