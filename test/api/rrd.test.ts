/**
 * The metric history (src/api/rrd.ts) fed with synthetic samples at chosen times: rates from cumulative
 * counters, AVERAGE consolidation into the 5 s / 1 min / 1 h archives, unknown points for gaps and restarted
 * counters, the archive chosen for a query, the XML and JSON forms of /rrd_updates, and memory that does not
 * grow with time or with domains beyond MAX_RRDS.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { DomainInfo, HostInfo } from "../../src/hv/protocol.js";
import { MAX_RRDS, ROWS_TOTAL, RrdStore, rrdJson, rrdXml, STEP_S } from "../../src/api/rrd.js";

const HOST: HostInfo = { host: "h", release: "0", machine: "aarch64", nrCpus: 2, pcpus: 2, totalMemoryMiB: 1024, freeMemoryMiB: 512, xenMajor: 4, xenMinor: 19, xenExtra: "", uptime: 1, xenstoredSocket: "" } as HostInfo;

function dom(uuid: string, domid: number, cpu: number, wsect: number, extra: Partial<DomainInfo> = {}): DomainInfo {
  return {
    domid, name: `d${domid}`, uuid, state: "running", memKiB: 262144, maxMemKiB: 262144, targetKiB: 131072, vcpus: 2, onlineVcpus: 2,
    cpuSeconds: cpu, startTime: 0,
    spec: { name: `d${domid}`, memMiB: 256, vcpus: 2, kernel: "/k", cmdline: "", xen: true, disks: [{ path: "/d", devid: 51712, vdev: "xvda", readOnly: false }], vifs: [{ devid: 0, mac: "00:16:3e:00:00:01", mtu: 1500, bridge: "xenbr0" }] },
    io: { vbdOo: 0, vbdRd: 0, vbdWr: wsect / 8, vbdRsect: 0, vbdWsect: wsect, netTxBytes: cpu * 1000, netRxBytes: 0, netTxPackets: cpu * 10, netRxPackets: 0 },
    ...extra,
  };
}

const T0 = 1_800_000_000_000; // a multiple of 5 s, in ms

test("rates, consolidation and the export forms", () => {
  const s = new RrdStore(() => "host-uuid");
  // One domain using half of its 2 vCPUs and writing 1 MiB/s (2048 sectors/s), for 3 minutes.
  for (let k = 0; k <= 36; k++) s.sample(T0 + k * 5000 + 700, [dom("u1", 1, k * 5, k * 5 * 2048)], HOST);
  const r = s.vm("u1")!;
  assert.deepEqual(r.names, ["cpu_usage", "memory", "memory_target", "vbd_xvda_read", "vbd_xvda_write", "vbd_xvda_iops_read", "vbd_xvda_iops_write", "vif_0_rx", "vif_0_tx", "vif_0_rx_pkts", "vif_0_tx_pkts"]);
  const x = s.export({ start: (T0 + 60_000) / 1000, interval: 5, host: true, nowMs: T0 + 36 * 5000 + 700 });
  assert.equal(x.step, STEP_S);
  assert.equal(x.legend[0], "AVERAGE:host:host-uuid:cpu_avg");
  assert.ok(x.legend.includes("AVERAGE:vm:u1:cpu_usage"));
  // Newest first, 5 s apart, back to start.
  assert.ok(x.rows.length >= 20, `${x.rows.length} rows`);
  for (let i = 1; i < x.rows.length; i++) assert.equal(x.rows[i - 1]!.t - x.rows[i]!.t, 5);
  assert.ok(x.rows[x.rows.length - 1]!.t >= (T0 + 60_000) / 1000);
  const col = (n: string): number => x.legend.indexOf(`AVERAGE:${n}`);
  const row = x.rows[2]!;
  assert.equal(row.values[col("vm:u1:cpu_usage")], 0.5);
  assert.equal(row.values[col("vm:u1:vbd_xvda_write")], 1024 * 1024);
  assert.equal(row.values[col("vm:u1:vbd_xvda_iops_write")], 256);
  assert.equal(row.values[col("vm:u1:vif_0_rx")], 1000); // from dom0's side: the guest's tx
  assert.equal(row.values[col("vm:u1:vif_0_rx_pkts")], 10);
  assert.equal(row.values[col("vm:u1:vif_0_tx_pkts")], 0);
  assert.equal(row.values[col("vm:u1:memory")], 256 * 1048576);
  assert.equal(row.values[col("vm:u1:memory_target")], 128 * 1048576);
  assert.equal(row.values[col("host:host-uuid:cpu_avg")], 0.5); // 1 CPU-second per second over 2 pCPUs
  assert.equal(row.values[col("host:host-uuid:memory_free_kib")], 512 * 1024);

  // The 1-minute archive: chosen for interval=60; its rows average twelve 5 s points.
  const m = s.export({ start: (T0 + 60_000) / 1000, interval: 60, host: false, nowMs: T0 + 36 * 5000 + 700 });
  assert.equal(m.step, 60);
  assert.ok(m.rows.length >= 1);
  assert.equal(m.rows[0]!.values[m.legend.indexOf("AVERAGE:vm:u1:cpu_usage")], 0.5);

  const xml = rrdXml(x);
  assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?><xport><meta><start>\d+<\/start><step>5<\/step><end>\d+<\/end><rows>\d+<\/rows><columns>\d+<\/columns><legend><entry>AVERAGE:host:host-uuid:cpu_avg<\/entry>/);
  assert.match(xml, /<row><t>\d+<\/t><v>0\.5000<\/v>/);
  const j = JSON.parse(rrdJson(x)) as { meta: { rows: number; columns: number; legend: string[] }; data: { t: number; values: string[] }[] };
  assert.equal(j.meta.rows, x.rows.length);
  assert.equal(j.meta.columns, j.meta.legend.length);
  assert.equal(j.data[2]!.values[col("vm:u1:cpu_usage")], "0.5000");
});

test("per-vCPU cpuN series: xcp-rrdd's names in XAPI's legend, each vCPU's share, summing to cpu_usage × vCPUs", () => {
  const s = new RrdStore(() => "host-uuid");
  const uuid = "6f1c3c52-1a8b-4a36-9d1f-0c5e0e6b2f3a";
  // vCPU 0 runs 30 % of the time, vCPU 1 90 %: 6 s of CPU each 5 s; vCPU 1 of a 2-vCPU domain can't exceed 1.
  for (let k = 0; k <= 24; k++) {
    s.sample(T0 + k * 5000 + 300, [dom(uuid, 3, k * 6, 0, { vcpuCpuSeconds: [k * 1.5, k * 4.5] })], HOST);
  }
  const r = s.vm(uuid)!;
  assert.deepEqual(r.names.slice(0, 5), ["cpu_usage", "memory", "memory_target", "cpu0", "cpu1"]);
  const x = s.export({ start: -60, interval: 5, host: false, nowMs: T0 + 24 * 5000 + 300 });
  // XAPI's legend (xapi-rrd Rrd_updates: "AVERAGE:vm:<uuid>:<ds>"), and the name Xen Orchestra matches.
  const cpuEntries = x.legend.filter((l) => /^AVERAGE:vm:[0-9a-f-]{36}:cpu\d+$/.test(l));
  assert.deepEqual(cpuEntries, [`AVERAGE:vm:${uuid}:cpu0`, `AVERAGE:vm:${uuid}:cpu1`]);
  for (const e of cpuEntries) assert.match(e.split(":")[3]!, /^cpu(\d+)$/);
  assert.ok(x.rows.length >= 10, `${x.rows.length} rows`);
  const at = (n: string): number => x.legend.indexOf(`AVERAGE:vm:${uuid}:${n}`);
  for (const row of x.rows) {
    assert.equal(row.values[at("cpu0")], 0.3);
    assert.equal(row.values[at("cpu1")], 0.9);
    assert.ok(Math.abs(row.values[at("cpu0")]! + row.values[at("cpu1")]! - 2 * row.values[at("cpu_usage")]!) < 1e-9);
  }
  assert.match(rrdXml(x), new RegExp(`<entry>AVERAGE:vm:${uuid}:cpu0</entry><entry>AVERAGE:vm:${uuid}:cpu1</entry>`));

  // A vCPU over 100 % (clock skew between threads) is capped at 1, as xcp-rrdd's max:1.0; a restart is unknown.
  const s2 = new RrdStore(() => "h");
  for (let k = 0; k <= 6; k++) s2.sample(T0 + k * 5000, [dom("u2", 4, k * 6, 0, { vcpuCpuSeconds: [k * 6, 0] })], HOST);
  s2.sample(T0 + 7 * 5000, [dom("u2", 5, 0, 0, { vcpuCpuSeconds: [0, 0] })], HOST);
  const y = s2.export({ start: -60, interval: 5, host: false, nowMs: T0 + 7 * 5000 });
  assert.equal(y.rows[1]!.values[y.legend.indexOf("AVERAGE:vm:u2:cpu0")], 1);
  assert.ok(Number.isNaN(y.rows[0]!.values[y.legend.indexOf("AVERAGE:vm:u2:cpu0")]!));
  // Without per-vCPU figures (Domain-0, an older hypervisor) there are no cpuN series.
  s2.sample(T0 + 8 * 5000, [dom("u3", 6, 0, 0)], HOST);
  assert.ok(!s2.vm("u3")!.names.some((n) => /^cpu\d/.test(n)));
});

test("cf=MIN and MAX: the host's always, a VM's when asked (xapi's create_min_max_in_new_VM_RRDs); 5 s rows are their own min and max", () => {
  let vmMinMax = false;
  const s = new RrdStore(() => "h", () => vmMinMax);
  s.sample(T0 - 10_000, [dom("plain", 1, 0, 0)], HOST); // made before the pool asked: AVERAGE only
  vmMinMax = true;
  // CPU seconds per 5 s going 1, 3, 1, 3, …: per-vCPU rate over 2 vCPUs 0.1 / 0.3 alternately; 4 minutes.
  let cpu = 0;
  for (let k = 0; k <= 48; k++) {
    if (k > 0) cpu += k % 2 === 1 ? 1 : 3;
    s.sample(T0 + k * 5000, [dom("mm", 2, cpu, 0), dom("plain", 1, cpu, 0)], HOST);
  }
  assert.equal(s.vm("mm")!.minMax, true);
  assert.equal(s.vm("plain")!.minMax, false);
  const q = (cf: "AVERAGE" | "MIN" | "MAX", interval: number) => s.export({ start: -240, interval, host: true, nowMs: T0 + 48 * 5000, cf });
  const avg = q("AVERAGE", 60), min = q("MIN", 60), max = q("MAX", 60);
  assert.equal(min.step, 60);
  assert.deepEqual(min.legend.filter((l) => l.includes(":vm:")), ["cpu_usage", "memory", "memory_target", "vbd_xvda_read", "vbd_xvda_write", "vbd_xvda_iops_read", "vbd_xvda_iops_write", "vif_0_rx", "vif_0_tx", "vif_0_rx_pkts", "vif_0_tx_pkts"].map((n) => `MIN:vm:mm:${n}`));
  assert.ok(min.legend.includes("MIN:host:h:cpu_avg") && max.legend.includes("MAX:host:h:cpu_avg"));
  assert.ok(!min.legend.some((l) => l.includes(":plain:")) && avg.legend.includes("AVERAGE:vm:plain:cpu_usage"));
  assert.ok(min.rows.length >= 2, `${min.rows.length} rows`);
  const at = (x: typeof min, n: string): number => x.legend.findIndex((l) => l.endsWith(`:vm:mm:${n}`));
  let known = 0;
  for (let i = 0; i < min.rows.length; i++) {
    assert.equal(min.rows[i]!.t, avg.rows[i]!.t);
    // The row before the first sample is unknown in all three.
    if (Number.isNaN(avg.rows[i]!.values[at(avg, "cpu_usage")]!)) { assert.ok(Number.isNaN(max.rows[i]!.values[at(max, "cpu_usage")]!)); continue; }
    known++;
    assert.ok(Math.abs(min.rows[i]!.values[at(min, "cpu_usage")]! - 0.1) < 1e-12, `${min.rows[i]!.values[at(min, "cpu_usage")]}`);
    assert.ok(Math.abs(max.rows[i]!.values[at(max, "cpu_usage")]! - 0.3) < 1e-12);
    assert.ok(Math.abs(avg.rows[i]!.values[at(avg, "cpu_usage")]! - 0.2) < 1e-12);
    assert.equal(max.rows[i]!.values[at(max, "memory")], 256 * 1048576);
  }
  assert.ok(known >= 3, `${known} known rows`);
  const hostCol = (x: typeof min): number => x.legend.indexOf(`${x.legend[0]!.split(":")[0]}:host:h:cpu_avg`);
  assert.ok(min.rows[0]!.values[hostCol(min)]! < avg.rows[0]!.values[hostCol(avg)]! && avg.rows[0]!.values[hostCol(avg)]! < max.rows[0]!.values[hostCol(max)]!);
  // The 5 s archive: one PDP per row, so MIN = MAX = AVERAGE.
  const a5 = q("AVERAGE", 5), m5 = q("MAX", 5);
  assert.equal(m5.step, 5);
  assert.deepEqual(m5.rows.map((r) => r.values[at(m5, "cpu_usage")]), a5.rows.map((r) => r.values[at(a5, "cpu_usage")]));
  assert.match(rrdXml(m5), /<entry>MAX:host:h:cpu_avg<\/entry>/);
  // The cost: 2 × (120 + 168) more doubles per data source.
  assert.equal(s.vm("mm")!.bytes() - s.vm("plain")!.bytes(), 11 * 8 * (2 * (120 + 168) + 2 * 2));
});

test("per-device series when the hypervisor reports each device's counters", () => {
  const s = new RrdStore(() => "h");
  const two = (k: number): DomainInfo => dom("p", 1, k, 0, {
    spec: { ...dom("x", 1, 0, 0).spec, disks: [{ path: "/a", devid: 51712, vdev: "xvda", readOnly: false }, { path: "/b", devid: 51728, vdev: "xvdb", readOnly: false }], vifs: [{ devid: 0, mac: "00:16:3e:00:00:01", mtu: 1500, bridge: "xenbr0" }] },
    io: {
      vbdOo: 0, vbdRd: 0, vbdWr: 0, vbdRsect: 0, vbdWsect: 0, netTxBytes: 0, netRxBytes: 0,
      vbds: [{ devid: 51712, reads: 0, writes: k, readBytes: 0, writeBytes: k * 4096 }, { devid: 51728, reads: k * 2, writes: 0, readBytes: k * 8192, writeBytes: 0 }],
      vifs: [{ devid: 0, txPackets: k * 3, txBytes: k * 4500, rxPackets: k, rxBytes: k * 60 }],
    },
  });
  for (let k = 0; k <= 6; k++) s.sample(T0 + k * 5000, [two(k * 5)], HOST);
  const x = s.export({ start: -600, interval: 5, host: false, nowMs: T0 + 30_000 });
  const col = (n: string): number => x.legend.indexOf(`AVERAGE:vm:p:${n}`);
  const r = x.rows[1]!;
  assert.equal(r.values[col("vbd_xvda_write")], 4096);
  assert.equal(r.values[col("vbd_xvda_iops_write")], 1);
  assert.equal(r.values[col("vbd_xvdb_read")], 8192);
  assert.equal(r.values[col("vbd_xvdb_iops_read")], 2);
  assert.equal(r.values[col("vif_0_rx")], 4500); // dom0's rx: what the guest sent
  assert.equal(r.values[col("vif_0_tx_pkts")], 1);
  assert.equal(col("vbd_all_write"), -1);
});

test("gaps and restarted counters give unknown points, not invented rates", () => {
  const s = new RrdStore(() => "h");
  s.sample(T0, [dom("u", 1, 0, 0)], HOST);
  s.sample(T0 + 5000, [dom("u", 1, 5, 0)], HOST);
  // A reboot: a new domid, counters from 0.
  s.sample(T0 + 10_000, [dom("u", 2, 1, 0)], HOST);
  s.sample(T0 + 15_000, [dom("u", 2, 2, 0)], HOST);
  // 5 minutes without samples (longer than MAX_GAP_S), then two more.
  s.sample(T0 + 315_000, [dom("u", 2, 100, 0)], HOST);
  s.sample(T0 + 320_000, [dom("u", 2, 105, 0)], HOST);
  s.sample(T0 + 325_000, [dom("u", 2, 105, 0)], HOST);
  const x = s.export({ start: T0 / 1000, interval: 5, host: false, nowMs: T0 + 325_000 });
  const c = x.legend.indexOf("AVERAGE:vm:u:cpu_usage");
  const at = (t: number): number => x.rows.find((r) => r.t === t)!.values[c]!;
  const t0 = T0 / 1000;
  // Row times are the end of their 5 s: the row at t0 + 5 covers the first interval.
  assert.equal(at(t0 + 5), 0.5);
  assert.ok(Number.isNaN(at(t0 + 10)), "the first sample of the rebooted domain has no rate");
  assert.equal(at(t0 + 15), 0.1);
  assert.ok(Number.isNaN(at(t0 + 100)), "inside the gap: unknown");
  assert.equal(at(t0 + 320), 0.5);
  assert.equal(at(t0 + 325), 0);
});

test("sampling jitter: the rates' integral is kept (bytes written = Σ rate × 5 s over the complete rows)", () => {
  const s = new RrdStore(() => "h");
  // Samples 1.3 to 9.7 s apart (as refreshes on a loaded host are), a disk writing at varying speeds.
  let t = T0 + 1234, wsect = 0, written = 0;
  const gaps = [1300, 9700, 4100, 6600, 5000, 8200, 2900, 7777, 5555, 3100, 9000, 4444];
  s.sample(t, [dom("j", 1, 0, 0)], HOST);
  for (let k = 0; k < 60; k++) {
    t += gaps[k % gaps.length]!;
    const bytes = ((k * 7919) % 13) * 65536;
    wsect += bytes / 512;
    written += bytes;
    s.sample(t, [dom("j", 1, 0, wsect)], HOST);
  }
  const x = s.export({ start: -600, interval: 5, host: false, nowMs: t });
  const c = x.legend.indexOf("AVERAGE:vm:j:vbd_xvda_write");
  const sum = x.rows.reduce((n, r) => n + (Number.isNaN(r.values[c]!) ? 0 : r.values[c]! * 5), 0);
  // What was written between the first sample and the end of the last complete row: the rows hold all of it but
  // the part of the last interval after that row's end.
  const lastEnd = x.rows[0]!.t * 1000;
  assert.ok(lastEnd <= t && t - lastEnd < 5000);
  const lastInterval = gaps[59 % gaps.length]!, lastBytes = ((59 * 7919) % 13) * 65536;
  const expected = written - lastBytes * (t - lastEnd) / lastInterval;
  assert.ok(Math.abs(sum - expected) < 1e-3 * written, `Σ rate × 5 s = ${sum}, written up to the last row ${expected}`);
});

test("memory is bounded: fixed archives per VM, at most MAX_RRDS VMs, forgotten VMs dropped", () => {
  const s = new RrdStore(() => "h");
  for (let k = 0; k < 3; k++) s.sample(T0 + k * 5000, [dom("a", 1, k, 0)], HOST);
  const bytes = s.vm("a")!.bytes();
  // A week and a half of samples later the database is the same size.
  for (let k = 3; k < 3 + 200; k++) s.sample(T0 + k * 3_600_000, [dom("a", 1, k, 0)], HOST);
  assert.equal(s.vm("a")!.bytes(), bytes);
  assert.equal(bytes, ROWS_TOTAL * 11 * 8 + 3 * 11 * (8 + 2) + 3 * 11 * 8, "rows × data sources doubles, an accumulator per archive, the slot in progress"); // 36,498 bytes for 11 series
  s.retain(new Set());
  assert.equal(s.vm("a"), undefined);
  const many = Array.from({ length: MAX_RRDS + 10 }, (_, i) => dom(`v${i}`, i + 1, 0, 0, { spec: { ...dom("x", 1, 0, 0).spec, disks: [], vifs: [] } }));
  s.sample(T0 + 10 * 86_400_000, many, HOST);
  assert.equal(s.size, MAX_RRDS);
});
