/**
 * `xeno migrate-receive` when the machine cannot be built from a stream it read and checked. The receiver
 * answers "domain received, ready to unpause" before its hypervisor built the machine (the build runs beside the
 * ready → go-ahead handshake), so a build that fails shows in the unpause after the go-ahead: xl_migrate.c's
 * unpause-failed path. This test is the sender (no guest boots): it sends a well-framed stream whose board state
 * the machine refuses (version 99), then the go-ahead, and checks that the receiver reports failure (status 1),
 * gives the sender permission to resume ("domain is yours…" back), exits 1 and leaves no domain and no frames
 * behind (the hypervisor's list and free memory, asked on its own socket).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DomainInfo, HostInfo } from "../../src/hv/protocol.js";
import { HvClient } from "./hv-client.js";
import { writeSave, PAGE_SIZE } from "../../src/hv/save-format.js";
import { MIGRATE_BANNER, MIGRATE_GO, MIGRATE_READY, MIGRATE_REPORT } from "../../src/cli/xl/cmd-migrate.js";
import { CLI, xeno } from "./xeno-cli.js";

const UUID = "0c7d2a31-5b8e-4f60-9a1b-2c3d4e5f6a7b";

/** A save stream of a 64 MiB DomU (domid 3) whose board state no build reads. */
async function badStream(): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  const node = (path: string, v: string): unknown => ({ path, value: Uint8Array.from(Buffer.from(v)), perms: ["n0"] });
  const store = { version: 1, guest: { watches: [], replies: [] }, nodes: [node("/local/domain/3/name", "ghost"),
    node("/local/domain/3/store/ring-ref", "16383"), node("/local/domain/3/store/port", "1")] };
  const state = { version: 1, domid: 3, snapshot: { version: 1, board: { version: 99 }, p2m: { pages: 16128 }, xen: {}, pv: {} }, store };
  const config = { name: "ghost", uuid: UUID, memMiB: 64, vcpus: 1, kernel: "/nonexistent", cmdline: "", xen: true, disks: [], vifs: [] };
  const ramPages = 64 * 256 + 256;
  const ram = new Uint8Array(ramPages * PAGE_SIZE);
  ram[12345] = 7;
  await writeSave({ write: (b) => { parts.push(Uint8Array.from(b)); return Promise.resolve(); } }, { config, ramPages, vcpus: 1, state }, ram);
  return Buffer.concat(parts);
}

test("migrate-receive: a machine that cannot be built after 'ready' fails the unpause; the sender may resume; nothing is left", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-migfail-"));
  let c: HvClient | undefined;
  try {
    assert.equal((await xeno(dir, ["list"])).code, 0, "the daemons start");
    c = await HvClient.connect(join(dir, "hv.sock"));
    const free0 = (await c.ok<HostInfo>("info")).freeMemoryMiB;
    const stream = await badStream();
    const rx = spawn(process.execPath, [CLI, "migrate-receive"], { env: { ...process.env, XENO_RUN_DIR: dir }, stdio: ["pipe", "pipe", "pipe"] });
    let out = Buffer.alloc(0), err = "";
    rx.stdout.on("data", (b: Buffer) => { out = Buffer.concat([out, b]); });
    rx.stderr.on("data", (b: Buffer) => { err += b.toString(); });
    const exited = new Promise<number | null>((r) => rx.on("exit", (code) => r(code)));
    const until = async (want: Buffer, what: string): Promise<void> => {
      const end = Date.now() + 60_000;
      while (out.indexOf(want) < 0) {
        if (Date.now() > end) throw new Error(`${what} did not come; stdout ${JSON.stringify(out.toString("latin1"))}, stderr:\n${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(MIGRATE_BANNER, "the receiver's banner");
    rx.stdin.write(stream);
    await until(MIGRATE_READY, "the receiver's ready message (answered before the build)");
    rx.stdin.write(MIGRATE_GO);
    const report = Buffer.concat([MIGRATE_REPORT, Buffer.from([1])]);
    await until(report, "the report with status 1");
    await until(Buffer.concat([report, MIGRATE_GO]), "the receiver's permission to resume");
    rx.stdin.end();
    assert.equal(await exited, 1, `migrate-receive exits 1:\n${err}`);
    assert.match(err, /could not be built, nothing runs: .*board state: version: 99/);
    assert.match(err, /Failure, destroying our copy\.\n.*Cleanup OK, granting sender permission to resume\./s);
    process.stderr.write(`# migrate-receive said:\n${err.replace(/^/gm, "#   ")}\n`);
    const list = await c.ok<DomainInfo[]>("list");
    assert.deepEqual(list.filter((d) => d.domid !== 0).map((d) => d.name), [], "no domain left");
    assert.equal((await c.ok<HostInfo>("info")).freeMemoryMiB, free0, "no frames kept");
  } finally {
    c?.close();
    for (const pid of ["xenod.pid", "hv.pid"]) {
      try { process.kill(Number(readFileSync(join(dir, pid), "utf8")), "SIGTERM"); } catch { /* not started */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
