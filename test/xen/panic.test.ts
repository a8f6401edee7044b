/**
 * A guest kernel panic ends the domain as "crashed": Linux's panic() (here `echo c > /proc/sysrq-trigger`)
 * makes no crash hypercall on Xen/Arm; the board recognises its last console line (src/machine/panic-watch.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { machineRunner } from "./run-machine.js";

test("a guest panic (sysrq c) ends the domain as crashed", { timeout: 12 * 60_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  let out = "";
  const m = new Machine({
    memMiB: 128, vcpus: 1, xen: true, domid: 2, name: "panic-test",
    kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd), cmdline: "console=hvc0",
    consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
  });
  const runUntil = machineRunner(m, () => out, Date.now() + 10 * 60_000);
  await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
  m.input(Buffer.from("echo c > /proc/sysrq-trigger\n"));
  const t0 = Date.now();
  // runUntil fails when the machine stops: run it by hand until the state changes.
  const deadline = Date.now() + 5 * 60_000;
  while (m.state === "running" && Date.now() < deadline) {
    const end = Date.now() + 50;
    while (Date.now() < end && m.runSlice() === 0) { /* run */ }
    await new Promise((r) => setTimeout(r, 0));
  }
  process.stderr.write(`# crashed ${((Date.now() - t0) / 1000).toFixed(1)} s after the panic: ${m.reason}\n`);
  assert.match(out, /Kernel panic - not syncing: sysrq triggered crash/);
  assert.equal(m.state, "crashed");
  assert.equal(m.reason, "guest kernel panic: sysrq triggered crash");
  m.dispose();
});
