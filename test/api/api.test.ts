/**
 * The XenAPI endpoint against a stand-in hypervisor (test/toolstack/fake-hv.ts) under a real xenod, on real
 * HTTP and HTTPS sockets: JSON-RPC and XML-RPC framing, XAPI's errors, objects and event.from, the VM calls,
 * roles, the audit chain; Xen Orchestra's connector (`xen-api`) logs in and loads the objects.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Xenod } from "../../src/toolstack/daemon.js";
import { FakeHv } from "../toolstack/fake-hv.js";
import { fails, jsonRpc, makeUsers, ok, xmlRpc } from "./api-helpers.js";
import { verifyAudit, AUDIT_FILE } from "../../src/api/audit.js";
import { USERS_FILE } from "../../src/api/users.js";
import { spawnSync } from "node:child_process";
import { CLI, ROOT } from "../machine/cli-domain.js";

async function setup(): Promise<{ dir: string; apiDir: string; hv: FakeHv; x: Xenod; url: string; https: string; log: string[]; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "xeno-api-"));
  const apiDir = join(dir, "api");
  const hv = new FakeHv(dir);
  await hv.start();
  hv.nextDomid = 0; // the real hypervisor lists Domain-0 (domid 0): so does this one
  hv.addDomain({ name: "Domain-0", uuid: "00000000-0000-0000-0000-000000000000", memMiB: 300, vcpus: 2, kernel: "", cmdline: "", xen: false, disks: [], vifs: [] });
  hv.addDomain({ name: "web", memMiB: 256, vcpus: 2, kernel: "/k", cmdline: "", xen: true, disks: [{ path: join(dir, "disk.img"), devid: 51712, vdev: "xvda", readOnly: false }], vifs: [{ devid: 0, mac: "00:16:3e:00:00:01", mtu: 1500, bridge: "xenbr0" }], toolstack: { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" } });
  writeFileSync(join(dir, "disk.img"), Buffer.alloc(4096));
  await makeUsers(apiDir, [["admin", "pool-admin", "s3cret"], ["viewer", "read-only", "look"]]);
  const log: string[] = [];
  const x = await Xenod.start({ runDir: dir, log: (l) => log.push(l), hvMain: false, api: { listen: [{ scheme: "http", host: "127.0.0.1", port: 0 }, { scheme: "https", host: "127.0.0.1", port: 0 }], apiDir } });
  const [url, https] = x.api!.urls as [string, string];
  await x.api!.model.refresh();
  return { dir, apiDir, hv, x, url, https, log, close: async () => { await x.stop(); await hv.stop(); rmSync(dir, { recursive: true, force: true }); } };
}

test("JSON-RPC and XML-RPC: login, objects, getters, errors in XAPI's forms", async () => {
  const s = await setup();
  try {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(JSON.parse(readFileSync(join(s.dir, "api.json"), "utf8")).urls, [s.url, s.https]);
    const r = await jsonRpc(s.url, "session.login_with_password", ["admin", "s3cret"]);
    assert.equal(r.type, "application/json"); // exactly: xen-api falls back to XML-RPC on anything else
    const sid = r.body.result as string;
    assert.match(sid, /^OpaqueRef:[0-9a-f-]{36}$/);
    const vms = await ok(s.url, "VM.get_all_records", [sid]) as Record<string, Record<string, unknown>>;
    const byName: Record<string, Record<string, unknown>> = Object.fromEntries(Object.entries(vms).map(([ref, v]) => [v.name_label as string, { ref, ...v }]));
    assert.equal(byName["Domain-0"]!.is_control_domain, true);
    const web = byName.web!;
    assert.equal(web.power_state, "Running");
    assert.equal(web.memory_static_max, 256 * 1024 * 1024);
    assert.equal(web.VCPUs_max, 2);
    assert.equal(web.domid, 1);
    assert.equal((web.VBDs as string[]).length, 1);
    assert.equal(await ok(s.url, "VM.get_power_state", [sid, web.ref]), "Running");
    assert.equal(await ok(s.url, "VM.get_by_uuid", [sid, web.uuid]), web.ref);
    assert.deepEqual(await ok(s.url, "VM.get_by_name_label", [sid, "web"]), [web.ref]);
    const vbd = await ok(s.url, "VBD.get_record", [sid, (web.VBDs as string[])[0]]) as Record<string, unknown>;
    const vdi = await ok(s.url, "VDI.get_record", [sid, vbd.VDI]) as Record<string, unknown>;
    assert.equal(vdi.virtual_size, 4096);
    const vif = await ok(s.url, "VIF.get_record", [sid, (web.VIFs as string[])[0]]) as Record<string, unknown>;
    assert.equal(await ok(s.url, "network.get_bridge", [sid, vif.network]), "xenbr0");
    const pools = await ok(s.url, "pool.get_all_records", [sid]) as Record<string, Record<string, unknown>>;
    const pool = Object.values(pools)[0]!;
    const host = await ok(s.url, "host.get_record", [sid, pool.master]) as Record<string, unknown>;
    assert.equal((await ok(s.url, "host_metrics.get_record", [sid, host.metrics]) as Record<string, unknown>).memory_total, 1024 * 1024 * 1024);
    const methods = await ok(s.url, "system.listMethods", []) as string[];
    for (const m of ["VM.get_all_records", "VM.start", "event.from", "VM.get_power_state", "task.get_all_records"]) assert.ok(methods.includes(m), m);

    // Errors: XAPI codes with their parameters.
    assert.deepEqual((await fails(s.url, "session.login_with_password", ["admin", "wrong"])).slice(0, 2), ["SESSION_AUTHENTICATION_FAILED", "admin"]);
    assert.deepEqual(await fails(s.url, "VM.get_all_records", ["OpaqueRef:nope"]), ["SESSION_INVALID", "OpaqueRef:nope"]);
    assert.deepEqual(await fails(s.url, "VM.get_record", [sid, "OpaqueRef:x"]), ["HANDLE_INVALID", "VM", "OpaqueRef:x"]);
    assert.deepEqual(await fails(s.url, "VM.get_record", [sid]), ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "2", "1"]);
    assert.deepEqual((await fails(s.url, "VM.start", [sid, web.ref, "yes", false])).slice(0, 2), ["FIELD_TYPE_ERROR", "start_paused"]);
    assert.deepEqual(await fails(s.url, "VM.frobnicate", [sid]), ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]);
    assert.deepEqual(await fails(s.url, "VM.start", [sid, web.ref, false, false]), ["VM_BAD_POWER_STATE", web.ref, "halted", "running"]);
    assert.deepEqual((await fails(s.url, "VM.get_by_uuid", [sid, "0"])).slice(0, 2), ["UUID_INVALID", "VM"]);

    // XML-RPC: ints as strings, a Success/Failure struct, text/xml.
    const x = await xmlRpc(s.url, "VM.get_VCPUs_max", [sid, web.ref]);
    assert.equal(x.type, "text/xml");
    assert.match(x.text, /<name>Status<\/name><value>Success<\/value><\/member><member><name>Value<\/name><value><string>2<\/string><\/value>/);
    const xe = await xmlRpc(s.url, "VM.get_record", [sid, "OpaqueRef:x"], "/xmlrpc");
    assert.match(xe.text, /<value>Failure<\/value>.*<value>HANDLE_INVALID<\/value><value>VM<\/value>/s);
    // XML-RPC integers arrive as strings and are accepted where XAPI takes an int.
    assert.match((await xmlRpc(s.url, "VM.set_memory_dynamic_range", [sid, web.ref, String(128 << 20), String(128 << 20)])).text, /Success/);
    assert.equal(s.hv.domains.get(1)!.info.targetKiB, 128 * 1024);

    // HTTPS with the self-signed certificate made on first start.
    assert.equal(statSync(join(s.apiDir, "api-key.pem")).mode & 0o777, 0o600);
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
    try { assert.match(await ok(s.https, "session.login_with_password", ["viewer", "look"]) as string, /^OpaqueRef:/); }
    finally { delete process.env.NODE_TLS_REJECT_UNAUTHORIZED; }
  } finally { await s.close(); }
});

test("event.from: tokens, a change while waiting, timeouts; VM calls; roles; the audit chain", async () => {
  const s = await setup();
  try {
    const sid = await ok(s.url, "session.login_with_password", ["admin", "s3cret"]) as string;
    const ro = await ok(s.url, "session.login_with_password", ["viewer", "look"]) as string;
    const vmRef = ((await ok(s.url, "VM.get_by_name_label", [sid, "web"])) as string[])[0]!;
    const first = await ok(s.url, "event.from", [sid, ["vm"], "", 0]) as { events: { class: string; operation: string }[]; token: string; valid_ref_counts: Record<string, number> };
    assert.ok(first.events.length >= 2 && first.events.every((e) => e.class === "vm" && e.operation === "add"), JSON.stringify(first.events.map((e) => [e.class, e.operation])));
    assert.equal(first.valid_ref_counts.vm, 2);
    const t0 = Date.now();
    const idle = await ok(s.url, "event.from", [sid, ["VM"], first.token, 0.3]) as { events: unknown[]; token: string };
    assert.equal(idle.events.length, 0);
    assert.ok(Date.now() - t0 >= 250, "event.from waited its timeout");
    const waiting = ok(s.url, "event.from", [sid, ["VM"], first.token, 30]);
    await new Promise((r) => setTimeout(r, 100));
    await ok(s.url, "VM.pause", [sid, vmRef]);
    const ev = await waiting as { events: { ref: string; operation: string; snapshot: Record<string, unknown> }[] };
    const mine = ev.events.find((e) => e.ref === vmRef)!;
    assert.equal(mine.operation, "mod");
    assert.equal(mine.snapshot.power_state, "Paused");
    assert.deepEqual(await fails(s.url, "event.from", [sid, ["VM"], "garbage", 1]), ["EVENT_FROM_TOKEN_PARSE_FAILURE", "garbage"]);
    const inj = await ok(s.url, "event.inject", [sid, "VM", vmRef]) as string;
    assert.match(inj, /^\d+$/);
    assert.deepEqual(await fails(s.url, "event.from", [sid, ["VM"], String(Number(inj) + 1000), 1]), ["EVENTS_LOST"], "a token of an earlier xenod");

    // Roles: read-only may read but not stop a VM; the refusal is audited.
    assert.deepEqual((await fails(s.url, "VM.hard_shutdown", [ro, vmRef])).slice(0, 2), ["RBAC_PERMISSION_DENIED", "vm.hard_shutdown"]);
    assert.equal(await ok(s.url, "VM.get_power_state", [ro, vmRef]), "Paused");
    await ok(s.url, "VM.unpause", [sid, vmRef]);
    await ok(s.url, "VM.clean_shutdown", [sid, vmRef]);
    assert.equal(await ok(s.url, "VM.get_power_state", [sid, vmRef]), "Halted");
    assert.equal(await ok(s.url, "VM.get_domid", [sid, vmRef]), -1);
    await ok(s.url, "VM.start", [sid, vmRef, false, false]);
    assert.equal(await ok(s.url, "VM.get_power_state", [sid, vmRef]), "Running");
    await ok(s.url, "VM.hard_reboot", [sid, vmRef]);
    await ok(s.url, "VM.hard_shutdown", [sid, vmRef]);
    assert.equal(await ok(s.url, "VM.get_power_state", [sid, vmRef]), "Halted");
    await ok(s.url, "VM.destroy", [sid, vmRef]);
    assert.deepEqual((await fails(s.url, "VM.get_record", [sid, vmRef])).slice(0, 1), ["HANDLE_INVALID"]);

    const log = readFileSync(join(s.apiDir, AUDIT_FILE), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const denied = log.find((l) => l.method === "VM.hard_shutdown" && String(l.result).startsWith("RBAC_PERMISSION_DENIED"))!;
    assert.equal(denied.user, "viewer");
    assert.equal(denied.role, "read-only");
    assert.deepEqual((denied.args as string[])[0], "(session)");
    assert.ok(log.some((l) => l.method === "VM.clean_shutdown" && l.result === "ok" && l.user === "admin"));
    assert.ok(!readFileSync(join(s.apiDir, AUDIT_FILE), "utf8").includes("s3cret"), "no password in the audit log");
    assert.equal(verifyAudit(s.apiDir).ok, true, verifyAudit(s.apiDir).problems.join("\n"));
    assert.equal(statSync(join(s.apiDir, USERS_FILE)).mode & 0o777, 0o600);
  } finally { await s.close(); }
});

test("Xen Orchestra's connector (xen-api) logs in, loads every object and follows event.from", async () => {
  const s = await setup();
  const { createClient } = await import("xen-api");
  const xapi = createClient({ url: s.url, auth: { user: "admin", password: "s3cret" }, debounce: 50 });
  try {
    await xapi.connect();
    await xapi.objectsFetched;
    const all = Object.values(xapi.objects.all);
    const web = all.find((o) => o.$type === "VM" && o.name_label === "web")!;
    assert.ok(web, `objects: ${all.map((o) => `${o.$type}:${String(o.name_label ?? "")}`).join(", ")}`);
    assert.equal(web.memory_static_max, 256 * 1024 * 1024);
    assert.equal(web.VCPUs_max, 2);
    for (const t of ["pool", "host", "VM_metrics", "VBD", "VDI", "SR", "VIF", "network", "console"]) assert.ok(all.some((o) => o.$type === t), t);
    // Xen Orchestra's barrier: a pool.other_config key written and seen back through event.from, twice (the
    // second once a refresh has rebuilt the pool record).
    await xapi.barrier();
    await s.x.api!.model.refresh();
    await xapi.barrier();
    await xapi.call("VM.pause", web.$ref);
    const deadline = Date.now() + 10_000;
    while (xapi.getObjectByRef(web.$ref).power_state !== "Paused") {
      assert.ok(Date.now() < deadline, "the connector's cache saw the VM paused through event.from");
      await new Promise((r) => setTimeout(r, 50));
    }
    await xapi.call("VM.unpause", web.$ref);
    await xapi.call("VM.clean_shutdown", web.$ref);
    await xapi.call("VM.start", web.$ref, false, false);
    assert.equal(await xapi.call("VM.get_power_state", web.$ref), "Running");
    // Async.*: a task the connector watches through event.from until it succeeds or fails.
    assert.equal(await xapi.callAsync("VM.clean_shutdown", web.$ref), "");
    assert.equal(await xapi.call("VM.get_power_state", web.$ref), "Halted");
    await assert.rejects(xapi.callAsync("VM.pause", web.$ref), (e: { code?: string }) => e.code === "VM_BAD_POWER_STATE");
    assert.equal(await xapi.callAsync("VM.start", web.$ref, false, false), "");
    assert.equal(await xapi.call("VM.get_power_state", web.$ref), "Running");
    const log = readFileSync(join(s.apiDir, AUDIT_FILE), "utf8");
    assert.match(log, /"method":"Async.VM.clean_shutdown".*"result":"ok"/);
    assert.match(log, /"method":"Async.VM.pause".*"result":"VM_BAD_POWER_STATE/);
  } finally { await xapi.disconnect(); await s.close(); }
});

test("/metrics: Prometheus text with each domain's CPU, memory and I/O counters, for API users only", async () => {
  const s = await setup();
  try {
    s.hv.domains.get(1)!.info.io = {
      vbdOo: 0, vbdRd: 10, vbdWr: 64, vbdRsect: 80, vbdWsect: 16384, netTxBytes: 5000, netRxBytes: 7000,
      // Each device's own (src/hv/io-stats.ts): the config's xvda, and a devid the config does not name.
      vbds: [{ devid: 51712, reads: 6, writes: 60, readBytes: 24576, writeBytes: 8 << 20 }, { devid: 51728, reads: 4, writes: 4, readBytes: 16384, writeBytes: 16384 }],
      vifs: [{ devid: 0, txPackets: 40, txBytes: 5000, rxPackets: 50, rxBytes: 7000 }],
    };
    s.hv.domains.get(1)!.info.cpuSeconds = 12.5;
    s.hv.domains.get(1)!.info.vcpuCpuSeconds = [10, 2.5];
    assert.equal((await fetch(`${s.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${s.url}/metrics`, { headers: { authorization: `Basic ${Buffer.from("viewer:nope").toString("base64")}` } })).status, 401);
    const r = await fetch(`${s.url}/metrics`, { headers: { authorization: `Basic ${Buffer.from("viewer:look").toString("base64")}` } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const labels = `domain="web",domid="1",uuid="${s.hv.domains.get(1)!.info.uuid}"`;
    assert.match(text, /# TYPE xeno_domain_vbd_write_bytes_total counter/);
    assert.ok(text.includes(`xeno_domain_vbd_write_bytes_total{${labels}} ${16384 * 512}`), text);
    assert.ok(text.includes(`xeno_domain_vif_rx_bytes_total{${labels}} 7000`));
    assert.ok(text.includes(`xeno_domain_cpu_seconds_total{${labels}} 12.5`));
    assert.ok(text.includes(`xeno_domain_memory_max_bytes{${labels}} ${256 * 1024 * 1024}`));
    assert.ok(text.includes(`xeno_domain_state{${labels},state="running"} 1`));
    assert.match(text, /^xeno_host_memory_total_bytes 1073741824$/m);
    // Per device and per vCPU: metrics of their own (the domain's sums above are not relabelled).
    assert.match(text, /# TYPE xeno_vbd_write_bytes_total counter/);
    assert.ok(text.includes(`xeno_vbd_write_bytes_total{${labels},vbd="xvda"} ${8 << 20}`), text);
    assert.ok(text.includes(`xeno_vbd_read_requests_total{${labels},vbd="xvda"} 6`));
    assert.ok(text.includes(`xeno_vbd_write_requests_total{${labels},vbd="51728"} 4`));
    assert.ok(text.includes(`xeno_vif_rx_bytes_total{${labels},vif="0"} 7000`));
    assert.ok(text.includes(`xeno_vif_tx_packets_total{${labels},vif="0"} 40`));
    assert.ok(text.includes(`xeno_vcpu_cpu_seconds_total{${labels},vcpu="0"} 10`));
    assert.ok(text.includes(`xeno_vcpu_cpu_seconds_total{${labels},vcpu="1"} 2.5`));
    assert.doesNotMatch(text, /xeno_domain_vbd_write_bytes_total\{[^}]*vbd=/);
    // Domain-0 reports no devices nor vCPU times: none of its series here.
    assert.doesNotMatch(text, /^xeno_(vbd|vif|vcpu)_\w+\{domain="Domain-0"/m);
    const sid = await ok(s.url, "session.login_with_password", ["viewer", "look"]) as string;
    assert.equal((await fetch(`${s.url}/metrics?session_id=${encodeURIComponent(sid)}`)).status, 200);
  } finally { await s.close(); }
});

test("VM calls' refusals and clean_reboot; a role changed or a user removed applies to open sessions; logout", async () => {
  const s = await setup();
  try {
    const sid = await ok(s.url, "session.login_with_password", ["admin", "s3cret"]) as string;
    const vm = ((await ok(s.url, "VM.get_by_name_label", [sid, "web"])) as string[])[0]!;
    const dom0 = ((await ok(s.url, "VM.get_by_name_label", [sid, "Domain-0"])) as string[])[0]!;
    assert.equal((await fails(s.url, "VM.hard_shutdown", [sid, dom0]))[0], "OPERATION_NOT_ALLOWED");
    assert.deepEqual(await fails(s.url, "VM.get___proto__", [sid, vm]), ["MESSAGE_METHOD_UNKNOWN", "VM.get___proto__"]);
    assert.equal((await fails(s.url, "VM.set_memory_dynamic_range", [sid, vm, 200 << 20, 100 << 20]))[0], "MEMORY_CONSTRAINT_VIOLATION");
    assert.equal((await fails(s.url, "VM.set_memory_dynamic_range", [sid, vm, 100 << 20, 512 << 20]))[0], "MEMORY_CONSTRAINT_VIOLATION");
    assert.deepEqual(await fails(s.url, "VM.unpause", [sid, vm]), ["VM_BAD_POWER_STATE", vm, "paused", "running"]);
    const domid = await ok(s.url, "VM.get_domid", [sid, vm]) as number;
    await ok(s.url, "VM.clean_reboot", [sid, vm]);
    const after = await ok(s.url, "VM.get_domid", [sid, vm]) as number;
    assert.notEqual(after, domid, "rebooted under a new domid, the same VM");
    assert.equal(await ok(s.url, "VM.get_power_state", [sid, vm]), "Running");
    await ok(s.url, "VM.hard_shutdown", [sid, vm]);
    assert.deepEqual(await fails(s.url, "VM.pause", [sid, vm]), ["VM_BAD_POWER_STATE", vm, "running", "halted"]);
    assert.deepEqual(await fails(s.url, "VM.clean_shutdown", [sid, vm]), ["VM_BAD_POWER_STATE", vm, "running", "halted"]);

    const ro = await ok(s.url, "session.login_with_password", ["viewer", "look"]) as string;
    assert.equal((await fails(s.url, "VM.start", [ro, vm, false, false]))[0], "RBAC_PERMISSION_DENIED");
    const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, "user", ...args, "--api-dir", s.apiDir], { cwd: ROOT, encoding: "utf8" });
    assert.equal(cli("role", "viewer", "vm-operator").status, 0);
    await ok(s.url, "VM.start", [ro, vm, false, false]);
    assert.equal(cli("remove", "viewer").status, 0);
    assert.equal((await fails(s.url, "VM.get_power_state", [ro, vm]))[0], "SESSION_INVALID");
    await ok(s.url, "session.logout", [sid]);
    assert.equal((await fails(s.url, "VM.get_power_state", [sid, vm]))[0], "SESSION_INVALID");
  } finally { await s.close(); }
});

test("Xen Orchestra's connector over XML-RPC (transport 'xml-rpc') and over HTTPS", async () => {
  const s = await setup();
  const { createClient } = await import("xen-api");
  const xml = createClient({ url: s.url, auth: { user: "admin", password: "s3cret" }, transport: "xml-rpc", debounce: 50 });
  const tls = createClient({ url: s.https, auth: { user: "viewer", password: "look" }, allowUnauthorized: true, watchEvents: false });
  try {
    await xml.connect();
    await xml.objectsFetched;
    const web = Object.values(xml.objects.all).find((o) => o.$type === "VM" && o.name_label === "web")!;
    // XML-RPC carries XAPI's int64 as strings; the connector hands them on as they come.
    assert.equal(web.memory_static_max, String(256 * 1024 * 1024));
    assert.equal(web.is_control_domain, false);
    await xml.call("VM.pause", web.$ref);
    const deadline = Date.now() + 10_000;
    while (xml.getObjectByRef(web.$ref).power_state !== "Paused") {
      assert.ok(Date.now() < deadline, "Paused seen through event.from over XML-RPC");
      await new Promise((r) => setTimeout(r, 50));
    }
    await assert.rejects(xml.call("VM.pause", web.$ref), (e: { code?: string; params?: string[] }) => { assert.equal(e.code, "VM_BAD_POWER_STATE"); assert.deepEqual(e.params, [web.$ref, "running", "paused"]); return true; });
    await tls.connect();
    assert.equal(await tls.call("VM.get_power_state", web.$ref), "Paused");
  } finally { await xml.disconnect(); await tls.disconnect(); await s.close(); }
});

test("xenod starts without the API when its directory cannot be made, and says so", async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-api-nodir-"));
  const hv = new FakeHv(dir);
  await hv.start();
  writeFileSync(join(dir, "file"), "");
  const log: string[] = [];
  const x = await Xenod.start({ runDir: dir, log: (l) => log.push(l), hvMain: false, api: { listen: [{ scheme: "http", host: "127.0.0.1", port: 0 }], apiDir: join(dir, "file", "api") } });
  try {
    assert.equal(x.api, null);
    assert.ok(log.some((l) => /^API: not served: .*ENOTDIR.*\(check --api-dir /.test(l)), log.join("\n"));
  } finally { await x.stop(); await hv.stop(); rmSync(dir, { recursive: true, force: true }); }
});
