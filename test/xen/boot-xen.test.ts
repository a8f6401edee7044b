/**
 * Boots Debian's stock arm64 kernel as a Xen DomU (MachineOptions.xen) in this process and checks that it
 * detects Xen, brings up grant tables and 2-level event channels and registers its vcpu_info without errors,
 * and that /sys/hypervisor/type reads "xen". XenStore is not served (store param ~0: Linux waits for a late
 * xenstore without blocking boot). One boot, slow on a loaded machine: generous timeout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { machineRunner } from "./run-machine.js";

const BOOT_MS = 9 * 60_000;

test("stock kernel boots as a Xen DomU: Xen detected, events and grant tables up, /sys/hypervisor/type = xen",
  { timeout: BOOT_MS + 60_000 }, async () => {
    const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
    let out = "";
    const stderr: string[] = [];
    const m = new Machine({
      memMiB: 256, vcpus: 2, xen: true,
      kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd),
      cmdline: "console=ttyAMA0",
      consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
    });
    const origWrite = process.stderr.write.bind(process.stderr);
    // The Xen layer's rate-limited trace goes to stderr: keep it for the assertions.
    process.stderr.write = ((s: string | Uint8Array) => { stderr.push(String(s)); return origWrite(s); }) as typeof process.stderr.write;
    const deadline = Date.now() + BOOT_MS;
    const runUntil = machineRunner(m, () => out, deadline);
    try {
      await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
      const from = out.length;
      m.input(Buffer.from("cat /sys/hypervisor/type; echo HV\"\"-DONE\n")); // the echoed line must not match
      await runUntil(() => /^HV-DONE\r?$/m.test(out.slice(from)), "output of cat /sys/hypervisor/type");
      const reply = out.slice(from);
      assert.match(reply, /^xen\r?$/m, reply);
      assert.match(out, /Xen 4\.17 support found/);
      assert.match(out, /xen:grant_table: Grant tables using version 1 layout/);
      assert.match(out, /Grant table initialized/);
      assert.match(out, /xen:events: Using 2-level ABI/);
      assert.match(out, /Xen: initializing cpu0/);
      assert.match(out, /Xen: initializing cpu1/);
      assert.doesNotMatch(out, /Kernel panic|kernel BUG|Oops|Call trace:/i);
      assert.doesNotMatch(out, /grant table add_to_physmap failed|Error request IRQ|Xen event channel interrupt not found/);
      const xen = m.xen!;
      assert.ok((xen.counts.get(17) ?? 0) >= 1, "xen_version called");
      assert.ok((xen.counts.get(24) ?? 0) >= 2, "vcpu_op called for each vCPU");
      assert.ok(xen.sharedInfo.gfn > 0, "shared_info mapped");
      assert.equal(xen.sharedInfo.viGpa.filter((g) => g >= 0).length, 2, "both vcpu_infos registered");
      assert.ok(!stderr.some((l) => /unknown hypercall|failed inside the hypervisor/.test(l)), stderr.join(""));
      // Power off: Linux 6.1 prefers PSCI SYSTEM_OFF (firmware sys-off priority) over Xen's SCHEDOP_shutdown;
      // either way the domain must stop as "poweroff".
      m.input(Buffer.from("poweroff -f\n"));
      await runUntil(() => m.state !== "running", "poweroff").catch(() => undefined);
      assert.equal(m.state, "poweroff", m.reason);
    } finally {
      process.stderr.write = origWrite;
    }
  });
