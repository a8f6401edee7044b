/**
 * xenod against the stand-in hypervisor (fake-hv.ts) over real unix sockets in a temporary run directory:
 * forwarding, console piping, policies on events and at startup, losing and regaining the hypervisor, and the
 * daemon process itself (second instance refused, stale socket replaced, SIGTERM, starting the hypervisor,
 * client autostart).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import type { Duplex } from "node:stream";
import type { DomainSpec, Event, ToolstackData } from "../../src/hv/protocol.js";
import { connectXenod, ToolstackError, XENOD_MAIN } from "../../src/toolstack/client.js";
import { Xenod } from "../../src/toolstack/daemon.js";
import { connectUnix, encodeLine, LineBuffer } from "../../src/toolstack/wire.js";
import { FakeHv } from "./fake-hv.js";

const FAKE_HV_MAIN = fileURLToPath(new URL("./fake-hv.js", import.meta.url));
const dirs: string[] = [];
const pids: number[] = [];
after(() => {
  for (const p of pids) { try { process.kill(p, "SIGKILL"); } catch { /* gone */ } }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function runDir(): string {
  const d = mkdtempSync(join(tmpdir(), "xenod-"));
  dirs.push(d);
  return d;
}

function spec(name: string, toolstack?: ToolstackData): DomainSpec {
  return { name, memMiB: 128, vcpus: 1, kernel: "/boot/Image", cmdline: "console=hvc0", xen: true, disks: [], vifs: [], toolstack };
}

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An in-process xenod whose log lines are kept. */
async function startXenod(dir: string): Promise<{ x: Xenod; log: string[] }> {
  const log: string[] = [];
  const x = await Xenod.start({ runDir: dir, log: (l) => log.push(l), hvMain: false });
  return { x, log };
}

function collect(stream: Duplex): { text: () => string; ended: Promise<void> } {
  let buf = "";
  stream.on("data", (b: Buffer) => { buf += b.toString("latin1"); });
  const ended = new Promise<void>((r) => stream.on("close", () => r()));
  return { text: () => buf, ended };
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => { assert.ok(e instanceof ToolstackError, String(e)); assert.equal(e.code, code); return true; });
}

test("xenod forwards requests and relays answers and errors", async () => {
  const dir = runDir();
  const hv = new FakeHv(dir);
  await hv.start();
  const { x } = await startXenod(dir);
  const c = await connectXenod({ runDir: dir });
  try {
    const { domid } = await c.request("create", { spec: spec("web") });
    assert.equal(domid, 1);
    const list = await c.request("list");
    assert.deepEqual(list.map((d) => [d.domid, d.name, d.state]), [[1, "web", "running"]]);
    // A create without policies is given xl's defaults, kept by the hypervisor.
    assert.deepEqual(list[0]!.spec.toolstack, { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" });
    assert.equal((await c.request("info")).host, "fake");
    assert.deepEqual(await c.request("dmesg"), ["(XEN) fake hypervisor"]);
    assert.equal(await c.request("pause", { domid }), null);
    await expectCode(c.request("pause", { domid }), "ESTATE");
    await expectCode(c.request("destroy", { domid: 42 }), "ENOENT_DOMAIN");
    await expectCode(c.request("create", { spec: spec("web") }), "EEXIST_NAME");
    await expectCode(c.request("console", { domid }), "EINVAL");

    // Raw clients: ids are the client's own (even when two clients use the same ones), unknown ops reach the
    // hypervisor, garbage gets EINVAL without closing the connection.
    const raw = await Promise.all([connectUnix(x.socketPath), connectUnix(x.socketPath)]);
    const answers = raw.map((s) => {
      const lines = new LineBuffer();
      const got: unknown[] = [];
      s.on("data", (b: Buffer) => { lines.feed(b); for (let l = lines.next(); l !== null; l = lines.next()) got.push(JSON.parse(l)); });
      return got;
    });
    raw[0]!.write(encodeLine({ id: 7, op: "list" }) + encodeLine({ id: 8, op: "frobnicate" }) + "not json\n" + encodeLine({ id: 9, op: "info" }));
    raw[1]!.write(encodeLine({ id: 7, op: "unpause", domid }));
    await until("answers", () => answers[0]!.length === 4 && answers[1]!.length === 1);
    type Answer = { id: number; ok: boolean; error?: { code: string } };
    const byId = new Map((answers[0] as Answer[]).map((a) => [a.id, a]));
    assert.equal(byId.get(7)?.ok, true);
    assert.equal(byId.get(8)?.error?.code, "ENOSYS");
    assert.equal(byId.get(-1)?.error?.code, "EINVAL");
    assert.equal(byId.get(9)?.ok, true);
    assert.deepEqual(answers[1], [{ id: 7, ok: true, result: null }]);
    // The hypervisor saw xenod's ids, not the clients'.
    assert.ok(hv.requests.some((r) => r.op === "frobnicate" as string));
    for (const s of raw) s.destroy();
  } finally {
    c.close();
    await x.stop();
    await hv.stop();
  }
});

test("xenod relays events to subscribed clients", async () => {
  const dir = runDir();
  const hv = new FakeHv(dir);
  await hv.start();
  const { x } = await startXenod(dir);
  const c = await connectXenod({ runDir: dir });
  try {
    const events: Event[] = [];
    await c.subscribe((e) => events.push(e));
    const { domid } = await c.request("create", { spec: spec("ev", { onPoweroff: "preserve", onReboot: "restart", onCrash: "destroy" }) });
    await c.request("shutdown", { domid, reason: "poweroff" });
    await until("shutdown event", () => events.some((e) => e.event === "domain" && e.domid === domid && e.state === "shutdown"));
    assert.deepEqual(events.map((e) => e.event === "domain" ? e.state : e.event), ["running", "shutdown"]);
  } finally {
    c.close();
    await x.stop();
    await hv.stop();
  }
});

test("xenod pipes a console both ways and propagates closes", async () => {
  const dir = runDir();
  const hv = new FakeHv(dir);
  await hv.start();
  const { x } = await startXenod(dir);
  const c = await connectXenod({ runDir: dir });
  try {
    const { domid } = await c.request("create", { spec: spec("con") });
    hv.emitConsole(domid, "Debian login banner\r\n");
    await expectCode(c.openConsole(99), "ENOENT_DOMAIN");

    const con = await c.openConsole(domid, { replay: true });
    const out = collect(con);
    await until("replay", () => out.text().includes("Debian login banner"));
    con.write("echo hi\n");
    await until("input at the guest", () => hv.domains.get(domid)!.input === "echo hi\n");
    hv.emitConsole(domid, "hi\r\n\x00\xff binary-safe\r\n");
    await until("output at the client", () => out.text().includes("hi\r\n\x00\xff binary-safe"));
    // The control connection keeps working alongside.
    assert.equal((await c.request("list")).length, 1);

    // Client closes → the hypervisor's console connection closes.
    con.end();
    await out.ended;
    await until("hypervisor side closed", () => hv.domains.get(domid)!.consoles.size === 0);

    // Hypervisor closes (domain destroyed) → the client's stream ends.
    const con2 = await c.openConsole(domid);
    const out2 = collect(con2);
    con2.write("x");
    await until("second console attached", () => hv.domains.get(domid)!.input.endsWith("x"));
    assert.ok(!out2.text().includes("banner"), "no replay unless asked");
    await c.request("destroy", { domid });
    await out2.ended;

    // A console request followed at once by bytes in the same write: the bytes reach the guest.
    const { domid: d2 } = await c.request("create", { spec: spec("con2") });
    const s = await connectUnix(x.socketPath);
    s.write(encodeLine({ id: 1, op: "console", domid: d2 }) + "typed-ahead\n");
    await until("typed-ahead input", () => hv.domains.get(d2)!.input === "typed-ahead\n");
    s.destroy();
    // A refused console leaves the connection a protocol connection: later lines are still answered.
    const s2 = await connectUnix(x.socketPath);
    let got = "";
    s2.on("data", (b: Buffer) => { got += b.toString(); });
    s2.write(encodeLine({ id: 1, op: "console", domid: 77 }) + encodeLine({ id: 2, op: "list" }));
    await until("both answers", () => got.split("\n").length >= 3);
    const [a1, a2] = got.trim().split("\n").map((l) => JSON.parse(l) as { id: number; ok: boolean; error?: { code: string } });
    assert.deepEqual([a1!.id, a1!.ok, a1!.error?.code], [1, false, "ENOENT_DOMAIN"]);
    assert.deepEqual([a2!.id, a2!.ok], [2, true]);
    s2.destroy();
  } finally {
    c.close();
    await x.stop();
    await hv.stop();
  }
});

test("xenod applies on_poweroff / on_reboot / on_crash to events", async () => {
  const dir = runDir();
  const hv = new FakeHv(dir);
  await hv.start();
  const { x, log } = await startXenod(dir);
  const c = await connectXenod({ runDir: dir });
  try {
    const ts: ToolstackData = { onPoweroff: "destroy", onReboot: "restart", onCrash: "restart" };
    const web = await c.request("create", { spec: { ...spec("web", ts), uuid: "00000000-0000-4000-8000-000000000001" } });

    // reboot → restart: same name and uuid, new domid.
    hv.stopDomain(web.domid, "shutdown", "reboot");
    const again = await until("restarted web", async () => (await c.request("list")).find((d) => d.name === "web" && d.domid !== web.domid));
    assert.equal(again.uuid, "00000000-0000-4000-8000-000000000001");
    assert.equal(again.state, "running");
    assert.ok(!hv.domains.has(web.domid), "the old domain is destroyed");
    await until("log", () => log.includes(`domain ${web.domid} (web) rebooted: restarted as domain ${again.domid} (on_reboot=restart)`));

    // A crash right after that restart: not restarted again (crash-loop guard), destroyed.
    hv.stopDomain(again.domid, "crashed", "crash");
    await until("crash-loop destroy", () => !hv.domains.has(again.domid));
    await x.supervisor.idle();
    assert.equal((await c.request("list")).length, 0);
    assert.ok(log.some((l) => l.startsWith(`domain ${again.domid} (web) crashed: destroyed, not restarted`)), log.join("\n"));

    // poweroff → destroy.
    const db = await c.request("create", { spec: spec("db", ts) });
    await c.request("shutdown", { domid: db.domid, reason: "poweroff" });
    await until("destroyed db", () => !hv.domains.has(db.domid));
    await until("log", () => log.includes(`domain ${db.domid} (db) powered off: destroyed (on_poweroff=destroy)`));

    // preserve and suspend: left as they are (and logged once).
    const keep = await c.request("create", { spec: spec("keep", { onPoweroff: "preserve", onReboot: "rename-restart", onCrash: "destroy" }) });
    hv.stopDomain(keep.domid, "shutdown", "poweroff");
    await until("log", () => log.some((l) => l.startsWith(`domain ${keep.domid} (keep) powered off: preserved`)));
    hv.stopDomain(keep.domid, "shutdown", "poweroff");
    await x.supervisor.idle();
    assert.equal(log.filter((l) => l.startsWith(`domain ${keep.domid} (keep)`)).length, 1);
    assert.equal(hv.domains.get(keep.domid)!.info.state, "shutdown");

    // rename-restart: the stopped one is kept under a new name with preserve policies; a new one starts.
    const r = await c.request("create", { spec: spec("rr", { onPoweroff: "destroy", onReboot: "rename-restart", onCrash: "destroy" }) });
    hv.stopDomain(r.domid, "shutdown", "reboot");
    const fresh = await until("new rr", async () => (await c.request("list")).find((d) => d.name === "rr" && d.domid !== r.domid));
    const old = hv.domains.get(r.domid)!.info;
    assert.match(old.name, /^rr-\d{8}T\d{4}Z$/);
    assert.equal(old.spec.toolstack?.onReboot, "preserve");
    assert.notEqual(fresh.uuid, old.uuid);
    await until("log", () => log.some((l) => l.startsWith(`domain ${r.domid} (rr) rebooted: kept as ${old.name}, restarted as domain ${fresh.domid}`)));
    // A second rename-restart within the same minute gets the domid appended to the taken name.
    hv.stopDomain(fresh.domid, "shutdown", "reboot");
    await until("second kept name", () => hv.domains.get(fresh.domid)?.info.name === `${old.name}-${fresh.domid}`);
    await x.supervisor.idle();
  } finally {
    c.close();
    await x.stop();
    await hv.stop();
  }
});

test("a restarted xenod handles domains that stopped while it was away", async () => {
  const dir = runDir();
  const hv = new FakeHv(dir);
  await hv.start();
  let { x, log } = await startXenod(dir);
  const running = hv.addDomain(spec("stays"), "running");
  const off = hv.addDomain(spec("off", { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" }));
  const reboot = hv.addDomain(spec("reb", { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" }), "running", Date.now() / 1000 - 100);
  const crashed = hv.addDomain(spec("cr", { onPoweroff: "destroy", onReboot: "restart", onCrash: "restart" }), "running", Date.now() / 1000 - 100);
  await x.stop();
  assert.ok(!existsSync(x.socketPath), "socket file removed on stop");
  assert.ok(hv.domains.has(running.domid), "stopping xenod leaves domains alone");

  hv.stopDomain(off.domid, "shutdown", "poweroff");
  hv.stopDomain(reboot.domid, "shutdown", "reboot");
  hv.stopDomain(crashed.domid, "crashed", "crash");
  ({ x, log } = await startXenod(dir));
  try {
    await until("policies applied", () => log.length >= 3 && [off, reboot, crashed].every((d) => !hv.domains.has(d.domid)));
    await x.supervisor.idle();
    const names = [...hv.domains.values()].map((d) => `${d.info.name}:${d.info.state}`).sort();
    assert.deepEqual(names, ["cr:running", "reb:running", "stays:running"]);
    assert.ok(log.some((l) => l.includes(`domain ${off.domid} (off) powered off: destroyed`)), log.join("\n"));
    assert.ok(log.some((l) => l.includes(`domain ${crashed.domid} (cr) crashed: restarted as domain`)), log.join("\n"));
  } finally {
    await x.stop();
    await hv.stop();
  }
});

test("xenod survives losing the hypervisor and reconnects", async () => {
  const dir = runDir();
  let hv = new FakeHv(dir);
  await hv.start();
  const { x, log } = await startXenod(dir);
  const c = await connectXenod({ runDir: dir });
  try {
    const { domid } = await c.request("create", { spec: spec("a") });
    const con = await c.openConsole(domid);
    const out = collect(con);
    const domains = hv.domains;
    await hv.stop();
    await out.ended; // the console closes with the hypervisor's connection
    await until("link down", () => !x.hv.up);
    await expectCode(c.request("list"), "EHVDOWN");
    await expectCode(c.openConsole(domid), "EHVDOWN");
    assert.ok(log.some((l) => l.startsWith("lost the connection to the hypervisor")));

    // The hypervisor comes back (same domains, one of which stopped meanwhile): xenod reconnects, subscribes
    // again and catches up.
    hv = new FakeHv(dir);
    for (const [k, v] of domains) hv.domains.set(k, v);
    hv.nextDomid = Math.max(...domains.keys()) + 1;
    const stopped = hv.addDomain(spec("b", { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" }));
    stopped.state = "shutdown";
    stopped.shutdownReason = "poweroff";
    await hv.start();
    await until("reconnected", async () => x.hv.up && hv.subscriberCount === 1, 10_000);
    await until("caught up", () => !hv.domains.has(stopped.domid));
    assert.deepEqual((await c.request("list")).map((d) => d.name), ["a"]);
    assert.ok(log.includes("reconnected to the hypervisor"));
    // Events flow again.
    hv.stopDomain(domid, "shutdown", "poweroff");
    await until("destroyed after reconnect", () => !hv.domains.has(domid));
  } finally {
    c.close();
    await x.stop();
    await hv.stop();
  }
});

// ---- the daemon process ----

function startProcess(args: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; err: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [XENOD_MAIN, ...args], { stdio: ["ignore", "ignore", "pipe"], env });
  pids.push(child.pid!);
  let err = "";
  child.stderr!.on("data", (b: Buffer) => { err += b.toString(); });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, err: () => err, exited };
}

test("xenod process: starts the hypervisor, refuses a second instance, replaces a stale socket, stops on SIGTERM", async () => {
  const dir = runDir();
  const a = startProcess(["--run-dir", dir, "--foreground", "--hv", FAKE_HV_MAIN]);
  const c = await until("xenod up", async () => { try { return await connectXenod({ runDir: dir }); } catch { return undefined; } }, 15_000);
  const hvPid = Number(readFileSync(join(dir, "hv.pid"), "utf8"));
  pids.push(hvPid);
  const { domid } = await c.request("create", { spec: spec("p") });
  c.close();
  assert.match(readFileSync(join(dir, "hv.log"), "utf8"), /fake-hv: listening/);
  assert.match(a.err(), /started the hypervisor \(pid \d+/);

  // A second xenod for the same directory refuses with status 3 (both in the foreground and detached).
  const b = startProcess(["--run-dir", dir, "--foreground"]);
  assert.equal(await b.exited, 3);
  assert.match(b.err(), /already serving .*xenod\.sock/);
  const b2 = startProcess(["--run-dir", dir]);
  assert.equal(await b2.exited, 3);

  // Killed outright, xenod leaves its socket file behind; the next one replaces it and finds the domain.
  a.child.kill("SIGKILL");
  await a.exited;
  assert.ok(existsSync(join(dir, "xenod.sock")));
  const d = startProcess(["--run-dir", dir, "--foreground", "--hv", "/nonexistent"]);
  const c2 = await until("second xenod up", async () => { try { return await connectXenod({ runDir: dir }); } catch { return undefined; } }, 15_000);
  assert.deepEqual((await c2.request("list")).map((x) => x.domid), [domid]);
  c2.close();
  assert.equal(Number(readFileSync(join(dir, "xenod.pid"), "utf8")), d.child.pid);

  // SIGTERM: clean exit, socket and pid file removed, the hypervisor (and its domain) still there.
  d.child.kill("SIGTERM");
  assert.equal(await d.exited, 0);
  assert.ok(!existsSync(join(dir, "xenod.sock")));
  assert.ok(!existsSync(join(dir, "xenod.pid")));
  process.kill(hvPid, 0);

  // Client autostart: a detached xenod comes up (finding the running hypervisor) and answers.
  const c3 = await connectXenod({ runDir: dir, autostart: true });
  assert.deepEqual((await c3.request("list")).map((x) => x.domid), [domid]);
  c3.close();
  const xpid = Number(readFileSync(join(dir, "xenod.pid"), "utf8"));
  pids.push(xpid);
  assert.match(readFileSync(join(dir, "xenod.log"), "utf8"), /serving .*xenod\.sock/);
  process.kill(xpid, "SIGTERM");
  await until("detached xenod gone", () => !existsSync(join(dir, "xenod.sock")));
  process.kill(hvPid, "SIGTERM");
});

test("xenod process: a hypervisor that does not come up is reported with its log", async () => {
  const dir = runDir();
  const bad = join(dir, "bad-hv.mjs");
  (await import("node:fs")).writeFileSync(bad, "console.error('hv: cannot map the frame pool'); process.exit(4);\n");
  const a = startProcess(["--run-dir", dir, "--foreground", "--hv", bad]);
  assert.equal(await a.exited, 1);
  assert.match(a.err(), /the hypervisor exited \(code 4\).*\n.*hv: cannot map the frame pool/);
  assert.ok(!existsSync(join(dir, "xenod.sock")));
});

test("client: no xenod and no autostart is ECONN", async () => {
  await expectCode(connectXenod({ runDir: runDir() }), "ECONN");
});
