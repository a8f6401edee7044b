/**
 * The web console's server side against a stand-in hypervisor (test/toolstack/fake-hv.ts) under a real xenod,
 * on a real socket: the page and its npm assets (and nothing else) under /ui/; /rrd_updates' access, parameters
 * and forms; the console WebSocket with one-shot tickets (replayed output, keystrokes to the guest, a ticket used
 * twice or by a read-only user refused, open/close in the audit log); VM.create_from_xl_config with its path
 * rule and role. The browser itself is test/api/web-browser.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { Xenod } from "../../src/toolstack/daemon.js";
import { FakeHv } from "../toolstack/fake-hv.js";
import { fails, makeUsers, ok } from "./api-helpers.js";
import { AUDIT_FILE, verifyAudit } from "../../src/api/audit.js";

async function until<T>(f: () => T | undefined | false | Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) assert.fail(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("web console server side: assets, /rrd_updates, console tickets and WebSocket, VM.create_from_xl_config", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-web-"));
  const apiDir = join(dir, "api");
  const images = join(dir, "images-cache");
  mkdirSync(join(images, "images"), { recursive: true });
  writeFileSync(join(images, "images", "vmlinuz"), Buffer.alloc(4096));
  const savedImages = process.env.XENO_IMAGES;
  process.env.XENO_IMAGES = images; // the API's create roots: this cache and api/sr
  const hv = new FakeHv(dir);
  await hv.start();
  hv.nextDomid = 0;
  hv.addDomain({ name: "Domain-0", uuid: "00000000-0000-0000-0000-000000000000", memMiB: 300, vcpus: 2, kernel: "", cmdline: "", xen: false, disks: [], vifs: [] });
  const web = hv.addDomain({ name: "web", memMiB: 256, vcpus: 1, kernel: "/k", cmdline: "", xen: true, disks: [], vifs: [], toolstack: { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" } });
  hv.emitConsole(web.domid, "Welcome to the web guest\r\n# ");
  await makeUsers(apiDir, [["admin", "pool-admin", "pw-a"], ["op", "vm-operator", "pw-o"], ["viewer", "read-only", "pw-v"]]);
  const x = await Xenod.start({ runDir: dir, log: () => {}, hvMain: false, api: { listen: [{ scheme: "http", host: "127.0.0.1", port: 0 }], apiDir } });
  const url = x.api!.urls[0]!;
  try {
    // Assets: the page, its script, the vendored libraries; a browser asking for / is sent to /ui/.
    const page = await fetch(`${url}/ui/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /^text\/html/);
    assert.match(await page.text(), /<script type="module" src="\/ui\/app.js">/);
    for (const p of ["/ui/app.js", "/ui/style.css", "/ui/vendor/xterm.mjs", "/ui/vendor/xterm.css", "/ui/vendor/addon-fit.mjs", "/ui/vendor/uplot.mjs", "/ui/vendor/uplot.css"]) {
      const r = await fetch(`${url}${p}`);
      assert.equal(r.status, 200, p);
      assert.ok((await r.arrayBuffer()).byteLength > 500, `${p} has content`);
    }
    for (const p of ["/ui/../package.json", "/ui/%2e%2e/package.json", "/ui/vendor/../../package.json", "/ui/index.html/x"]) {
      assert.equal((await fetch(`${url}${p}`)).status, 404, p);
    }
    const root = await fetch(`${url}/`, { headers: { accept: "text/html" }, redirect: "manual" });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/ui/");

    const admin = await ok(url, "session.login_with_password", ["admin", "pw-a"]) as string;
    const op = await ok(url, "session.login_with_password", ["op", "pw-o"]) as string;
    const viewer = await ok(url, "session.login_with_password", ["viewer", "pw-v"]) as string;
    assert.equal((await ok(url, "session.get_record", [viewer, viewer]) as Record<string, unknown>).xeno_role, "read-only");
    const vmRef = (await ok(url, "VM.get_by_name_label", [admin, "web"]) as string[])[0]!;

    // /rrd_updates: a session is needed; parameters are checked; rows arrive as samples are taken (every 5 s).
    assert.equal((await fetch(`${url}/rrd_updates?start=0`)).status, 401);
    assert.equal((await fetch(`${url}/rrd_updates?session_id=${viewer}`)).status, 400);
    assert.equal((await fetch(`${url}/rrd_updates?session_id=${viewer}&start=x`)).status, 400);
    assert.equal((await fetch(`${url}/rrd_updates?session_id=${viewer}&start=0&cf=LAST`)).status, 400);
    assert.equal((await fetch(`${url}/rrd_updates?session_id=${viewer}&start=0&cf=average`)).status, 400);
    const j = await until(async () => {
      const r = await fetch(`${url}/rrd_updates?session_id=${viewer}&start=-600&interval=5&host=true&json=true`);
      assert.equal(r.status, 200);
      const b = await r.json() as { meta: { legend: string[]; rows: number }; data: { t: number; values: string[] }[] };
      return b.meta.rows >= 1 ? b : undefined;
    }, 30_000, "a complete 5 s row in /rrd_updates");
    assert.ok(j.meta.legend.includes(`AVERAGE:vm:${web.uuid}:cpu_usage`), j.meta.legend.join(" "));
    assert.ok(j.meta.legend.some((l) => /^AVERAGE:host:[0-9a-f-]{36}:memory_total_kib$/.test(l)));
    const xml = await (await fetch(`${url}/rrd_updates?session_id=${viewer}&start=-600&vm_uuid=${web.uuid}`)).text();
    assert.match(xml, /^<\?xml[^>]*\?><xport><meta><start>\d+<\/start><step>5<\/step>/);
    assert.doesNotMatch(xml, /AVERAGE:host:/, "no host series without host=true");
    // cf=MAX: the host keeps MIN and MAX (as xapi); a VM only when pool other_config asks (off here).
    const mx = await (await fetch(`${url}/rrd_updates?session_id=${viewer}&start=-600&host=true&cf=MAX&json=true`)).json() as { meta: { legend: string[] } };
    assert.ok(mx.meta.legend.length > 0 && mx.meta.legend.every((l) => /^MAX:host:/.test(l)), mx.meta.legend.join(" "));

    // As Xen Orchestra reads stats: its connector (npm xen-api) asks host.get_servertime, then GETs /rrd_updates
    // with its session (and a task of its own made by task.create, which the handler finishes).
    const { createClient } = await import("xen-api");
    const xo = createClient({ url, auth: { user: "viewer", password: "pw-v" }, debounce: 50 });
    try {
      await xo.connect();
      await xo.objectsFetched;
      const hostRef = (await xo.call("host.get_all")) as string[];
      const serverTime = await xo.call("host.get_servertime", hostRef[0]!);
      assert.match(String(serverTime), /^\d{8}T\d{2}:\d{2}:\d{2}Z$/);
      const resp = await (xo as unknown as { getResource(path: string, o: { query: Record<string, unknown> }): Promise<{ body: { text(): Promise<string> } }> })
        .getResource("/rrd_updates", { query: { cf: "AVERAGE", host: "true", interval: 5, json: "true", start: Math.floor(Date.now() / 1000) - 600 } });
      const stats = JSON.parse(await resp.body.text()) as { meta: { legend: string[]; step: number }; data: { t: number; values: string[] }[] };
      assert.equal(stats.meta.step, 5);
      assert.ok(stats.meta.legend.includes(`AVERAGE:vm:${web.uuid}:memory`));
      assert.ok(stats.data.length >= 1);
      const tasks = await xo.call("task.get_all_records") as Record<string, { name_label: string; status: string }>;
      assert.ok(!Object.values(tasks).some((t) => t.status === "pending"), `no task left pending: ${JSON.stringify(tasks)}`);
    } finally { await xo.disconnect(); }

    // Console tickets: read-only may not; a vm-operator gets a one-shot ticket.
    assert.equal((await fails(url, "VM.xeno_console_ticket", [viewer, vmRef]))[0], "RBAC_PERMISSION_DENIED");
    const dom0Ref = (await ok(url, "VM.get_by_name_label", [admin, "Domain-0"]) as string[])[0]!;
    assert.equal((await fails(url, "VM.xeno_console_ticket", [op, dom0Ref]))[0], "OPERATION_NOT_ALLOWED");
    const ticket = await ok(url, "VM.xeno_console_ticket", [op, vmRef]) as string;
    assert.match(ticket, /^[A-Za-z0-9_-]{32}$/);
    const wsUrl = `${url.replace(/^http/, "ws")}/console/ws?ticket=${ticket}`;
    const ws = new WebSocket(wsUrl);
    let seen = "";
    ws.on("message", (d: Buffer) => { seen += d.toString("latin1"); });
    await until(() => /Welcome to the web guest/.test(seen), 10_000, "the replayed console output");
    ws.send(Buffer.from("echo hi\r"));
    await until(() => hv.domains.get(web.domid)!.input.includes("echo hi\r"), 10_000, "keystrokes reach the guest");
    hv.emitConsole(web.domid, "\r\nhi\r\n# ");
    await until(() => /\r\nhi\r\n/.test(seen), 10_000, "new output reaches the browser");
    ws.close();
    // The same ticket again: refused (close code 4001).
    const again = new WebSocket(wsUrl);
    const code = await new Promise<number>((r) => again.on("close", (c: number) => r(c)));
    assert.equal(code, 4001);
    // A ticket whose domain went away meanwhile (VM.hard_reboot: the same VM under a new domid): refused (4002).
    const late = await ok(url, "VM.xeno_console_ticket", [op, vmRef]) as string;
    await ok(url, "VM.hard_reboot", [admin, vmRef]);
    assert.notEqual(await ok(url, "VM.get_domid", [admin, vmRef]), web.domid);
    const lateWs = new WebSocket(`${url.replace(/^http/, "ws")}/console/ws?ticket=${late}`);
    assert.equal(await new Promise<number>((r) => lateWs.on("close", (c: number) => r(c))), 4002);
    const audit = await until(() => { const a = readFileSync(join(apiDir, AUDIT_FILE), "utf8"); return /"method":"console.close"/.test(a) ? a : undefined; }, 10_000, "console.close in the audit log");
    assert.match(audit, /"user":"op","role":"vm-operator","method":"console.open","args":\["web \([0-9a-f-]+, domid 1\)"\],"result":"ok"/);
    assert.match(audit, /"method":"console.close","args":\["web[^"]*","8 bytes to the guest, \d+ from it"\]/);
    assert.match(audit, /"method":"console.open","args":\[\],"result":"refused: unknown, used or expired ticket"/);
    assert.equal(verifyAudit(apiDir).ok, true);

    // VM.create_from_xl_config: vm-admin; files only from the allowed roots.
    const cfg = (extra: string): string => `name = "made"\nmemory = 128\nvcpus = 1\nkernel = "\${XENO_IMAGES}/images/vmlinuz"\nextra = "rdinit=/init"\n${extra}`;
    assert.equal((await fails(url, "VM.create_from_xl_config", [op, cfg(""), false]))[0], "RBAC_PERMISSION_DENIED");
    const outside = await fails(url, "VM.create_from_xl_config", [admin, cfg('disk = ["/etc/passwd,raw,xvda,rw"]'), false]);
    assert.equal(outside[0], "OPERATION_NOT_ALLOWED");
    assert.match(outside[1]!, /disk\[0\] target=\/etc\/passwd: files a VM uses through the API must be under /);
    const badSyntax = await fails(url, "VM.create_from_xl_config", [admin, "name = \n", false]);
    assert.match(badSyntax[1]!, /^the xl config is not valid: line 1/);
    mkdirSync(join(apiDir, "sr"), { recursive: true });
    writeFileSync(join(apiDir, "sr", "made.img"), Buffer.alloc(1 << 20));
    const made = await ok(url, "VM.create_from_xl_config", [admin, cfg(`disk = ["${join(apiDir, "sr", "made.img")},raw,xvda,rw"]`), true]) as string;
    const rec = await ok(url, "VM.get_record", [admin, made]) as Record<string, unknown>;
    assert.equal(rec.name_label, "made");
    assert.equal(rec.power_state, "Paused");
    assert.equal(rec.memory_static_max, 128 * 1048576);
    const spec = [...hv.domains.values()].find((d) => d.info.name === "made")!.info.spec;
    assert.equal(spec.kernel, join(images, "images", "vmlinuz"));
    assert.equal(spec.cmdline, "console=hvc0 rdinit=/init");
    assert.equal(spec.disks[0]!.path, join(apiDir, "sr", "made.img"));
    assert.equal((await fails(url, "VM.create_from_xl_config", [admin, cfg(""), false]))[0], "OPERATION_NOT_ALLOWED"); // the name is taken
    const dup = await fails(url, "VM.create_from_xl_config", [admin, cfg(`uuid = "${web.uuid}"`).replace('name = "made"', 'name = "other"'), false]);
    assert.deepEqual(dup.slice(0, 1), ["OPERATION_NOT_ALLOWED"]);
    assert.match(dup[1]!, /is a VM this host has already/);
    assert.match(readFileSync(join(apiDir, AUDIT_FILE), "utf8"), /"method":"VM.create_from_xl_config".*"result":"ok"/);
  } finally {
    if (savedImages === undefined) delete process.env.XENO_IMAGES; else process.env.XENO_IMAGES = savedImages;
    await x.stop();
    await hv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
