/**
 * Metric history as XAPI's rrdd keeps it (xapi-project/xen-api ocaml/libs/xapi-rrd): one round-robin database
 * per VM and one for the host, each a fixed set of data sources sampled every STEP_S seconds (a primary data
 * point, PDP) and consolidated by AVERAGE (and MIN and MAX: always for the host, for VMs when the pool's
 * other_config:create_min_max_in_new_VM_RRDs is "true", as xapi) into three archives (RRAs) of fixed size:
 *
 *   5 s × 120 rows (10 minutes), 60 s × 120 rows (2 hours), 3600 s × 168 rows (one week)
 *
 * so a VM's history costs a fixed ROWS_TOTAL × (number of its data sources) doubles whatever its age. Rates
 * (CPU, disk and network) are derived from the hypervisor's cumulative counters between two samples; a counter
 * that went backwards (a new domain under the same VM: reboot, restore) or a gap longer than MAX_GAP_S gives
 * unknown (NaN) points rather than an invented rate. A row is AVERAGE of its known PDPs, unknown when fewer
 * than half are known (rrdtool's xff = 0.5, as xapi's).
 *
 * Data source names are xapi's (its rrdd_server/xenops plugin names): host `cpu_avg` (0..1 over the pCPUs),
 * `memory_total_kib`, `memory_free_kib`; VM `cpu_usage` (0..1 over its vCPUs), `memory` and
 * `memory_target` (bytes), `vbd_DEV_read`/`_write` (bytes/s), `vbd_DEV_iops_read`/`_iops_write` (requests/s),
 * `vif_N_rx`/`_tx` (bytes/s, as xapi from dom0's side: rx is what the guest sent), and Xeno's `vif_N_rx_pkts`/
 * `_tx_pkts` (packets/s; xapi has no packet series). DEV is the disk's vdev (`xvda`), N the vif's devid: the
 * hypervisor reports each device's counters (src/hv/io-stats.ts, the first 8 devices of a domain); from one
 * that reports only the domain's sums, a VM with several disks or vifs gets one `all` series of each. VM `cpuN`
 * (0..1: the fraction of the interval vCPU N ran, xcp-rrdd's "CPUN usage", a Derive of the vCPU's cputime in
 * seconds, min 0 max 1) comes from the hypervisor's per-vCPU seconds (DomainInfo.vcpuCpuSeconds); Xen
 * Orchestra's VM CPU graph reads these (/^cpu(\d+)$/ in xo-server's xapi-stats).
 *
 * Sampling runs in `sample` (called by the model after each refresh: at least every 5 s, and on domain events;
 * samples less than a second apart are ignored). Each sample's values hold over the interval since the previous
 * one, split at 5 s boundaries (Rrd.update), so rates keep their integral whatever the sampling jitter.
 */
import type { DomainInfo, HostInfo } from "../hv/protocol.js";

export const STEP_S = 5;
/** xcp-rrdd's name of a VM's vCPU k series (its xenops plugin: Printf.sprintf "cpu%d" k). */
export function vcpuDs(k: number): string { return `cpu${k}`; }
/** The archives: PDPs per row and rows (xapi's timescales for VMs and hosts). */
export const RRAS: readonly { pdp: number; rows: number }[] = [{ pdp: 1, rows: 120 }, { pdp: 12, rows: 120 }, { pdp: 720, rows: 168 }];
export const ROWS_TOTAL = RRAS.reduce((n, r) => n + r.rows, 0);
/** A longer gap between two samples gives unknown points, not one averaged rate. */
export const MAX_GAP_S = 60;
/** VMs whose history is kept (beyond this the least recently sampled goes: memory stays bounded). */
export const MAX_RRDS = 4096;

/** The consolidation functions kept: AVERAGE always; MIN and MAX for the host and, when asked, VMs (Rrd.minMax). */
export type Cf = "AVERAGE" | "MIN" | "MAX";

class Archive {
  /** rows × nds, row-major; row r of the archive's time line lives at (r mod rows). */
  readonly data: Float64Array;
  readonly acc: Float64Array;
  readonly accN: Uint16Array;
  /**
   * MIN and MAX of the row's known PDPs (same layout), for an archive of more than one PDP per row kept with
   * minMax; null otherwise (a row of one PDP is its own minimum and maximum: `data` serves all three, as rrdtool).
   */
  readonly minData: Float64Array | null;
  readonly maxData: Float64Array | null;
  private readonly accMin: Float64Array | null;
  private readonly accMax: Float64Array | null;
  /** The row being accumulated or last closed (time line index: floor(slot / pdp)); -1 before the first PDP. */
  cur = -1;
  private closed = false;
  constructor(readonly pdp: number, readonly rows: number, readonly nds: number, minMax: boolean) {
    this.data = new Float64Array(rows * nds).fill(NaN);
    this.acc = new Float64Array(nds);
    this.accN = new Uint16Array(nds);
    const mm = minMax && pdp > 1;
    this.minData = mm ? new Float64Array(rows * nds).fill(NaN) : null;
    this.maxData = mm ? new Float64Array(rows * nds).fill(NaN) : null;
    this.accMin = mm ? new Float64Array(nds).fill(Infinity) : null;
    this.accMax = mm ? new Float64Array(nds).fill(-Infinity) : null;
  }

  /** Feeds the PDP of `slot`; rows passed over without PDPs become unknown; a row closes with its last slot. */
  feed(slot: number, v: Float64Array): void {
    const row = Math.floor(slot / this.pdp);
    if (row !== this.cur) {
      if (this.cur >= 0) {
        if (!this.closed) this.close(this.cur);
        for (let r = Math.max(this.cur + 1, row - this.rows); r < row; r++) {
          const a = (r % this.rows) * this.nds, b = a + this.nds;
          this.data.fill(NaN, a, b);
          this.minData?.fill(NaN, a, b);
          this.maxData?.fill(NaN, a, b);
        }
      }
      this.acc.fill(0);
      this.accN.fill(0);
      this.accMin?.fill(Infinity);
      this.accMax?.fill(-Infinity);
      this.cur = row;
      this.closed = false;
    }
    const lo = this.accMin, hi = this.accMax;
    for (let i = 0; i < this.nds; i++) {
      const x = v[i]!;
      if (Number.isNaN(x)) continue;
      this.acc[i]! += x; this.accN[i]!++;
      if (lo !== null && x < lo[i]!) lo[i] = x;
      if (hi !== null && x > hi[i]!) hi[i] = x;
    }
    if ((slot + 1) % this.pdp === 0) { this.close(row); this.closed = true; }
  }

  private close(row: number): void {
    const at = (row % this.rows) * this.nds;
    for (let i = 0; i < this.nds; i++) {
      const n = this.accN[i]!, known = n * 2 >= this.pdp;
      this.data[at + i] = known ? this.acc[i]! / n : NaN;
      // MIN and MAX with the same xff as AVERAGE: unknown when fewer than half of the row's PDPs are known.
      if (this.minData !== null) this.minData[at + i] = known ? this.accMin![i]! : NaN;
      if (this.maxData !== null) this.maxData[at + i] = known ? this.accMax![i]! : NaN;
    }
  }

  /** The last complete row. */
  get last(): number { return this.closed ? this.cur : this.cur - 1; }

  value(row: number, ds: number, cf: Cf = "AVERAGE"): number {
    if (row > this.last || row <= this.last - this.rows || row < 0) return NaN;
    const d = cf === "MIN" ? this.minData ?? this.data : cf === "MAX" ? this.maxData ?? this.data : this.data;
    return d[(row % this.rows) * this.nds + ds]!;
  }

  bytes(): number {
    return this.data.byteLength + this.acc.byteLength + this.accN.byteLength +
      2 * (this.minData?.byteLength ?? 0) + 2 * (this.accMin?.byteLength ?? 0);
  }
}

/**
 * One database: its data source names, the 5 s slot being filled, and its three archives. A sample gives each
 * data source a value that held over the interval since the previous sample (a rate, or a gauge's current value);
 * the interval is split at slot boundaries and each slot's PDP is the time-weighted mean of what covered it
 * (unknown when less than half of the slot is known), as rrdtool does. So a rate's integral is kept: bytes
 * written are the sum of rate × 5 s over the slots, whatever the jitter of the sampling.
 */
export class Rrd {
  readonly archives: Archive[];
  /** Time of the last sample (Unix s); -1 before the first. */
  lastT = -1;
  private slot = -1;
  private readonly sum: Float64Array;
  private readonly known: Float64Array;
  private readonly pdp: Float64Array;
  /** `minMax`: MIN and MAX archives too (xapi: always for the host; for VMs when the pool asks, RrdStore). */
  constructor(readonly names: readonly string[], readonly minMax = false) {
    this.archives = RRAS.map((a) => new Archive(a.pdp, a.rows, names.length, minMax));
    this.sum = new Float64Array(names.length);
    this.known = new Float64Array(names.length);
    this.pdp = new Float64Array(names.length);
  }

  /** `v` (one value per name, from index 0; NaN: unknown) held over (lastT, t]; a gap over MAX_GAP_S is left unknown. */
  update(t: number, v: Float64Array): void {
    const t0 = this.lastT;
    this.lastT = t;
    if (t0 < 0 || t <= t0) return;
    if (t - t0 > MAX_GAP_S) {
      // Nothing known in between: close the slot in progress; the archives mark the rows skipped unknown.
      if (this.slot >= 0) this.flush();
      this.slot = -1;
      return;
    }
    for (let a = t0; a < t;) {
      const slot = Math.floor(a / STEP_S), slotEnd = (slot + 1) * STEP_S;
      if (slot !== this.slot) {
        if (this.slot >= 0) this.flush();
        this.slot = slot;
      }
      const end = Math.min(t, slotEnd), d = end - a;
      for (let i = 0; i < this.sum.length; i++) {
        const x = v[i]!;
        if (!Number.isNaN(x)) { this.sum[i]! += x * d; this.known[i]! += d; }
      }
      a = end;
      if (end === slotEnd) { this.flush(); this.slot = -1; }
    }
  }

  /** The slot in progress as a PDP into the archives. */
  private flush(): void {
    for (let i = 0; i < this.pdp.length; i++) this.pdp[i] = this.known[i]! * 2 >= STEP_S ? this.sum[i]! / this.known[i]! : NaN;
    for (const a of this.archives) a.feed(this.slot, this.pdp);
    this.sum.fill(0);
    this.known.fill(0);
  }

  bytes(): number {
    return this.archives.reduce((n, a) => n + a.bytes(), 0) + this.sum.byteLength * 3;
  }
}

/** Counters of a VM at its last sample (to derive rates). */
interface Prev { t: number; domid: number; cnt: number[] }

export interface RrdExport {
  start: number; step: number; end: number;
  legend: string[];
  rows: { t: number; values: number[] }[];
}

export class RrdStore {
  readonly host: Rrd = new Rrd(["cpu_avg", "memory_total_kib", "memory_free_kib"], true);
  /** VM uuid → its database (Map order: least recently sampled first). */
  private readonly vms = new Map<string, Rrd>();
  private readonly prev = new Map<string, Prev>();
  private hostPrev: { t: number; cpu: number } | null = null;
  /** Values of one sample (reused; grown for a VM with more series). */
  private scratch = new Float64Array(32);

  /**
   * `vmMinMax`: whether a VM's database made now keeps MIN and MAX too — xapi's pool
   * other_config:create_min_max_in_new_VM_RRDs=true (off by default: they cost 2 × 288 more doubles per data source).
   */
  constructor(readonly hostUuid: () => string, private readonly vmMinMax: () => boolean = () => false) {}

  get size(): number { return this.vms.size; }
  vm(uuid: string): Rrd | undefined { return this.vms.get(uuid); }

  /** One sample of every listed domain and of the host at time `ms` (Unix ms). Ignored within a step already recorded. */
  sample(ms: number, domains: Iterable<DomainInfo>, host: HostInfo | null): void {
    const t = ms / 1000;
    // Within a second of the last sample (a refresh on every domain event): nothing to add.
    if (t - this.host.lastT < 1) return;
    let cpuTotal = 0;
    for (const d of domains) {
      cpuTotal += d.cpuSeconds;
      if (d.state === "shutdown" || d.state === "crashed" || d.state === "dying") continue;
      this.sampleVm(t, d);
    }
    const v = this.scratch;
    const hp = this.hostPrev;
    const pcpus = host?.pcpus ?? host?.nrCpus ?? 1;
    const gapOk = hp !== null && t - hp.t <= MAX_GAP_S && t > hp.t;
    v[0] = gapOk && cpuTotal >= hp.cpu ? Math.min(1, (cpuTotal - hp.cpu) / (t - hp.t) / pcpus) : NaN;
    v[1] = host ? host.totalMemoryMiB * 1024 : NaN;
    v[2] = host ? host.freeMemoryMiB * 1024 : NaN;
    this.host.update(t, v);
    this.hostPrev = { t, cpu: cpuTotal };
  }

  private sampleVm(t: number, d: DomainInfo): void {
    const disks = d.spec?.disks ?? [], vifs = d.spec?.vifs ?? [];
    const io = d.io;
    // Names, and the cumulative counter behind each rate series (NaN: not reported). Per device when the
    // hypervisor reports devices (io.vbds / io.vifs), else one series of the domain's sums.
    const names = ["cpu_usage", "memory", "memory_target"];
    const cnt: number[] = [d.cpuSeconds];
    // cpuN right after: cnt[1 .. ncpu] (rates capped at 1, as xcp-rrdd's max:1.0).
    const vc = d.vcpuCpuSeconds ?? [];
    const ncpu = Math.min(vc.length, d.vcpus);
    for (let k = 0; k < ncpu; k++) { names.push(vcpuDs(k)); cnt.push(vc[k]!); }
    const vbd = (dev: string, rb: number, wb: number, rd: number, wr: number): void => {
      names.push(`vbd_${dev}_read`, `vbd_${dev}_write`, `vbd_${dev}_iops_read`, `vbd_${dev}_iops_write`);
      cnt.push(rb, wb, rd, wr);
    };
    // xapi names a vif's series from dom0's side: rx is what the guest transmitted.
    const vif = (dev: string, rx: number, tx: number, rxp: number, txp: number): void => {
      names.push(`vif_${dev}_rx`, `vif_${dev}_tx`, `vif_${dev}_rx_pkts`, `vif_${dev}_tx_pkts`);
      cnt.push(rx, tx, rxp, txp);
    };
    if (io?.vbds !== undefined) {
      for (const k of disks) {
        const c = io.vbds.find((x) => x.devid === k.devid);
        vbd(k.vdev, c?.readBytes ?? NaN, c?.writeBytes ?? NaN, c?.reads ?? NaN, c?.writes ?? NaN);
      }
    } else if (disks.length > 0) {
      vbd(disks.length === 1 ? disks[0]!.vdev : "all", (io?.vbdRsect ?? NaN) * 512, (io?.vbdWsect ?? NaN) * 512, io?.vbdRd ?? NaN, io?.vbdWr ?? NaN);
    }
    if (io?.vifs !== undefined) {
      for (const n of vifs) {
        const c = io.vifs.find((x) => x.devid === n.devid);
        vif(String(n.devid), c?.txBytes ?? NaN, c?.rxBytes ?? NaN, c?.txPackets ?? NaN, c?.rxPackets ?? NaN);
      }
    } else if (vifs.length > 0) {
      vif(vifs.length === 1 ? String(vifs[0]!.devid) : "all", io?.netTxBytes ?? NaN, io?.netRxBytes ?? NaN, io?.netTxPackets ?? NaN, io?.netRxPackets ?? NaN);
    }
    let rrd = this.vms.get(d.uuid);
    // Devices added or removed: a new set of series (xapi too starts new data sources; old ones are dropped).
    if (rrd && (rrd.names.length !== names.length || rrd.names.some((n, i) => n !== names[i]))) rrd = undefined;
    if (!rrd) {
      rrd = new Rrd(names, this.vmMinMax());
      this.prev.delete(d.uuid);
    }
    this.vms.delete(d.uuid); // re-inserted last: most recently sampled
    this.vms.set(d.uuid, rrd);
    while (this.vms.size > MAX_RRDS) { const old = this.vms.keys().next().value!; this.vms.delete(old); this.prev.delete(old); }

    const p = this.prev.get(d.uuid);
    const dt = p ? t - p.t : 0;
    // Rates only across one domain's life and a short gap: a counter that restarted is not a negative rate.
    let ok = p !== undefined && p.domid === d.domid && dt > 0 && dt <= MAX_GAP_S;
    if (ok) for (let i = 0; i < cnt.length; i++) if (cnt[i]! < p!.cnt[i]!) ok = false;
    const v = this.scratch.length >= names.length ? this.scratch : (this.scratch = new Float64Array(names.length));
    v[0] = ok ? Math.min(1, (cnt[0]! - p!.cnt[0]!) / dt / Math.max(1, d.vcpus)) : NaN;
    v[1] = d.memKiB * 1024;
    v[2] = (d.domid === 0 ? d.memKiB : d.targetKiB) * 1024;
    // (NaN counters give NaN rates: a hypervisor without packet or per-device counts.)
    for (let i = 1; i < cnt.length; i++) v[i + 2] = ok ? (cnt[i]! - p!.cnt[i]!) / dt : NaN;
    for (let i = 1; i <= ncpu; i++) v[i + 2] = Math.min(1, v[i + 2]!);
    rrd.update(t, v);
    this.prev.set(d.uuid, { t, domid: d.domid, cnt });
  }

  /** Drops the history of VMs not in `keep` (forgotten by the API). */
  retain(keep: Set<string>): void {
    for (const u of [...this.vms.keys()]) if (!keep.has(u)) { this.vms.delete(u); this.prev.delete(u); }
  }

  /**
   * xapi's rrd_updates (Rrd_updates.create_multi): rows of the archive whose step is the smallest ≥ `interval`
   * that reaches back to `start` (else the coarsest), newest first, from its last complete row back to `start`;
   * legend entries `CF:host:UUID:NAME` and `CF:vm:UUID:NAME`. `start` < 0 is relative to now. `cf` MIN or MAX:
   * only the databases that keep them (the host's; VMs' made with vmMinMax), as xapi's rrd_updates takes the RRAs
   * of that CF.
   */
  export(opts: { start: number; interval: number; host: boolean; vmUuid?: string; nowMs: number; cf?: Cf }): RrdExport {
    const cf = opts.cf ?? "AVERAGE";
    const dbs: [string, Rrd][] = [];
    if (opts.host) dbs.push([`host:${this.hostUuid()}:`, this.host]);
    for (const [u, r] of this.vms) if ((opts.vmUuid === undefined || opts.vmUuid === u) && (cf === "AVERAGE" || r.minMax)) dbs.push([`vm:${u}:`, r]);
    const now = opts.nowMs / 1000;
    const start = opts.start < 0 ? now + opts.start : opts.start;
    const want = Math.max(STEP_S, opts.interval);
    // "Reaches back" with one row of slack: a client asking for now − 600 s with now rounded down still gets 5 s rows.
    let ai = RRAS.findIndex((a) => a.pdp * STEP_S >= want && now - (a.rows + 1) * a.pdp * STEP_S <= start);
    if (ai < 0) ai = RRAS.length - 1;
    const step = RRAS[ai]!.pdp * STEP_S, rows = RRAS[ai]!.rows;
    // The last complete row over all databases (they are sampled together; a VM not sampled lately has NaNs there).
    let last = -1;
    for (const [, r] of dbs) last = Math.max(last, r.archives[ai]!.last);
    const legend: string[] = [];
    for (const [prefix, r] of dbs) for (const n of r.names) legend.push(`${cf}:${prefix}${n}`);
    const out: RrdExport["rows"] = [];
    // Row r covers [r·step, (r+1)·step): it is reported at its end time, as xapi reports a CDP.
    for (let row = last, k = 0; row >= 0 && k < rows && (row + 1) * step >= start; row--, k++) {
      const values: number[] = [];
      for (const [, r] of dbs) { const a = r.archives[ai]!; for (let i = 0; i < r.names.length; i++) values.push(a.value(row, i, cf)); }
      out.push({ t: (row + 1) * step, values });
    }
    const end = last >= 0 ? (last + 1) * step : Math.floor(now / step) * step;
    return { start: out.length > 0 ? out[out.length - 1]!.t : end, step, end, legend, rows: out };
  }
}

/** xapi's Utils.f_to_s: NaN and infinities by name, other values with 4 decimals. */
function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v.toFixed(4);
}

/** The rrdtool xport XML xapi writes for /rrd_updates (no whitespace between elements). */
export function rrdXml(x: RrdExport): string {
  let s = `<?xml version="1.0" encoding="UTF-8"?><xport><meta><start>${x.start}</start><step>${x.step}</step><end>${x.end}</end>` +
    `<rows>${x.rows.length}</rows><columns>${x.legend.length}</columns><legend>`;
  for (const l of x.legend) s += `<entry>${l}</entry>`;
  s += "</legend></meta><data>";
  for (const r of x.rows) { s += `<row><t>${r.t}</t>`; for (const v of r.values) s += `<v>${num(v)}</v>`; s += "</row>"; }
  return s + "</data></xport>";
}

/** xapi's json=true form: values as strings ("NaN" for unknown). */
export function rrdJson(x: RrdExport): string {
  return JSON.stringify({
    meta: { start: x.start, step: x.step, end: x.end, rows: x.rows.length, columns: x.legend.length, legend: x.legend },
    data: x.rows.map((r) => ({ t: r.t, values: r.values.map(num) })),
  });
}
