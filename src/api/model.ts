/**
 * Xeno's machine seen as XAPI objects: one pool of one host; a VM per domain (Domain-0 with is_control_domain)
 * and per halted domain the API knows (one that ran under this xenod, or was in the state file, or halted by
 * the API); each VM's VM_metrics, VM_guest_metrics (running DomUs), console, VBDs (→ VDIs in one file SR) and
 * VIFs (→ a network per bridge). Records are rebuilt from the hypervisor's `list` and `info` on every domain
 * event and every few seconds (CPU time, memory), and put in the ObjectStore, which turns differences into
 * events. Refs are stable for the life of this xenod; VM UUIDs are the domains' UUIDs; host and pool UUIDs are
 * kept in the state file (STATE_FILE in the run directory) with the configs of halted VMs.
 */
import { randomUUID } from "node:crypto";
import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { DomainInfo, DomainSpec, HostInfo } from "../hv/protocol.js";
import type { ApiBackend } from "./backend.js";
import { ObjectStore, type XapiRecord } from "./store.js";
import { hostRecord, poolRecord, vmRecord } from "./records.js";
import { newRef, NULL_REF, XapiDateTime } from "./values.js";
import { RrdStore } from "./rrd.js";

export const STATE_FILE = "api-state.json";
/** How often records are refreshed without an event (CPU time, memory, I/O counters). */
export const REFRESH_MS = 5_000;
const MiB = 1024 * 1024;

interface SavedState {
  hostUuid: string;
  poolUuid: string;
  /** Halted VMs by UUID: the spec to start them with. */
  halted: Record<string, DomainSpec>;
  /** Suspended VMs by UUID: the save file VM.resume restores (absent in state files written before it). */
  suspended?: Record<string, string>;
}

/** The XAPI classes served (each has get_all_records). */
export const CLASSES = ["pool", "host", "host_metrics", "VM", "VM_metrics", "VM_guest_metrics", "VBD", "VDI", "SR", "VIF", "network", "console", "task", "message"] as const;

/** xapi's Xapi_globs.create_min_max_in_new_VM_RRDs: pool.other_config key; "true" gives VMs' new RRDs MIN and MAX. */
export const VM_MIN_MAX_KEY = "create_min_max_in_new_VM_RRDs";

export class XenModel {
  readonly store = new ObjectStore();
  /** Metric history (rrd.ts), sampled after each refresh. */
  readonly rrd = new RrdStore(() => this.state.hostUuid, () => this.poolOtherConfig[VM_MIN_MAX_KEY] === "true");
  private readonly keys = new Map<string, { ref: string; uuid: string }>();
  private state: SavedState;
  /** Running (or stopped but listed) domains by VM uuid, as last listed. */
  domains = new Map<string, DomainInfo>();
  host: HostInfo | null = null;
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private again = false;

  constructor(private readonly backend: ApiBackend, private readonly stateDir: string, private readonly log: (line: string, level?: "info" | "warn" | "error") => void) {
    this.state = this.load();
    backend.onEvent((e) => { if (e.event === "domain") void this.refresh(); });
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  stop(): void { if (this.timer) clearInterval(this.timer); this.timer = null; }

  private load(): SavedState {
    try {
      const s = JSON.parse(readFileSync(join(this.stateDir, STATE_FILE), "utf8")) as SavedState;
      if (typeof s.hostUuid === "string" && typeof s.poolUuid === "string" && s.halted && typeof s.halted === "object") return s;
      this.log(`${join(this.stateDir, STATE_FILE)} is not an API state file; starting a new one`, "warn");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.log(`cannot read ${join(this.stateDir, STATE_FILE)}: ${(e as Error).message}; starting a new one`, "warn");
    }
    const s: SavedState = { hostUuid: randomUUID(), poolUuid: randomUUID(), halted: {} };
    this.state = s;
    this.save();
    return s;
  }

  private save(): void {
    const path = join(this.stateDir, STATE_FILE);
    try {
      writeFileSync(path + ".new", JSON.stringify(this.state, null, 1) + "\n", { mode: 0o600 });
      renameSync(path + ".new", path);
    } catch (e) { this.log(`cannot write ${path}: ${(e as Error).message}`, "warn"); }
  }

  /** The ref (and UUID) of the object with a stable key, made at first use. */
  private id(key: string, uuid?: string): { ref: string; uuid: string } {
    let k = this.keys.get(key);
    if (!k) this.keys.set(key, (k = { ref: newRef(), uuid: uuid ?? randomUUID() }));
    return k;
  }

  vmRef(uuid: string): string { return this.id(`VM/${uuid}`, uuid).ref; }
  get hostRef(): string { return this.id("host", this.state.hostUuid).ref; }
  get poolRef(): string { return this.id("pool", this.state.poolUuid).ref; }

  /** The spec a halted VM starts with (undefined: not halted or unknown). */
  haltedSpec(uuid: string): DomainSpec | undefined { return this.domains.has(uuid) ? undefined : this.state.halted[uuid]; }

  /** Keeps `spec` as what a halted VM starts with (clean_shutdown restores the policies it changed). */
  keepHalted(uuid: string, spec: DomainSpec): void { this.state.halted[uuid] = { ...spec, uuid, paused: undefined }; this.save(); }

  /** The save file of a suspended VM (undefined: not suspended). */
  suspendFile(uuid: string): string | undefined { return this.domains.has(uuid) ? undefined : this.state.suspended?.[uuid]; }

  /** Marks a VM suspended in `path`, or (null) no longer suspended. */
  setSuspended(uuid: string, path: string | null): void {
    const m = (this.state.suspended ??= {});
    if (path === null) delete m[uuid]; else m[uuid] = path;
    this.save();
  }

  /** Forgets a halted VM (VM.destroy). */
  forget(uuid: string): void { delete this.state.halted[uuid]; this.save(); void this.refresh(); }

  /** Re-lists domains and host; concurrent calls share one refresh (and one more runs after it if asked meanwhile). */
  refresh(): Promise<void> {
    if (this.refreshing) { this.again = true; return this.refreshing; }
    this.refreshing = (async () => {
      do {
        this.again = false;
        try {
          const [list, info] = await Promise.all([this.backend.request({ op: "list" }), this.backend.request({ op: "info" })]);
          this.apply(list as DomainInfo[], info as HostInfo);
        } catch (e) {
          if (!this.host) this.log(`API: cannot list domains yet: ${(e as Error).message}`, "warn");
        }
      } while (this.again);
    })().finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  private apply(list: DomainInfo[], info: HostInfo): void {
    this.host = info;
    this.rrd.sample(Date.now(), list, info);
    this.domains = new Map(list.map((d) => [d.uuid, d]));
    let changed = false;
    for (const d of list) {
      if (d.domid === 0) continue;
      const spec = { ...d.spec, uuid: d.uuid, paused: undefined };
      if (!isSameSpec(this.state.halted[d.uuid], spec)) { this.state.halted[d.uuid] = spec; changed = true; }
    }
    if (changed) this.save();
    const seen = new Set<string>();
    const put = (cls: string, key: string, record: (id: { ref: string; uuid: string }) => XapiRecord, uuid?: string): string => {
      const id = this.id(key, uuid);
      this.store.put(cls, id.ref, record(id));
      seen.add(id.ref);
      return id.ref;
    };
    const hostRef = this.hostRef;
    const srRef = this.id("SR").ref, hostMetricsRef = this.id("host_metrics").ref;
    const vmRefs: string[] = [];
    const vdis = new Map<string, { readOnly: boolean; vbds: string[] }>();
    const networks = new Map<string, string[]>();
    const all: { uuid: string; d?: DomainInfo; spec?: DomainSpec }[] = [
      ...list.map((d) => ({ uuid: d.uuid, d, spec: d.domid === 0 ? undefined : d.spec })),
      ...Object.entries(this.state.halted).filter(([u]) => !this.domains.has(u)).map(([uuid, spec]) => ({ uuid, spec })),
    ];
    let dom0Ref = NULL_REF;
    for (const { uuid, d, spec } of all) {
      const vmRef = this.vmRef(uuid);
      vmRefs.push(vmRef);
      const running = d !== undefined && d.state !== "shutdown" && d.state !== "crashed" && d.state !== "dying";
      const isDom0 = d?.domid === 0;
      if (isDom0) dom0Ref = vmRef;
      const power = !d || !running ? (!d && this.state.suspended?.[uuid] ? "Suspended" : "Halted") : d.state === "paused" ? "Paused" : "Running";
      const live = power === "Running" || power === "Paused";
      const vbds: string[] = [], vifs: string[] = [], consoles: string[] = [];
      for (const disk of spec?.disks ?? []) {
        const vdiRef = this.id(`VDI/${disk.path}`).ref;
        const vbdRef = put("VBD", `VBD/${uuid}/${disk.devid}`, (id) => ({
          uuid: id.uuid, VM: vmRef, VDI: vdiRef, device: disk.vdev, userdevice: String(disk.devid), bootable: false,
          mode: disk.readOnly ? "RO" : "RW", type: "Disk", unpluggable: true, empty: false, currently_attached: live,
          status_code: 0, status_detail: "", other_config: {}, qos_algorithm_type: "", qos_algorithm_params: {}, allowed_operations: [], current_operations: {},
        }));
        vbds.push(vbdRef);
        const v = vdis.get(disk.path) ?? { readOnly: disk.readOnly, vbds: [] };
        v.vbds.push(vbdRef);
        vdis.set(disk.path, v);
      }
      for (const vif of spec?.vifs ?? []) {
        const netRef = this.id(`network/${vif.bridge}`).ref;
        const vifRef = put("VIF", `VIF/${uuid}/${vif.devid}`, (id) => ({
          uuid: id.uuid, VM: vmRef, network: netRef, device: String(vif.devid), MAC: vif.mac, MTU: vif.mtu, currently_attached: live,
          MAC_autogenerated: false, status_code: 0, status_detail: "", other_config: {}, qos_algorithm_type: vif.rate ? "ratelimit" : "",
          qos_algorithm_params: vif.rate ? { kbps: String(Math.round(vif.rate.bytesPerInterval * 1e6 / vif.rate.intervalUsecs / 1024)) } : {},
          allowed_operations: [], current_operations: {}, locking_mode: "network_default",
        }));
        vifs.push(vifRef);
        networks.set(vif.bridge, [...(networks.get(vif.bridge) ?? []), vifRef]);
      }
      if (live) {
        consoles.push(put("console", `console/${uuid}`, (id) => ({ uuid: id.uuid, protocol: "vt100", location: "", VM: vmRef, other_config: {} })));
      }
      const metricsRef = put("VM_metrics", `VM_metrics/${uuid}`, (id) => ({
        uuid: id.uuid, memory_actual: (d?.memKiB ?? 0) * 1024, VCPUs_number: d?.onlineVcpus ?? 0,
        VCPUs_utilisation: {}, VCPUs_CPU: {}, VCPUs_params: {}, VCPUs_flags: {}, state: [],
        start_time: new XapiDateTime((d?.startTime ?? 0) * 1000), install_time: new XapiDateTime(0), last_updated: new XapiDateTime(0),
        other_config: { "xeno:cpu_seconds": (d?.cpuSeconds ?? 0).toFixed(3) }, hvm: false, nested_virt: false, nomigrate: false, current_domain_type: "pvh",
      }));
      const guestRef = live && !isDom0
        ? put("VM_guest_metrics", `VM_guest_metrics/${uuid}`, (id) => ({
          uuid: id.uuid, os_version: {}, PV_drivers_version: {}, PV_drivers_up_to_date: true, PV_drivers_detected: true, memory: {}, disks: {},
          networks: {}, other: {}, live: true, last_updated: new XapiDateTime(0), other_config: {}, can_use_hotplug_vbd: "yes", can_use_hotplug_vif: "yes",
        }))
        : NULL_REF;
      put("VM", `VM/${uuid}`, () => vmRecord({
        uuid, d, spec, power, isDom0, hostRef, vbds, vifs, consoles, metricsRef, guestRef, suspendFile: this.state.suspended?.[uuid] ?? "",
      }), uuid);
    }
    for (const [path, v] of vdis) {
      let size = 0, used = 0;
      try { const st = statSync(path); size = st.size; used = st.blocks * 512; } catch { /* missing image: size 0, missing true */ }
      put("VDI", `VDI/${path}`, (id) => ({
        uuid: id.uuid, name_label: basename(path), name_description: path, SR: srRef, VBDs: v.vbds, virtual_size: size, physical_utilisation: used,
        type: "user", sharable: false, read_only: v.readOnly, location: path, managed: true, missing: size === 0 && used === 0 && !exists(path),
        is_a_snapshot: false, snapshot_of: NULL_REF, snapshots: [], other_config: {}, sm_config: {}, xenstore_data: {}, tags: [], crash_dumps: [],
        allowed_operations: [], current_operations: {}, storage_lock: false, parent: NULL_REF, is_tools_iso: false, cbt_enabled: false,
      }));
    }
    put("SR", "SR", (id) => ({
      uuid: id.uuid, name_label: "Host files", name_description: "Raw image files named in domains' disk= specs", type: "file", content_type: "user",
      VDIs: [...vdis.keys()].map((p) => this.id(`VDI/${p}`).ref), PBDs: [], shared: false, physical_size: 0, physical_utilisation: 0, virtual_allocation: 0,
      other_config: {}, sm_config: {}, tags: [], allowed_operations: [], current_operations: {}, blobs: {}, local_cache_enabled: false, is_tools_sr: false,
    }));
    for (const [bridge, vifRefs] of networks) {
      put("network", `network/${bridge}`, (id) => ({
        uuid: id.uuid, name_label: bridge, name_description: `Xeno virtual switch ${bridge}`, bridge, VIFs: vifRefs, PIFs: [], MTU: 1500,
        other_config: {}, tags: [], blobs: {}, allowed_operations: [], current_operations: {}, managed: true, purpose: [],
      }));
    }
    const freeBytes = info.freeMemoryMiB * MiB, totalBytes = info.totalMemoryMiB * MiB;
    put("host_metrics", "host_metrics", (id) => ({ uuid: id.uuid, memory_total: totalBytes, memory_free: freeBytes, live: true, last_updated: new XapiDateTime(0), other_config: {} }));
    const resident = vmRefs.filter((r) => { const p = this.store.get(r)?.record.power_state; return p === "Running" || p === "Paused"; });
    put("host", "host", (id) => hostRecord(id.uuid, info, hostMetricsRef, resident, dom0Ref), this.state.hostUuid);
    put("pool", "pool", (id) => poolRecord(id.uuid, hostRef, srRef, { ...this.poolOtherConfig }), this.state.poolUuid);
    // Objects of the served classes that are gone (a domain destroyed, a disk detached) are removed: "del" events.
    for (const cls of CLASSES) {
      if (cls === "task" || cls === "message") continue; // not from the hypervisor: tasks.ts keeps tasks
      for (const ref of this.store.refs(cls)) if (!seen.has(ref)) this.store.remove(ref);
    }
    this.rrd.retain(new Set(all.map((v) => v.uuid)));
  }

  /** pool.other_config (Xen Orchestra keeps its barrier keys there). */
  readonly poolOtherConfig: Record<string, string> = {};
  setPoolOtherConfig(key: string, value: string | null): void {
    if (value === null) delete this.poolOtherConfig[key]; else this.poolOtherConfig[key] = value;
    const pool = this.store.get(this.poolRef);
    if (pool) this.store.put("pool", this.poolRef, { ...pool.record, other_config: { ...this.poolOtherConfig } });
  }
}

function exists(path: string): boolean { try { statSync(path); return true; } catch { return false; } }

function isSameSpec(a: DomainSpec | undefined, b: DomainSpec): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}
