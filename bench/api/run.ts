/**
 * bench/api: the XenAPI endpoint with N domains (default 100) listed by a stand-in hypervisor
 * (test/toolstack/fake-hv.ts: domains are records, nothing boots — this measures the API server and xenod, not
 * guests): VM.get_all_records latency over JSON-RPC; event.from latency from a hypervisor event (a domain
 * paused) to the waiting client seeing the VM Paused; xenod's CPU while idle with the API serving (its 5 s
 * refresh of N domains) and one client parked in event.from; /rrd_updates (the last 10 minutes of every VM and the
 * host, as the web console asks for it every 5 s) once the history has a few rows, and the history's memory.
 *
 *   node dist/bench/api/run.js [--domains N] [--rounds R]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Event } from "../../src/hv/protocol.js";
import { Xenod } from "../../src/toolstack/daemon.js";
import { FakeHv } from "../../test/toolstack/fake-hv.js";
import { makeUsers, ok } from "../../test/api/api-helpers.js";

const { values } = parseArgs({ options: { domains: { type: "string", default: "100" }, rounds: { type: "string", default: "20" } } });
const N = Number(values.domains), R = Number(values.rounds);
const pct = (a: number[], p: number): number => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!;
const fmt = (a: number[]): string => `median ${pct(a, 0.5).toFixed(1)} ms, p90 ${pct(a, 0.9).toFixed(1)} ms, max ${Math.max(...a).toFixed(1)} ms`;

const dir = mkdtempSync(join(tmpdir(), "xeno-bench-api-"));
const hv = new FakeHv(dir);
await hv.start();
hv.nextDomid = 0;
hv.addDomain({ name: "Domain-0", uuid: "00000000-0000-0000-0000-000000000000", memMiB: 300, vcpus: 2, kernel: "", cmdline: "", xen: false, disks: [], vifs: [] });
for (let i = 1; i <= N; i++) {
  hv.addDomain({ name: `d${i}`, memMiB: 64, vcpus: 1, kernel: "/k", cmdline: "", xen: true,
    disks: [{ path: join(dir, `d${i}.img`), devid: 51712, vdev: "xvda", readOnly: false }],
    vifs: [{ devid: 0, mac: `00:16:3e:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`, mtu: 1500, bridge: "xenbr0" }],
    toolstack: { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" } });
}
const apiDir = join(dir, "api");
await makeUsers(apiDir, [["bench", "pool-admin", "pw"]]);
const x = await Xenod.start({ runDir: dir, log: () => {}, hvMain: false, api: { listen: [{ scheme: "http", host: "127.0.0.1", port: 0 }], apiDir } });
const url = x.api!.urls[0]!;
await x.api!.model.refresh();
const sid = await ok(url, "session.login_with_password", ["bench", "pw"]) as string;

const getAll: number[] = [];
let bytes = 0;
for (let i = 0; i < R; i++) {
  const t = performance.now();
  const r = await fetch(`${url}/jsonrpc`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "VM.get_all_records", params: [sid] }) });
  bytes = (await r.arrayBuffer()).byteLength;
  getAll.push(performance.now() - t);
}
console.log(`VM.get_all_records, ${N + 1} VMs (${(bytes / 1024).toFixed(0)} KiB): ${fmt(getAll)} over ${R} calls`);

// The fake's pause changes no state by itself and sends no event; the real hypervisor does both. Do both here.
const emit = (e: Event): void => (hv as unknown as { emit(e: Event): void }).emit(e);
const lat: number[] = [];
let token = ((await ok(url, "event.from", [sid, ["vm"], "", 0])) as { token: string }).token;
for (let i = 0; i < R; i++) {
  const d = hv.domains.get(1 + (i % N))!;
  const paused = d.info.state !== "paused";
  const want = paused ? "Paused" : "Running";
  const waiting = ok(url, "event.from", [sid, ["vm"], token, 30]) as Promise<{ token: string; events: { snapshot?: { name_label: string; power_state: string } }[] }>;
  await new Promise((r) => setTimeout(r, 20));
  const t = performance.now();
  d.info.state = paused ? "paused" : "running";
  emit({ event: "domain", domid: d.info.domid, name: d.info.name, state: d.info.state });
  let res = await waiting;
  while (!res.events.some((e) => e.snapshot?.name_label === d.info.name && e.snapshot.power_state === want)) {
    res = await (ok(url, "event.from", [sid, ["vm"], res.token, 30]) as typeof waiting);
  }
  lat.push(performance.now() - t);
  token = res.token;
}
console.log(`event.from, ${N + 1} VMs: hypervisor event → client sees the VM's new power_state: ${fmt(lat)} over ${R} changes`);

// The history: samples every 5 s; wait for a few complete rows, then time the web console's query.
const rrdUrl = `${url}/rrd_updates?session_id=${sid}&start=-600&interval=5&cf=AVERAGE&host=true&json=true`;
for (const end = Date.now() + 60_000; Date.now() < end;) {
  const b = await (await fetch(rrdUrl)).json() as { meta: { rows: number } };
  if (b.meta.rows >= 3) break;
  await new Promise((r) => setTimeout(r, 1000));
}
const rrd: number[] = [];
let rrdBytes = 0, rrdRows = 0, rrdCols = 0;
for (let i = 0; i < R; i++) {
  const t = performance.now();
  const text = await (await fetch(rrdUrl)).text();
  rrd.push(performance.now() - t);
  rrdBytes = text.length;
  const m = (JSON.parse(text) as { meta: { rows: number; columns: number } }).meta;
  rrdRows = m.rows; rrdCols = m.columns;
}
const store = x.api!.model.rrd;
let histBytes = store.host.bytes();
for (let i = 0; i <= N; i++) { const u = [...hv.domains.values()][i]?.info.uuid; const r = u ? store.vm(u) : undefined; if (r) histBytes += r.bytes(); }
console.log(`/rrd_updates json, 10 min at 5 s, host=true: ${rrdRows} rows × ${rrdCols} columns (${(rrdBytes / 1024).toFixed(0)} KiB): ${fmt(rrd)} over ${R} calls; ` +
  `history of ${store.size} VMs and the host: ${(histBytes / 1048576).toFixed(2)} MiB (fixed: it does not grow with time)`);

const idleMs = 30_000;
const parked = ok(url, "event.from", [sid, ["vm"], token, 60]).catch(() => undefined);
const c0 = process.cpuUsage(), t0 = performance.now();
await new Promise((r) => setTimeout(r, idleMs));
const c = process.cpuUsage(c0), wall = performance.now() - t0;
console.log(`idle ${(wall / 1000).toFixed(0)} s, ${N + 1} VMs, one client parked in event.from: ${((c.user + c.system) / 1000 / wall * 100).toFixed(2)}% of a core ` +
  `(xenod with the API and the stand-in hypervisor, one process)`);
await x.stop();
await parked;
await hv.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
