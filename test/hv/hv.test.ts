/**
 * The hypervisor process (`node dist/src/hv/main.js`) with real guests: ten Debian DomUs at once under one
 * hypervisor and one XenStore, driven through the control socket and Debian's xenstore-utils:
 *  - all ten boot and answer on their PV consoles; `list` shows them with their memory from the one pool;
 *  - the guests' own xenbus and the back-ends (in the domains' threads) use the hypervisor's single store:
 *    xenstore-ls over the xenstored socket sees every domain's nodes and its guest-written features;
 *  - pause/unpause show in the state; a shutdown request goes through control/shutdown; sysrq reboot/poweroff
 *    end in state "shutdown" with the right reason; a guest that panics (sysrq c) is "crashed" while the
 *    others keep running; destroy removes its nodes and frames; malformed requests get errors, the process stays.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import type { DomainInfo, HostInfo } from "../../src/hv/protocol.js";
import { ConsoleTap, HvClient, stopHv } from "./hv-client.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const N = 10;
const MEM = 96;

test(`${N} domains under one hypervisor: consoles, list, one XenStore, pause, shutdown, crash isolation, destroy`, { timeout: 20 * 60_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xeno-hv-"));
  const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", String(2048)],
    { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  hv.stderr!.on("data", (d) => { log += d; });
  const sock = join(dir, "hv.sock");
  const xsPath = join(dir, "xenstored", "socket");
  const xs = (tool: string, ...args: string[]): string =>
    execFileSync(tool, args, { env: { ...process.env, XENSTORED_PATH: xsPath }, encoding: "utf8", timeout: 10_000 }).trim();
  const taps: ConsoleTap[] = [];
  let c: HvClient | undefined;
  try {
    for (let i = 0; i < 100 && !existsSync(xsPath); i++) await new Promise((r) => setTimeout(r, 100));
    c = await HvClient.connect(sock);
    await c.ok("subscribe");
    const info = await c.ok<HostInfo>("info");
    assert.equal(info.totalMemoryMiB, 2048);
    assert.equal(info.xenstoredSocket, xsPath);

    // Bad requests: errors, and the hypervisor carries on.
    c.raw("this is not json\n");
    assert.equal((await c.call("bogus")).ok, false);
    assert.match(JSON.stringify(await c.call("destroy", { domid: 77 })), /ENOENT_DOMAIN/);
    assert.match(JSON.stringify(await c.call("create", { spec: { name: "x" } })), /EINVAL/);
    assert.match(JSON.stringify(await c.call("create", { spec: { name: "big", memMiB: 4096, vcpus: 1, kernel: images.kernel,
      ramdisk: images.initrd, cmdline: "", xen: true, disks: [], vifs: [] } })), /ENOMEM/);

    const t0 = Date.now();
    const ids: number[] = [];
    for (let i = 1; i <= N; i++) {
      const r = await c.ok<{ domid: number }>("create", { spec: { name: `g${i}`, memMiB: MEM, vcpus: 1, kernel: images.kernel,
        ramdisk: images.initrd, cmdline: "console=hvc0", xen: true, disks: [], vifs: [] } });
      ids.push(r.domid);
    }
    assert.deepEqual(ids, Array.from({ length: N }, (_, i) => i + 1));
    assert.match(JSON.stringify(await c.call("create", { spec: { name: "g3", memMiB: MEM, vcpus: 1, kernel: images.kernel,
      cmdline: "", xen: true, disks: [], vifs: [] } })), /EEXIST_NAME/);
    for (const id of ids) taps.push(await ConsoleTap.open(sock, id));
    await Promise.all(taps.map((t, i) => t.waitFor(new RegExp(GUEST_READY_MARKER), 0, 15 * 60_000, `g${i + 1} ready`)));
    process.stderr.write(`# ${N} guests ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    await Promise.all(taps.map((t, i) => t.run(`echo G-$((${i + 1}*100))-OK`, new RegExp(`^G-${(i + 1) * 100}-OK\\r?$`, "m"))));

    let list = await c.ok<DomainInfo[]>("list");
    assert.equal(list.length, N + 1);
    assert.equal(list[0]!.name, "Domain-0");
    for (const d of list.slice(1)) {
      assert.ok(d.state === "running" || d.state === "blocked", `${d.name}: ${d.state}`);
      assert.ok(d.memKiB > (MEM - 2) * 1024 && d.memKiB <= MEM * 1024, `${d.name}: ${d.memKiB} KiB`);
      assert.ok(d.cpuSeconds > 1, `${d.name}: ${d.cpuSeconds} s of CPU`);
    }
    const info2 = await c.ok<HostInfo>("info");
    assert.ok(info2.freeMemoryMiB <= 2048 - N * (MEM - 1), `pool free ${info2.freeMemoryMiB} MiB`);
    // Domains share worker threads (one isolate each): a thread per pCPU first, then up to domainsPerThread each.
    // The balancer (src/hv/balance.ts) may since have moved a busy domain out of a shared thread into a new one
    // (vmMoves counts moves), so with moves there may be more threads, never more than domains — or fewer, once
    // idle domains were packed together again (balance.ts planPack, after XENO_PACK_IDLE_S of idle, default 20 s).
    const placed = Math.min(N, Math.max(info2.pcpus!, Math.ceil(N / info2.domainsPerThread!)));
    if (info2.vmMoves === 0) assert.equal(info2.vmThreads, placed, JSON.stringify(info2));
    else assert.ok(info2.vmThreads! >= Math.ceil(N / info2.domainsPerThread!) && info2.vmThreads! <= N, JSON.stringify(info2));

    // One store: the guests' own writes (through their xenbus rings) are visible over the socket.
    assert.equal(xs("xenstore-read", "/local/domain/4/name"), "g4");
    for (const id of ids) assert.equal(xs("xenstore-read", `/local/domain/${id}/control/feature-poweroff`), "1");
    assert.match(xs("xenstore-ls", "/local/domain/7"), /memory = ""\n\s+static-max = "\d+"/);
    await taps[8]!.run("cat /sys/hypervisor/type", /^xen\r?$/m);
    // The guest reads from XenStore through its own xenbus: /sys/hypervisor/uuid is its "vm" node's uuid.
    const uuid9 = list.find((d) => d.domid === 9)!.uuid;
    await taps[8]!.run("cat /sys/hypervisor/uuid", new RegExp(`^${uuid9}\\r?$`, "m"));

    // Pause / unpause.
    await c.ok("pause", { domid: 2 });
    list = await c.ok<DomainInfo[]>("list");
    assert.equal(list.find((d) => d.domid === 2)!.state, "paused");
    const before = list.find((d) => d.domid === 2)!.cpuSeconds;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await c.ok<DomainInfo[]>("list")).find((d) => d.domid === 2)!.cpuSeconds, before, "a paused domain uses no CPU");
    await c.ok("unpause", { domid: 2 });
    await taps[1]!.run("echo UNPAUSED-$((1+1))", /^UNPAUSED-2\r?$/m);

    // A shutdown request goes through control/shutdown and the guest acknowledges it (clears the node).
    await c.ok("shutdown", { domid: 3, reason: "poweroff" });
    for (let i = 0; i < 100 && xs("xenstore-read", "/local/domain/3/control/shutdown") !== ""; i++) await new Promise((r) => setTimeout(r, 200));
    assert.equal(xs("xenstore-read", "/local/domain/3/control/shutdown"), "");
    // The initramfs's shell init ignores the poweroff signal: sysrq (through control/sysrq) ends it.
    await c.ok("sysrq", { domid: 3, key: "o" });
    await c.ok("sysrq", { domid: 4, key: "b" });
    // A guest that panics crashes alone.
    taps[4]!.type("echo c > /proc/sysrq-trigger\n");
    const until = Date.now() + 120_000;
    while (Date.now() < until) {
      list = await c.ok<DomainInfo[]>("list");
      const s = (id: number): DomainInfo => list.find((d) => d.domid === id)!;
      if (s(3).state === "shutdown" && s(4).state === "shutdown" && s(5).state === "crashed") break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const s = (id: number): DomainInfo => list.find((d) => d.domid === id)!;
    assert.deepEqual([s(3).state, s(3).shutdownReason], ["shutdown", "poweroff"]);
    assert.deepEqual([s(4).state, s(4).shutdownReason], ["shutdown", "reboot"]);
    assert.equal(s(5).state, "crashed", JSON.stringify(s(5)));
    for (const i of [1, 2, 6, 7, 8, 9, 10]) await taps[i - 1]!.run(`echo ALIVE-${i}`, new RegExp(`^ALIVE-${i}\\r?$`, "m"));
    const evs = c.events.map((e) => `${e.domid}:${e.event === "domain" ? e.state : e.event}`);
    for (const e of ["2:paused", "2:running", "3:shutdown", "4:shutdown", "5:crashed"]) assert.ok(evs.includes(e), `event ${e} in ${evs}`);

    // Destroy: nodes and frames go.
    const free0 = (await c.ok<HostInfo>("info")).freeMemoryMiB;
    await c.ok("destroy", { domid: 5 });
    assert.ok(!xs("xenstore-list", "/local/domain").split("\n").includes("5"));
    assert.ok((await c.ok<HostInfo>("info")).freeMemoryMiB >= free0 + MEM - 2);
    for (const id of ids) if (id !== 5) await c.ok("destroy", { domid: id });
    assert.deepEqual(xs("xenstore-list", "/local/domain").split("\n"), ["0"]);
    assert.equal((await c.ok<HostInfo>("info")).freeMemoryMiB, 2048);
    assert.equal((await c.ok<DomainInfo[]>("list")).length, 1);
    assert.equal((await c.ok<HostInfo>("info")).vmThreads, 0, "no thread holds a domain after the last is destroyed (one may stay as the spare)");
    assert.equal(hv.exitCode, null, "the hypervisor is still up");
  } finally {
    for (const t of taps) t.close();
    c?.close();
    await stopHv(hv, dir);
    if (process.env.XENO_TEST_VERBOSE) process.stderr.write(log);
  }
});
