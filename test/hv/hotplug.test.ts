/**
 * Hot-plug with a real guest (xl block-attach/-detach, network-attach/-detach through the hypervisor): the
 * guest's blkfront and netfront probe a device that appears in XenStore while it runs, and let go of one the
 * toolstack removes (Closing → Closed), after which its XenStore directories are gone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages } from "../../src/images/index.js";
import type { DomainInfo } from "../../src/hv/protocol.js";
import { ConsoleTap, HvClient } from "./hv-client.js";
import { shellGuest } from "./shell-guest.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

test("hot-plug: a disk and a vif attached to a running guest appear, and detached they go; vcpu-set; mem-max", { timeout: 10 * 60_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xeno-hotplug-"));
  const img = join(dir, "data.img");
  const data = randomBytes(1 << 20);
  writeFileSync(img, Buffer.concat([data, Buffer.alloc(3 << 20)]));
  const md5 = createHash("md5").update(data).digest("hex");
  const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "1024"], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  hv.stderr!.on("data", (d) => { log += d; });
  const xsPath = join(dir, "xenstored", "socket");
  const xsList = (path: string): string[] => {
    try {
      return execFileSync("xenstore-list", [path], { env: { ...process.env, XENSTORED_PATH: xsPath }, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
        .trim().split("\n").filter((x) => x !== "");
    } catch { return []; }
  };
  let c: HvClient | undefined;
  let t: ConsoleTap | undefined;
  try {
    for (let i = 0; i < 100 && !existsSync(join(dir, "hv.pid")); i++) await new Promise((r) => setTimeout(r, 100));
    const sock = join(dir, "hv.sock");
    c = await HvClient.connect(sock);
    // The guest at its shell: restored from the suite's snapshot of this spec, or booted (test/hv/shell-guest.ts).
    const g = await shellGuest(c, sock, { name: "hp", memMiB: 128, vcpus: 2, kernel: images.kernel, ramdisk: images.initrd, cmdline: "console=hvc0" });
    const domid = g.domid;
    t = g.tap;
    process.stderr.write(`# guest at its shell in ${(g.ms / 1000).toFixed(1)} s (${g.restored ? "restored from the suite's snapshot" : "booted"})\n`);

    // Disk: attach, the guest sees it and reads the image's content.
    const devid = (202 << 8) | (1 << 4); // xvdb
    await c.ok("block-attach", { domid, disk: { path: img, devid, vdev: "xvdb", readOnly: true } });
    await t.run("for i in $(seq 50); do [ -e /sys/block/xvdb ] && break; sleep 0.2; done; cat /sys/block/xvdb/size /sys/block/xvdb/ro",
      /^8192\r?\n1\r?$/m);
    await t.run("dd if=/dev/xvdb bs=65536 count=16 2>/dev/null | md5sum", new RegExp(`^${md5}\\s`, "m"));
    assert.deepEqual(xsList(`/local/domain/0/backend/vbd/${domid}`), [String(devid)]);
    let info = (await c.ok<DomainInfo[]>("list")).find((d) => d.domid === domid)!;
    assert.deepEqual(info.spec.disks.map((d) => d.vdev), ["xvdb"]);
    assert.match(JSON.stringify(await c.call("block-attach", { domid, disk: { path: img, devid, vdev: "xvdb", readOnly: true } })), /EINVAL/);
    assert.match(JSON.stringify(await c.call("block-attach", { domid, disk: { path: join(dir, "nope.img"), devid: devid + 16, vdev: "xvdc", readOnly: false } })), /EBUILD/);
    // The same vdev under another devid, and a FIFO as the target: refused, each saying why (issue 14).
    const dup = await c.call("block-attach", { domid, disk: { path: img, devid: devid + 16, vdev: "xvdb", readOnly: true } });
    assert.match(JSON.stringify(dup), /EINVAL.*has a disk xvdb already \(devid 51728\); detach it first or choose another vdev/);
    const fifo = join(dir, "disk.fifo");
    execFileSync("mkfifo", [fifo]);
    const f = await c.call("block-attach", { domid, disk: { path: fifo, devid: devid + 16, vdev: "xvdc", readOnly: false } });
    assert.match(JSON.stringify(f), /EBUILD.*disk xvdc .*disk\.fifo: is a FIFO \(named pipe\); give a regular file/);

    // Detach: the guest lets go, the device and its XenStore directories are gone.
    await c.ok("block-detach", { domid, devid });
    await t.run("sleep 1; [ -e /sys/block/xvdb ] && echo STILL-THERE || echo XVDB-$((1+1))-GONE", /^(XVDB-2-GONE|STILL-THERE)\r?$/m)
      .then((m) => assert.equal(m[1], "XVDB-2-GONE"));
    assert.deepEqual(xsList(`/local/domain/0/backend/vbd/${domid}`), []);
    assert.deepEqual(xsList(`/local/domain/${domid}/device/vbd`), []);
    assert.match(JSON.stringify(await c.call("block-detach", { domid, devid })), /EINVAL/);

    // vif: attach (a bridge daemon is started on demand in this run dir), the guest gets eth0; detach removes it.
    await c.ok("network-attach", { domid, vif: { devid: 0, mac: "00:16:3e:12:34:56", mtu: 1500, bridge: "hpbr" } });
    await t.run("for i in $(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done; cat /sys/class/net/eth0/address",
      /^00:16:3e:12:34:56\r?$/m);
    await c.ok("network-detach", { domid, devid: 0 });
    await t.run("sleep 1; [ -e /sys/class/net/eth0 ] && echo STILL-THERE || echo ETH0-$((1+1))-GONE", /^(ETH0-2-GONE|STILL-THERE)\r?$/m)
      .then((m) => assert.equal(m[1], "ETH0-2-GONE"));
    info = (await c.ok<DomainInfo[]>("list")).find((d) => d.domid === domid)!;
    assert.deepEqual(info.spec.vifs, []);
    await t.run("echo STILL-$((2+2))-ALIVE", /^STILL-4-ALIVE\r?$/m);

    // vcpu-set: the guest's xen cpu_hotplug takes vCPU 1 offline and back (cpu/1/availability).
    await t.run("cat /sys/devices/system/cpu/online", /^0-1\r?$/m);
    await c.ok("vcpu-set", { domid, vcpus: 1 });
    await t.run("for i in $(seq 50); do [ $(cat /sys/devices/system/cpu/cpu1/online) = 0 ] && break; sleep 0.2; done; cat /sys/devices/system/cpu/online",
      /^0\r?$/m);
    // Back to 2: Linux marks vCPU 1 present again; bringing it online is the guest's own step (a udev rule on a
    // full distribution), as on Xen.
    await c.ok("vcpu-set", { domid, vcpus: 2 });
    await t.run("for i in $(seq 50); do [ -e /sys/devices/system/cpu/cpu1/online ] && break; sleep 0.2; done; " +
      "echo 1 > /sys/devices/system/cpu/cpu1/online; cat /sys/devices/system/cpu/online", /^0-1\r?$/m);
    assert.match(JSON.stringify(await c.call("vcpu-set", { domid, vcpus: 3 })), /EINVAL/);
    // mem-max: the maximum reservation and memory/static-max follow; above the built RAM is refused.
    await c.ok("mem-max", { domid, maxKiB: 96 * 1024 });
    info = (await c.ok<DomainInfo[]>("list")).find((d) => d.domid === domid)!;
    assert.equal(info.maxMemKiB, 96 * 1024);
    assert.match(JSON.stringify(await c.call("mem-max", { domid, maxKiB: 512 * 1024 })), /EINVAL.*above the RAM/);
    await t.run("echo STILL-$((3+3))-ALIVE", /^STILL-6-ALIVE\r?$/m);
    assert.doesNotMatch(t.out, /Kernel panic|Oops|BUG:/);
  } finally {
    t?.close();
    c?.close();
    hv.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1000));
    if (hv.exitCode === null) hv.kill("SIGKILL");
    for (const pid of [join(dir, "net", "hpbr.pid")]) {
      let n = 0;
      try { n = Number(execFileSync("cat", [pid], { encoding: "utf8" }).trim()); process.kill(n, "SIGTERM"); } catch { /* gone */ }
      // The bridge daemon removes its files as it exits: wait for it, or the removal below races it (ENOTEMPTY
      // on net/, seen once in a fresh-clone run).
      for (let i = 0; n > 0 && i < 50; i++) {
        try { process.kill(n, 0); } catch { break; }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    if (process.env.XENO_TEST_VERBOSE) process.stderr.write(log);
  }
});
