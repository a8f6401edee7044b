/**
 * Xen's suspend protocol (`save` with `suspend`, xeno save --suspend) with the stock Debian kernel (one boot),
 * a disk and a vif on a bridge whose uplink is passt (10.0.2.2 is the host's loopback):
 *  - the hypervisor writes control/shutdown = "suspend"; the guest acknowledges, freezes and calls
 *    SCHEDOP_shutdown(SHUTDOWN_suspend), which is taken: the domain stops there, paused;
 *  - a checkpoint (`-c`): the suspend is cancelled (the call returns 1) and the guest goes on with the same
 *    back-ends: its shell answers, the disk takes a write, the vif conns from the host;
 *  - a save (the domain destroyed) then a restore: the call returns 0, so the guest resumes as in a new
 *    domain — its event channels rebound, xenstore watches registered again, blkfront and netfront reconnected
 *    to new back-ends — and its counter goes on, its shell answers, a disk write reaches the image and the vif
 *    conns from the host again;
 *  - the restored guest suspends again (a checkpoint); a paused guest, which cannot answer, is refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { readSaveFile } from "../../src/hv/save-file.js";
import type { DomainInfo } from "../../src/hv/protocol.js";
import { ConsoleTap, HvClient, stopHv } from "./hv-client.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const MAC = "00:16:3e:00:00:2b";

test("save with Xen's suspend protocol: the guest suspends itself; checkpoint cancels, restore reconnects disk and vif",
  { timeout: 25 * 60_000 }, async () => {
    const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
    const dir = mkdtempSync(join(tmpdir(), "xeno-suspend-"));
    const disk = join(dir, "data.img");
    writeFileSync(disk, Buffer.alloc(8 << 20));
    // A host TCP server the guest connects to through its vif (passt: 10.0.2.2 is the host's 127.0.0.1); it
    // answers each connection with a new line. (Busybox's static wget faults on this initramfs: nc instead.)
    let conns = 0;
    const server = createServer((s) => { conns++; s.end(`HOST-SAYS-${conns}-OK\n`); });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    mkdirSync(join(dir, "net"), { recursive: true, mode: 0o700 });
    const bridge = spawn(process.execPath, [join(ROOT, "dist/src/net/bridge-main.js"), "--name", "xenbr0", "--run-dir", dir,
      "--uplink", "passt", "--uplink-owner", MAC], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, XENO_RUN_DIR: dir } });
    let bridgeLog = "";
    bridge.stdout!.on("data", (d) => { bridgeLog += d; });
    bridge.stderr!.on("data", (d) => { bridgeLog += d; });
    const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "1024"], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    hv.stderr!.on("data", (d) => { log += d; });
    const sock = join(dir, "hv.sock");
    let c: HvClient | undefined;
    const taps: ConsoleTap[] = [];
    try {
      for (let i = 0; i < 150 && !(existsSync(sock) && existsSync(join(dir, "net", "xenbr0.sock"))); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(existsSync(join(dir, "net", "xenbr0.sock")), `bridge did not start:\n${bridgeLog}`);
      c = await HvClient.connect(sock);
      const spec = { name: "suspender", memMiB: 128, vcpus: 1, kernel: images.kernel, ramdisk: images.initrd, cmdline: "console=hvc0",
        xen: true, disks: [{ path: disk, devid: 51712, vdev: "xvda", readOnly: false }], vifs: [{ devid: 0, mac: MAC, mtu: 1500, bridge: "xenbr0" }] };
      const { domid } = await c.ok<{ domid: number }>("create", { spec });
      let tap = await ConsoleTap.open(sock, domid);
      taps.push(tap);
      const t0 = Date.now();
      await tap.waitFor(new RegExp(GUEST_READY_MARKER), 0, 10 * 60_000, "guest ready");
      process.stderr.write(`# guest ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      await tap.run("ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 && echo NET-$((1+1))-UP", /^NET-2-UP\r?$/m);
      /** The guest connects to the host's server through its vif: the answer's number is new each time. */
      const connectHost = async (t: ConsoleTap, what: string): Promise<void> => {
        const before = conns, from = t.out.length;
        // Busybox's nc waits on after the host's end of stream: `timeout` ends it once the line came.
        await t.run(`timeout 8 nc 10.0.2.2 ${port} </dev/null; echo NC-$((1+1))-DONE`, /^NC-2-DONE\r?$/m, 120_000);
        assert.ok(conns > before && /^HOST-SAYS-\d+-OK\r?$/m.test(t.out.slice(from)),
          `${what}: the guest's connection through its vif did not reach the host (console tail:\n${t.out.slice(-800)})`);
      };
      /** A marker written to the disk at `sector` with O_SYNC-like fsync; the host reads it from the image. */
      const diskWrite = async (t: ConsoleTap, marker: string, sector: number): Promise<void> => {
        await t.run(`echo ${marker} | dd of=/dev/xvda bs=512 seek=${sector} conv=fsync 2>/dev/null; echo DD-$((40+2))`, /^DD-42\r?$/m);
        const img = readFileSync(disk);
        assert.equal(img.subarray(sector * 512, sector * 512 + marker.length).toString("latin1"), marker, `the disk write '${marker}' reached the image`);
      };
      await connectHost(tap, "before any save");
      await diskWrite(tap, "BEFORE-SUSPEND", 8);
      tap.type("(i=0; while :; do i=$((i+1)); echo CNT-$i; sleep 1; done) &\n");
      await tap.waitFor(/CNT-3\r?\n/, 0, 60_000, "counter at 3");
      const lastCount = (t: ConsoleTap): number => Math.max(0, ...[...t.out.matchAll(/CNT-(\d+)\r?\n/g)].map((m) => Number(m[1])));

      // A checkpoint: the guest suspends itself, is saved, and its suspend is cancelled: it goes on in place.
      const ckpt = join(dir, "ckpt.xeno");
      const r1 = await c.ok<{ bytes: number; ms: number }>("save", { domid, path: ckpt, checkpoint: true, suspend: true });
      process.stderr.write(`# save --suspend -c: ${r1.bytes} bytes, ${r1.ms.toFixed(0)} ms\n`);
      assert.match(log, /suspended itself \(SHUTDOWN_suspend from vCPU 0/, "the guest's SHUTDOWN_suspend was taken");
      const ck = await readSaveFile(ckpt, () => 128 * 256 + 256);
      assert.deepEqual(ck.saved.suspended, { vcpu: 0 }, "the file says the guest suspended itself");
      let list = await c.ok<DomainInfo[]>("list");
      assert.ok(["running", "blocked"].includes(list.find((d) => d.domid === domid)!.state), "the checkpoint leaves it running");
      const n1 = lastCount(tap);
      await tap.waitFor(new RegExp(`CNT-${n1 + 2}\\r?\\n`), 0, 60_000, "counter goes on after the cancelled suspend");
      await tap.run("echo CK-$((6*7))", /^CK-42\r?$/m);
      await diskWrite(tap, "AFTER-CANCEL", 16);
      await connectHost(tap, "after the cancelled suspend");

      // A save: the guest suspends itself and is destroyed; restored, it resumes as in a new domain.
      const file = join(dir, "suspend.xeno");
      const atSave = lastCount(tap);
      await c.ok("save", { domid, path: file, suspend: true });
      list = await c.ok<DomainInfo[]>("list");
      assert.equal(list.find((d) => d.domid === domid), undefined, "saved and destroyed");
      tap.close();
      const r2 = await c.ok<{ domid: number }>("restore", { path: file });
      assert.equal(r2.domid, domid);
      tap = await ConsoleTap.open(sock, domid, false);
      taps.push(tap);
      await tap.waitFor(new RegExp(`CNT-${atSave + 2}\\r?\\n`), 0, 120_000, "counter goes on after the restore");
      assert.ok(!/CNT-1\r?\n/.test(tap.out), "the counter went on (it did not start again)");
      await tap.run("echo RESTORED-$((6*7))", /^RESTORED-42\r?$/m);
      // The front-ends reconnected to the new back-ends: their directories were written afresh (state 1 and
      // InitWait 2), so both ends reach Connected (4) only through blkfront's and netfront's resume.
      const env = { ...process.env, XENSTORED_PATH: join(dir, "xenstored", "socket") };
      const read = (p: string): string => { try { return execFileSync("xenstore-read", [p], { env, timeout: 10_000 }).toString().trim(); } catch { return "?"; } };
      const states = [`/local/domain/0/backend/vbd/${domid}/51712/state`, `/local/domain/${domid}/device/vbd/51712/state`,
        `/local/domain/0/backend/vif/${domid}/0/state`, `/local/domain/${domid}/device/vif/0/state`];
      const deadline = Date.now() + 60_000;
      while (states.some((p) => read(p) !== "4") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(states.map(read), ["4", "4", "4", "4"], `disk and vif connected again (${states.join(", ")})`);
      await diskWrite(tap, "AFTER-RESTORE", 24);
      await connectHost(tap, "after the restore");
      assert.ok(!/BUG|Oops|Kernel panic/.test(tap.out), `no kernel error on the console:\n${tap.out.slice(-2000)}`);

      // The restored guest suspends again (a checkpoint); a paused one cannot answer: refused, left as it was.
      await c.ok("save", { domid, path: join(dir, "again.xeno"), suspend: true, checkpoint: true });
      await tap.run("echo AGAIN-$((6*7))", /^AGAIN-42\r?$/m);
      await c.ok("pause", { domid });
      const refused = await c.call("save", { domid, path: join(dir, "paused.xeno"), suspend: true });
      assert.ok(!refused.ok && refused.error.code === "ESTATE" && /paused/.test(refused.error.message), JSON.stringify(refused));
      assert.ok(!existsSync(join(dir, "paused.xeno")), "no file written");
      await c.ok("unpause", { domid });
      await tap.run("echo STILL-$((6*7))", /^STILL-42\r?$/m);
      await c.ok("destroy", { domid });
    } catch (e) {
      process.stderr.write(`# hv log tail:\n${log.slice(-4000)}\n# console tail:\n${taps.at(-1)?.out.slice(-3000) ?? ""}\n`);
      throw e;
    } finally {
      for (const t of taps) t.close();
      c?.close();
      server.close();
      bridge.kill("SIGTERM");
      await stopHv(hv, dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });
