/**
 * Boots Debian's stock arm64 kernel as a Xen DomU with XenStore on its xenbus and the PV console, and checks,
 * in one boot (slow on a loaded machine: generous timeout):
 *  - the toolstack side: the domain's nodes and @introduceDomain at creation, @releaseDomain at its end;
 *  - hvc0 end to end (`console=hvc0`): every console byte, the ready marker included, came through the PV
 *    console ring, and a command typed on the console runs in the shell there and answers;
 *  - xenbus both ways: the guest writes control/feature-poweroff; the toolstack's "poweroff" request in
 *    control/shutdown is read and acknowledged by the guest (Linux clears the node in a transaction, then runs
 *    /sbin/poweroff — which the initramfs' shell-script init ignores, so the machine keeps running); the
 *    toolstack's sysrq "o" in control/sysrq then powers the guest off (SCHEDOP_shutdown poweroff).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { XenStore } from "../../src/xenstore/index.js";
import { machineRunner } from "./run-machine.js";

const BOOT_MS = 9 * 60_000;
const DOMID = 7;
const HOME = `/local/domain/${DOMID}`;

test("DomU with XenStore and PV console: hvc0 shell round trip, control/shutdown acknowledged, sysrq poweroff",
  { timeout: BOOT_MS + 120_000 }, async () => {
    const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
    const store = new XenStore();
    const events: string[] = [];
    const dom0 = store.connect(0, (path) => events.push(path));
    store.watch(dom0, "@introduceDomain", "i");
    store.watch(dom0, "@releaseDomain", "r");
    events.length = 0; // the initial firings
    const read = (path: string): string | null => {
      try { return Buffer.from(store.read(dom0, null, path)).toString("latin1"); } catch { return null; }
    };
    let out = "";
    const stderr: string[] = [];
    const m = new Machine({
      memMiB: 256, vcpus: 1, xen: true, xenstore: store, domid: DOMID, name: "xeno-pv-test",
      kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd),
      cmdline: "console=hvc0",
      consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
    });
    assert.deepEqual(events, ["@introduceDomain"]);
    assert.equal(read(`${HOME}/name`), "xeno-pv-test");
    assert.equal(read(`${HOME}/domid`), String(DOMID));
    assert.equal(read(`${HOME}/console/port`), String(m.xen!.consolePort));
    const pv = m.xenPv!;
    const origWrite = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string | Uint8Array) => { stderr.push(String(s)); return origWrite(s); }) as typeof process.stderr.write;
    const deadline = Date.now() + BOOT_MS;
    const runUntil = machineRunner(m, () => out, deadline);
    try {
      await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
      assert.match(out, /printk: console \[hvc0\] enabled/);
      // No earlycon, console=hvc0: the PL011 printed nothing, every byte came through the PV ring.
      assert.equal(pv.console!.stats.outBytes, out.length);
      assert.ok(pv.console!.active, "input now goes to hvc0");

      const from = out.length;
      m.input(Buffer.from("echo XENO-$((40+2))-OK\n")); // the echoed command line does not match
      await runUntil(() => /^XENO-42-OK\r?$/m.test(out.slice(from)), "command output over hvc0");
      assert.ok(pv.console!.stats.inBytes > 0);

      // The guest talks to XenStore: it has registered its shutdown features (manage.c setup_shutdown_watcher).
      await runUntil(() => read(`${HOME}/control/feature-poweroff`) === "1", "control/feature-poweroff");
      assert.deepEqual(store.getPerms(dom0, null, `${HOME}/control/feature-poweroff`), [`n${DOMID}`]);
      assert.ok(pv.xenbus.stats.requestBytes > 0 && pv.xenbus.stats.responseBytes > 0);

      // A toolstack shutdown request is read through the guest's watch and acknowledged (cleared).
      store.write(dom0, null, `${HOME}/control/shutdown`, Buffer.from("poweroff"));
      await runUntil(() => read(`${HOME}/control/shutdown`) === "" || m.state !== "running", "control/shutdown acknowledged");
      assert.equal(read(`${HOME}/control/shutdown`), "");
      if (m.state === "running") {
        // busybox poweroff signals PID 1, which here is a shell script ignoring it: ask the kernel via sysrq.
        store.write(dom0, null, `${HOME}/control/sysrq`, Buffer.from("o"));
        await runUntil(() => m.state !== "running", "sysrq poweroff").catch(() => undefined);
      }
      assert.equal(m.state, "poweroff", m.reason);
      assert.deepEqual(events, ["@introduceDomain", "@releaseDomain"]);

      assert.equal(pv.xenbus.broken, null);
      assert.equal(pv.connection!.stats.internalErrors, 0);
      assert.equal(pv.console!.stats.badOutIndexes + pv.console!.stats.badInIndexes, 0);
      assert.doesNotMatch(out, /Kernel panic|kernel BUG|Oops|Call trace:/i);
      assert.doesNotMatch(out, /XENBUS: (Unable|Error|error)|xenbus.*(failed|error)/i);
      assert.ok(!stderr.some((l) => /unknown hypercall|failed inside the hypervisor|xenbus:|console:/.test(l)), stderr.join(""));
    } finally {
      process.stderr.write = origWrite;
    }
  });
