/**
 * Acceptance of issue 12 with the real client and the real kernel: the README's demo guest booted through
 * `xeno create` (xenod and the hypervisor started on demand, the API on a free port) and driven by Xen
 * Orchestra's connector (npm `xen-api`) logged in with a user and password:
 *  - it loads the objects and sees the running demo VM with its memory (256 MiB) and vCPUs (1);
 *  - `xeno pause demo` from the CLI reaches its cache through event.from as power_state Paused;
 *  - a read-only user is refused VM.hard_shutdown (RBAC_PERMISSION_DENIED), and the audit log has the refusal;
 *    `xeno audit verify` passes, then fails naming the line after that line is edited;
 *  - VM.clean_shutdown returns once the guest has powered off (Halted, gone from `xeno list`); VM.start boots
 *    it again (its console shows the ready marker);
 *  - VM.suspend leaves it Suspended (gone from `xeno list`, VM.start refused); VM.resume brings it back and its
 *    shell answers on the console.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages } from "../../src/images/index.js";
import { linkStableImages } from "../../src/images/stable-links.js";
import { CLI, ROOT } from "../machine/cli-domain.js";
import { makeUsers } from "./api-helpers.js";
import { AUDIT_FILE } from "../../src/api/audit.js";

const BOOT_MS = 8 * 60_000;

async function until<T>(f: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) assert.fail(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("Xen Orchestra's connector drives the demo guest: objects, event.from after xeno pause, RBAC, clean_shutdown, start, suspend, resume", { timeout: 25 * 60_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  await linkStableImages(images.cacheDir);
  const run = mkdtempSync(join(tmpdir(), "xeno-xo-"));
  const apiDir = join(run, "api");
  await makeUsers(apiDir, [["xo", "pool-admin", "xo-pass"], ["auditor", "read-only", "ro-pass"]]);
  const env = { ...process.env, XENO_RUN_DIR: run, XENO_API_LISTEN: "http://127.0.0.1:0", XENO_API_DIR: apiDir };
  const xeno = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });
  const consoleOf = () => {
    const child = spawn(process.execPath, [CLI, "console", "demo"], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    const io = { out: "" };
    child.stdout.setEncoding("latin1").on("data", (d: string) => { io.out += d; });
    return { child, io };
  };
  const { createClient } = await import("xen-api");
  let xapi: import("xen-api").Xapi | undefined;
  try {
    const c = xeno("create", join(ROOT, "examples/demo.cfg"));
    assert.equal(c.status, 0, c.stderr);
    const con = consoleOf();
    await until(() => /XENO-GUEST-READY/.test(con.io.out), BOOT_MS, "first boot");
    con.child.kill();
    const url = (JSON.parse(readFileSync(join(run, "api.json"), "utf8")) as { urls: string[] }).urls[0]!;
    process.stderr.write(`# API at ${url}\n`);

    xapi = createClient({ url, auth: { user: "xo", password: "xo-pass" }, debounce: 50 });
    await xapi.connect();
    await xapi.objectsFetched;
    const demo = Object.values(xapi.objects.all).find((o) => o.$type === "VM" && o.name_label === "demo")!;
    assert.ok(demo, "the demo VM is among the connector's objects");
    assert.equal(demo.power_state, "Running");
    assert.equal(demo.memory_static_max, 256 * 1024 * 1024);
    assert.equal(demo.VCPUs_max, 1);
    const metrics = xapi.getObjectByRef(demo.metrics as string);
    assert.ok((metrics.memory_actual as number) > 0 && (metrics.memory_actual as number) <= 256 * 1024 * 1024, `memory_actual ${String(metrics.memory_actual)}`);
    const dom0 = Object.values(xapi.objects.all).find((o) => o.$type === "VM" && o.is_control_domain === true);
    assert.ok(dom0, "Domain-0 is there, is_control_domain");
    process.stderr.write(`# demo: ${demo.$ref} domid ${String(demo.domid)} memory_static_max ${String(demo.memory_static_max)} VCPUs_max ${String(demo.VCPUs_max)} memory_actual ${String(metrics.memory_actual)}\n`);

    // Paused from the CLI: the connector's cache follows through event.from.
    const t0 = Date.now();
    assert.equal(xeno("pause", "demo").status, 0);
    await until(() => xapi!.getObjectByRef(demo.$ref).power_state === "Paused", 15_000, "Paused through event.from");
    process.stderr.write(`# xeno pause → power_state Paused in the connector's cache after ${Date.now() - t0} ms\n`);
    assert.equal(xeno("unpause", "demo").status, 0);
    await until(() => xapi!.getObjectByRef(demo.$ref).power_state === "Running", 15_000, "Running again through event.from");

    // A read-only user may look, not stop.
    const ro = createClient({ url, auth: { user: "auditor", password: "ro-pass" }, watchEvents: false });
    await ro.connect();
    await assert.rejects(ro.call("VM.hard_shutdown", demo.$ref), (e: { code?: string }) => { assert.equal(e.code, "RBAC_PERMISSION_DENIED"); return true; });
    assert.equal(await ro.call("VM.get_power_state", demo.$ref), "Running");
    await ro.disconnect();

    // clean_shutdown: the guest powers itself off; start: it boots again.
    let t = Date.now();
    await xapi.call("VM.clean_shutdown", demo.$ref);
    process.stderr.write(`# VM.clean_shutdown returned after ${Date.now() - t} ms\n`);
    assert.equal(await xapi.call("VM.get_power_state", demo.$ref), "Halted");
    assert.doesNotMatch(xeno("list").stdout, /^demo\s/m);
    t = Date.now();
    await xapi.call("VM.start", demo.$ref, false, false);
    process.stderr.write(`# VM.start returned after ${Date.now() - t} ms\n`);
    assert.equal(await xapi.call("VM.get_power_state", demo.$ref), "Running");
    assert.match(xeno("list").stdout, /^demo\s/m);
    const con2 = consoleOf();
    await until(() => /XENO-GUEST-READY/.test(con2.io.out), BOOT_MS, "boot after VM.start");
    con2.child.kill();
    await until(() => xapi!.getObjectByRef(demo.$ref).power_state === "Running", 15_000, "Running in the cache");

    // suspend: the domain's state to a save file, gone from the hypervisor; resume: back, its shell alive.
    t = Date.now();
    await xapi.call("VM.suspend", demo.$ref);
    process.stderr.write(`# VM.suspend returned after ${Date.now() - t} ms\n`);
    assert.equal(await xapi.call("VM.get_power_state", demo.$ref), "Suspended");
    assert.doesNotMatch(xeno("list").stdout, /^demo\s/m);
    await until(() => xapi!.getObjectByRef(demo.$ref).power_state === "Suspended", 15_000, "Suspended in the cache");
    await assert.rejects(xapi.call("VM.start", demo.$ref, false, false), (e: { code?: string }) => e.code === "VM_BAD_POWER_STATE");
    t = Date.now();
    await xapi.call("VM.resume", demo.$ref, false, false);
    process.stderr.write(`# VM.resume returned after ${Date.now() - t} ms\n`);
    assert.equal(await xapi.call("VM.get_power_state", demo.$ref), "Running");
    const con3 = spawn(process.execPath, [CLI, "console", "demo"], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    let out3 = "";
    con3.stdout.setEncoding("latin1").on("data", (d: string) => { out3 += d; });
    await new Promise((r) => setTimeout(r, 1000));
    con3.stdin.write("echo RESUMED-$((40+2))\n");
    await until(() => /RESUMED-42/.test(out3), 120_000, "the resumed guest's shell answers");
    con3.kill();
    await xapi.call("VM.hard_shutdown", demo.$ref);

    const audit = readFileSync(join(apiDir, AUDIT_FILE), "utf8");
    assert.match(audit, /"method":"VM.hard_shutdown".*"result":"RBAC_PERMISSION_DENIED/);
    assert.match(audit, /"method":"VM.clean_shutdown".*"result":"ok"/);
    let v = xeno("audit", "verify");
    assert.equal(v.status, 0, v.stdout + v.stderr);
    // One line edited (the refusal turned into a success): verify fails naming it.
    const lines = audit.split("\n");
    const at = lines.findIndex((l) => l.includes('"method":"VM.hard_shutdown"') && l.includes("RBAC_PERMISSION_DENIED"));
    lines[at] = lines[at]!.replace(/"result":"RBAC_PERMISSION_DENIED[^"]*"/, '"result":"ok"');
    writeFileSync(join(apiDir, AUDIT_FILE), lines.join("\n"));
    v = xeno("audit", "verify");
    assert.equal(v.status, 1, v.stdout);
    assert.match(v.stdout, new RegExp(`line ${at + 1} \\(seq \\d+\\): its hash does not match its contents \\(edited\\)`));
    process.stderr.write(`# audit verify after editing line ${at + 1}: ${v.stdout.trim().split("\n").slice(1).join(" | ")}\n`);
  } finally {
    await xapi?.disconnect();
    for (const f of ["xenod.pid", "hv.pid"]) {
      const pf = join(run, f);
      if (existsSync(pf)) { try { process.kill(Number(readFileSync(pf, "utf8").trim()), "SIGTERM"); } catch { /* gone */ } }
    }
    await new Promise((r) => setTimeout(r, 1500));
    rmSync(run, { recursive: true, force: true });
  }
});
