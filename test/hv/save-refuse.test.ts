/**
 * Restores the hypervisor process refuses, without booting a guest: well-framed save files (written by
 * writeSave, checksum right) whose contents do not fit — more memory than the pool has, a machine state the
 * domain's restore refuses, a XenStore part naming another domain, a domid out of range. Each is answered
 * with its error code and leaves nothing: no domain in `list`, the pool's free memory unchanged, no nodes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DomainInfo, HostInfo } from "../../src/hv/protocol.js";
import { writeSave, PAGE_SIZE } from "../../src/hv/save-format.js";
import { HvClient, stopHv } from "./hv-client.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const UUID = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

async function saveFile(path: string, memMiB: number, state: unknown, disks: unknown[] = []): Promise<void> {
  const parts: Uint8Array[] = [];
  const config = { name: "ghost", uuid: UUID, memMiB, vcpus: 1, kernel: "/nonexistent", cmdline: "", xen: true, disks, vifs: [] };
  const ramPages = memMiB * 256 + 256; // a Xen DomU's board RAM: its memory, then the 1 MiB Xen area
  const ram = new Uint8Array(ramPages * PAGE_SIZE);
  ram[12345] = 7; // one page with data
  await writeSave({ write: (b) => { parts.push(Uint8Array.from(b)); return Promise.resolve(); } }, { config, ramPages, vcpus: 1, state }, ram);
  writeFileSync(path, Buffer.concat(parts));
}

test("restores whose contents do not fit are refused with nothing left behind", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-refuse-"));
  const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "256"], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  hv.stderr!.on("data", (d) => { log += d; });
  const sock = join(dir, "hv.sock");
  let c: HvClient | undefined;
  try {
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
    c = await HvClient.connect(sock);
    const free0 = (await c.ok<HostInfo>("info")).freeMemoryMiB;
    const node = (path: string, v: string): unknown => ({ path, value: Uint8Array.from(Buffer.from(v)), perms: ["n0"] });
    const store = (domid: number): unknown => ({ version: 1, guest: { watches: [], replies: [] }, nodes: [node(`/local/domain/${domid}/name`, "ghost"),
      node(`/local/domain/${domid}/store/ring-ref`, "16383"), node(`/local/domain/${domid}/store/port`, "1")] });
    const cases: [string, number, unknown, string, RegExp][] = [
      ["big", 1024, { version: 1, domid: 3, snapshot: {}, store: store(3) }, "ENOMEM", /only \d+ MiB .* free/],
      ["state", 64, { version: 1, domid: 3, snapshot: { version: 1, board: { version: 99 }, p2m: { pages: 16128 }, xen: {}, pv: {} }, store: store(3) }, "EBUILD", /state/],
      ["p2m", 64, { version: 1, domid: 3, snapshot: { version: 1, p2m: { pages: 1e9 } }, store: store(3) }, "EFORMAT", /P2M/],
      ["store", 64, { version: 1, domid: 3, snapshot: { version: 1, p2m: { pages: 1 } }, store: store(4) }, "EFORMAT", /outside domain 3/],
      ["nostore", 64, { version: 1, domid: 3, snapshot: { version: 1, p2m: { pages: 1 } }, store: { version: 1, nodes: [], guest: { watches: [], replies: [] } } }, "EFORMAT", /no number at \/local\/domain\/3\/store\/ring-ref/],
      ["domid", 64, { version: 1, domid: 0, snapshot: {}, store: store(0) }, "EFORMAT", /domid/],
      // A suspend naming a vCPU the domain does not have (the guest has one: vCPU 0).
      ["suspended", 64, { version: 1, domid: 3, snapshot: { version: 1, p2m: { pages: 1 } }, store: store(3), suspended: { vcpu: 1 } }, "EFORMAT", /suspend names vCPU 1/],
    ];
    for (const [name, mem, state, code, re] of cases) {
      const path = join(dir, `${name}.xeno`);
      await saveFile(path, mem, state);
      const r = await c.call("restore", { path });
      assert.equal(r.ok, false, name);
      const err: { code: string; message: string } = (r as { error: { code: string; message: string } }).error;
      assert.equal(err.code, code, `${name}: ${err.message}`);
      assert.match(err.message, re, name);
      process.stderr.write(`# ${name}: ${err.code} ${err.message.slice(0, 160)}\n`);
      assert.equal((await c.ok<DomainInfo[]>("list")).length, 1, `${name}: nothing left running`);
      assert.equal((await c.ok<HostInfo>("info")).freeMemoryMiB, free0, `${name}: no frames kept`);
      // The thread started for the refused domain is kept as the spare, and the next restore takes it again.
      const hi: HostInfo = await c.ok<HostInfo>("info");
      assert.equal(hi.vmThreads, 0, `${name}: no thread holds a domain`);
      if (hi.vmThreadsStarted! > 0) assert.equal(hi.vmSpareThread, true, `${name}: the thread is kept as the spare`);
      assert.ok(hi.vmThreadsStarted! <= 1, `${name}: the spare was taken again (${hi.vmThreadsStarted} threads started)`);
    }
    assert.equal((await c.ok<HostInfo>("info")).vmThreadsStarted, 1, "one thread started for every restore");
    // A restore answered before its build (`received`, as xeno migrate-receive asks): the answer comes with a
    // domid while the worker builds; the machine refuses the state, so the unpause that waits for the build
    // fails (EBUILD: xl's unpause-failed path, the migration's source resumes) and nothing is left — the
    // destroy that migrate-receive then asks for finds no domain.
    {
      const path = join(dir, "state.xeno");
      const early = await c.call("restore", { path, received: true });
      assert.equal(early.ok, false, "received without paused is refused");
      assert.equal((early as { error: { code: string } }).error.code, "EINVAL");
      const r = await c.ok<{ domid: number; timing: { builtAt: number | null; storeMs: number } }>("restore", { path, paused: true, received: true, name: "ghost--incoming" });
      assert.equal(r.domid, 3);
      assert.equal(r.timing.builtAt, null, "answered before the build (builtAt NaN, null in JSON)");
      const u = await c.call("unpause", { domid: 3, report: true, name: "ghost" });
      assert.equal(u.ok, false, "the unpause of a domain whose build failed fails");
      const err = (u as { error: { code: string; message: string } }).error;
      assert.equal(err.code, "EBUILD", err.message);
      assert.match(err.message, /could not be built, nothing runs: .*state/);
      process.stderr.write(`# received, build refused: ${err.code} ${err.message.slice(0, 160)}\n`);
      const gone = await c.call("destroy", { domid: 3 });
      assert.equal((gone as { error: { code: string } }).error.code, "ENOENT_DOMAIN");
      assert.equal((await c.ok<DomainInfo[]>("list")).length, 1, "received: nothing left running");
      const hi: HostInfo = await c.ok<HostInfo>("info");
      assert.equal(hi.freeMemoryMiB, free0, "received: no frames kept");
      assert.equal(hi.vmThreads, 0, "received: no thread holds a domain");
    }
    // Host files as harden checks them for create: a save file or a restored disk that is a FIFO or a directory
    // is refused at once (opened without blocking), and a request without a usable path by the schema.
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const withFifoDisk = join(dir, "fifo-disk.xeno");
    await saveFile(withFifoDisk, 64, { version: 1, domid: 3, snapshot: { version: 1, p2m: { pages: 1 } }, store: store(3) },
      [{ path: fifo, devid: 51712, vdev: "xvda", readOnly: false }]);
    for (const [name, args, code, re] of [
      ["fifo file", { path: fifo }, "EIO", /cannot read save file .*fifo: is a FIFO/],
      ["dir file", { path: dir }, "EIO", /cannot read save file .*: is a directory/],
      ["fifo disk", { path: withFifoDisk }, "EBUILD", /restore of .*fifo-disk\.xeno: disk xvda .*fifo: is a FIFO/],
      ["no path", { path: 42 }, "EINVAL", /^restore: path: expected the save file's path/],
    ] as const) {
      const r = await c.call("restore", args);
      assert.equal(r.ok, false, name);
      const err: { code: string; message: string } = (r as { error: { code: string; message: string } }).error;
      assert.equal(err.code, code, `${name}: ${err.message}`);
      assert.match(err.message, re, name);
      process.stderr.write(`# ${name}: ${err.code} ${err.message.slice(0, 160)}\n`);
      assert.equal((await c.ok<DomainInfo[]>("list")).length, 1, `${name}: nothing left running`);
      assert.equal((await c.ok<HostInfo>("info")).freeMemoryMiB, free0, `${name}: no frames kept`);
    }
  } catch (e) {
    process.stderr.write(`# hypervisor log:\n${log.slice(-3000)}\n`);
    throw e;
  } finally {
    c?.close();
    await stopHv(hv, dir);
  }
});
