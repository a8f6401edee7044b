/**
 * Output formats of the xl subcommands, reproduced from Xen's tools/xl (xl_info.c, xl_vcpu.c, xl_block.c,
 * xl_nic.c) and tools/xentop/xentop.c, column for column: the printf formats are quoted next to each function.
 * Pure functions of the domain table and HostInfo, so tests compare exact strings.
 *
 * Where Xeno does not know a value xl prints as a number (a vCPU's time when vCPUs share the domain's thread,
 * the pCPU of a domain that never ran), the column shows "-" at the same width instead of a made-up number.
 */
import type { DeviceInfo, DomainIo, HostInfo, ShutdownReason } from "../../hv/protocol.js";
import type { Dom } from "./domains.js";

/** printf %-Ns */
export function left(s: string | number, w: number): string { return String(s).padEnd(w); }
/** printf %Ns */
export function right(s: string | number, w: number): string { return String(s).padStart(w); }
/**
 * printf %N.1f. glibc rounds the exact binary value half-to-even; toFixed rounds exact ties up. A double is an
 * exact tie at one decimal only when its fraction is .25 or .75 (x·4 odd): there the even neighbour is taken.
 */
export function fixed1(x: number, w: number): string {
  let s: string;
  if (Number.isInteger(x * 4) && !Number.isInteger(x * 2)) {
    const lo = Math.floor(x * 10);
    s = ((lo % 2 === 0 ? lo : lo + 1) / 10).toFixed(1);
  } else {
    s = x.toFixed(1);
  }
  return s.padStart(w);
}

/** libxl_shutdown_reason values (xen/include/public/sched.h SHUTDOWN_*), as `xl list -v` prints them. */
export const SHUTDOWN_REASON_CODE: Record<ShutdownReason, number> = {
  poweroff: 0, reboot: 1, suspend: 2, crash: 3, watchdog: 4, soft_reset: 5,
};
/** xl_info.c list_domains: shutdown_reason_letters[] = "-rscwS", indexed by the reason code. */
const REASON_LETTERS = "-rscwS";

/** The reason a shut-down domain has (crashed without a reason: crash), or undefined when not shut down. */
function shutdownReasonOf(d: Dom): ShutdownReason | undefined {
  if (d.state === "shutdown") return d.shutdownReason ?? "poweroff";
  if (d.state === "crashed") return d.shutdownReason ?? "crash";
  return undefined;
}

/** xl list's State column: r b p s, the shutdown reason letter, d ("%c%c%c%c%c%c"). */
export function stateLetters(d: Dom): string {
  const reason = shutdownReasonOf(d);
  return (d.state === "running" ? "r" : "-") +
    (d.state === "blocked" ? "b" : "-") +
    (d.state === "paused" ? "p" : "-") +
    (reason !== undefined ? "s" : "-") +
    REASON_LETTERS[reason === undefined ? 0 : SHUTDOWN_REASON_CODE[reason]]! +
    (d.state === "dying" ? "d" : "-");
}

/** Extra columns of xl list: -v (UUID, reason code, security label), -Z (label), -c (cpupool), -n (NUMA). */
export interface ListColumns { verbose?: boolean; context?: boolean; cpupool?: boolean; numa?: boolean }

/** xl list header: "Name                                        ID   Mem VCPUs\tState\tTime(s)" and the extras' titles. */
export function listHeader(c: ListColumns = {}): string {
  return "Name                                        ID   Mem VCPUs\tState\tTime(s)" +
    (c.verbose ? "   UUID                            Reason-Code\tSecurity Label" : "") +
    (c.context && !c.verbose ? "   Security Label" : "") +
    (c.cpupool ? "         Cpupool" : "") +
    (c.numa ? " NODE Affinity" : "") + "\n";
}

/**
 * One xl list row: "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f" (name, domid, Mem MiB, online vCPUs, state,
 * CPU seconds); -v appends " %s" UUID and " %8x" reason code (or " %8s" "-"); -v/-Z " %16s" security label
 * (Xeno has no XSM labels: "-"); -c "%16s" cpupool (the one pool, "Pool-0"); -n " " and the node affinity
 * ("all": one node).
 */
export function listRow(d: Dom, c: ListColumns = {}): string {
  let s = `${left(d.name, 40)} ${right(d.domid, 5)} ${right(Math.floor(d.memKiB / 1024), 5)} ${right(d.onlineVcpus, 5)}` +
    `     ${stateLetters(d)}  ${fixed1(d.cpuSeconds, 8)}`;
  if (c.verbose) {
    const reason = shutdownReasonOf(d);
    s += ` ${d.uuid}` + ` ${right(reason !== undefined ? SHUTDOWN_REASON_CODE[reason].toString(16) : "-", 8)}`;
  }
  if (c.verbose || c.context) s += ` ${right("-", 16)}`;
  if (c.cpupool) s += right("Pool-0", 16);
  if (c.numa) s += " all";
  return s + "\n";
}

export function formatList(doms: readonly Dom[], c: ListColumns = {}): string {
  return listHeader(c) + doms.map((d) => listRow(d, c)).join("");
}

/** libxl's JSON names of on_* actions ("rename-restart" is LIBXL_ACTION_ON_SHUTDOWN_RESTART_RENAME). */
function actionJSON(a: string): string {
  return a === "rename-restart" ? "restart_rename" : a.replace(/-/g, "_");
}

/**
 * `xl list -l`: a JSON array of {domid, config} where config has the shape of libxl_domain_config's JSON
 * (c_info, b_info, disks, nics, on_poweroff/on_reboot/on_crash), built from the DomainSpec; yajl's beautified
 * output indents by 4. Xeno adds "xl_config_file"/"xl_config" (the file and its text) when xenod kept them.
 */
export function formatListLong(doms: readonly Dom[]): string {
  const out = doms.map((d) => {
    const s = d.spec;
    const c_info: Record<string, unknown> = { type: s === undefined || d.domid === 0 ? "pv" : s.xen ? "pvh" : "hvm", name: d.name, uuid: d.uuid };
    const b_info: Record<string, unknown> = {
      max_vcpus: d.vcpus,
      avail_vcpus: Array.from({ length: d.onlineVcpus }, (_, i) => i),
      max_memkb: d.maxMemKiB,
      target_memkb: d.targetKiB,
    };
    const config: Record<string, unknown> = { c_info, b_info };
    // Domain-0 (the toolstack) has no kernel or devices of its own to show.
    if (s !== undefined && d.domid !== 0) {
      b_info.kernel = s.kernel;
      if (s.ramdisk !== undefined) b_info.ramdisk = s.ramdisk;
      b_info.cmdline = s.cmdline;
      config.disks = s.disks.map((k) => ({ pdev_path: k.path, vdev: k.vdev, format: "raw", readwrite: k.readOnly ? 0 : 1 }));
      config.nics = s.vifs.map((v) => ({ devid: v.devid, mtu: v.mtu, mac: v.mac.toLowerCase(), bridge: v.bridge, nictype: "vif" }));
      const t = s.toolstack;
      if (t !== undefined) {
        config.on_poweroff = actionJSON(t.onPoweroff);
        config.on_reboot = actionJSON(t.onReboot);
        config.on_crash = actionJSON(t.onCrash);
        if (t.configFile !== undefined) config.xl_config_file = t.configFile;
        if (t.configText !== undefined) config.xl_config = t.configText;
      }
    }
    return { domid: d.domid, config };
  });
  return JSON.stringify(out, null, 4) + "\n";
}

// ---- xl info ----

/** The lines of `xl info` that Xeno can fill truthfully, in xl's order ("%-23s: %s"). */
export function infoLines(h: HostInfo, osVersion: string): [string, string][] {
  return [
    ["host", h.host],
    ["release", h.release],
    ["version", osVersion],
    ["machine", h.machine],
    ["nr_cpus", String(h.nrCpus)],
    ["max_cpu_id", String(h.nrCpus - 1)],
    // Xeno's machine model has no NUMA: one node.
    ["nr_nodes", "1"],
    ["total_memory", String(h.totalMemoryMiB)],
    ["free_memory", String(h.freeMemoryMiB)],
    // No page sharing and no claims in Xeno: these are 0 by construction, not unknown.
    ["sharing_freed_memory", "0"],
    ["sharing_used_memory", "0"],
    ["outstanding_claims", "0"],
    ["free_cpus", "0"],
    ["xen_major", String(h.xenMajor)],
    ["xen_minor", String(h.xenMinor)],
    ["xen_extra", h.xenExtra],
    ["xen_version", `${h.xenMajor}.${h.xenMinor}${h.xenExtra}`],
    // Guests are AArch64 only (Xen on arm64 says "xen-3.0-aarch64 xen-3.0-armv7l"; Xeno runs no 32-bit guests).
    ["xen_caps", "xen-3.0-aarch64"],
    ["xen_pagesize", "4096"],
    ["xenstored_socket", h.xenstoredSocket],
    ["xend_config_format", "4"],
  ];
}

/**
 * `xl info [FIELD]`: "key<padded to 23>: value" lines; with FIELD, the value of every line whose text starts with
 * FIELD (xl_info.c maybe_printf: strncmp prefix, then what follows ": "). Returns null when FIELD matched nothing.
 */
export function formatInfo(h: HostInfo, osVersion: string, field?: string): string | null {
  const lines = infoLines(h, osVersion).map(([k, v]) => `${left(k, 23)}: ${v}`);
  if (field === undefined) return lines.map((l) => l + "\n").join("");
  const picked = lines.filter((l) => l.startsWith(field)).map((l) => l.slice(l.indexOf(": ") + 2) + "\n");
  return picked.length === 0 ? null : picked.join("");
}

// ---- xl uptime ----

/** xl_info.c uptime_to_string: "[D day[s], ]HH:MM[:SS]" with the hour as %2d. */
export function uptimeString(seconds: number, short: boolean): string {
  let up = Math.max(0, Math.floor(seconds));
  const day = Math.floor(up / 86400); up -= day * 86400;
  const hour = Math.floor(up / 3600); up -= hour * 3600;
  const min = Math.floor(up / 60); up -= min * 60;
  const hm = `${right(hour, 2)}:${String(min).padStart(2, "0")}`;
  const t = short ? hm : `${hm}:${String(up).padStart(2, "0")}`;
  return day > 1 ? `${day} days, ${t}` : day === 1 ? `${day} day, ${t}` : t;
}

/** HH:MM:SS local time (strftime "%H:%M:%S"). */
export function clockString(nowS: number): string {
  const t = new Date(nowS * 1000);
  return [t.getHours(), t.getMinutes(), t.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

/**
 * `xl uptime [-s]`: "%-33s %4s %s" header (Name ID Uptime) and "%-33s %4d %s" rows; -s: " %s up %s, %s (%d)"
 * rows (clock, short uptime, name, domid) and no header. `nowS`: Unix time, s.
 */
export function formatUptime(doms: readonly Dom[], nowS: number, short: boolean, dom0UptimeS?: number): string {
  let s = short ? "" : `${left("Name", 33)} ${right("ID", 4)} Uptime\n`;
  for (const d of doms) {
    const up = d.domid === 0 && dom0UptimeS !== undefined ? dom0UptimeS : nowS - d.startTime;
    s += short ? ` ${clockString(nowS)} up ${uptimeString(up, true)}, ${d.name} (${d.domid})\n`
      : `${left(d.name, 33)} ${right(d.domid, 4)} ${uptimeString(up, false)}\n`;
  }
  return s;
}

// ---- xl vcpu-list ----

/**
 * What is known of one vCPU: online = index < onlineVcpus; its CPU seconds (vcpuCpuSeconds). When the scheduler
 * places each vCPU (vCPU threads: DomainInfo.vcpuSched) its own pCPU — the one it holds, else the one it last
 * held (as Xen shows v->processor), "-" if it never ran — and state: r while it holds a pCPU, b while it waits
 * in WFI. Otherwise the vCPUs share the domain's thread, so the domain's pCPU and state: blocked when every
 * vCPU waits, and a single online vCPU has the domain's running state.
 */
export interface VcpuView { vcpu: number; online: boolean; cpu?: number; running?: boolean; blocked?: boolean; seconds?: number }

export function vcpuViews(d: Dom): VcpuView[] {
  const single = d.onlineVcpus === 1;
  return Array.from({ length: d.vcpus }, (_, i): VcpuView => {
    if (i >= d.onlineVcpus) return { vcpu: i, online: false };
    const own = d.vcpuSched?.[i], seconds = d.vcpuCpuSeconds?.[i];
    if (own !== undefined) {
      return { vcpu: i, online: true, cpu: own.pcpu >= 0 ? own.pcpu : own.lastPcpu >= 0 ? own.lastPcpu : undefined,
        running: own.pcpu >= 0 && own.runnable && d.state !== "paused", blocked: !own.runnable, seconds };
    }
    return {
      vcpu: i, online: true,
      // The credit scheduler places the whole domain (its vCPUs share a thread) on one pCPU at a time.
      cpu: d.pcpu !== undefined && d.pcpu >= 0 ? d.pcpu : d.lastPcpu !== undefined && d.lastPcpu >= 0 ? d.lastPcpu : undefined,
      running: single && d.state === "running",
      blocked: d.state === "blocked",
      seconds: seconds ?? (single ? d.cpuSeconds : undefined),
    };
  });
}

/** xl_vcpu.c: "%-32s %5s %5s %5s %5s %9s %s" Name ID VCPU CPU State Time(s) "Affinity (Hard / Soft)". */
export function vcpuListHeader(): string {
  return `${left("Name", 32)} ${right("ID", 5)} ${right("VCPU", 5)} ${right("CPU", 5)} ${right("State", 5)} ${right("Time(s)", 9)} Affinity (Hard / Soft)\n`;
}

/**
 * xl_vcpu.c print_vcpuinfo: "%-32s %5u %5u" then online "%5u %3c%c- " (CPU, r, b) or offline "%5c %3c%cp "
 * ('-','-','-'), then "%9.1f  " and the hard / soft affinity ("all / all": Xeno does not pin vCPUs).
 * Unknown letters print '-', an unknown CPU or time "-" at the column's width.
 */
export function vcpuRow(d: Dom, v: VcpuView): string {
  let s = `${left(d.name, 32)} ${right(d.domid, 5)} ${right(v.vcpu, 5)}`;
  if (!v.online) s += `${right("-", 5)} ${right("-", 3)}-p `;
  else s += `${right(v.cpu ?? "-", 5)} ${right(v.running ? "r" : "-", 3)}${v.blocked ? "b" : "-"}- `;
  s += (v.seconds === undefined ? right("-", 9) : fixed1(v.seconds, 9)) + "  ";
  const hard = d.sched?.affinity;
  return s + `${hard === undefined || hard === null ? "all" : cpuRanges(hard)} / all\n`;
}

/** [0,1,2,5] → "0-2,5" (xl's cpumap format). */
function cpuRanges(cpus: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < cpus.length; i++) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    out.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j;
  }
  return out.join(",");
}

export function formatVcpuList(doms: readonly Dom[]): string {
  return vcpuListHeader() + doms.flatMap((d) => vcpuViews(d).map((v) => vcpuRow(d, v))).join("");
}

// ---- xl block-list / network-list ----

/** Where Xeno's back-ends keep a device in XenStore (src/backends/xenbus-backend.ts). */
export function backendPath(kind: "vbd" | "vif", domid: number, devid: number): string {
  return `/local/domain/0/backend/${kind}/${domid}/${devid}`;
}

/** xl_block.c: "%-5s %-3s %-6s %-5s %-6s %-8s %-30s" Vdev BE handle state evt-ch ring-ref BE-path. */
export function blockListHeader(): string {
  return `${left("Vdev", 5)} ${left("BE", 3)} ${left("handle", 6)} ${left("state", 5)} ${left("evt-ch", 6)} ${left("ring-ref", 8)} ${left("BE-path", 30)}\n`;
}

/**
 * xl_block.c rows: "%-5d %-3d %-6d %-5d %-6d %-8d %-30s" (devid, backend domid 0, frontend domid — xl prints
 * diskinfo.frontend_id under "handle" —, the front-end's XenBus state, event channel, ring ref, backend path),
 * the runtime values from XenStore as libxl reads them (src/hv/device-info.ts; -1 where a key is absent).
 * A hypervisor that does not report devices gives "-".
 */
export function formatBlockList(doms: readonly Dom[]): string {
  let s = blockListHeader();
  for (const d of doms) {
    for (const k of d.spec?.disks ?? []) {
      const i = deviceOf(d, "vbd", k.devid);
      s += `${left(k.devid, 5)} ${left(0, 3)} ${left(d.domid, 6)} ${left(i?.state ?? "-", 5)} ${left(i?.evtch ?? "-", 6)} ${left(i?.ringRef ?? "-", 8)} ${left(backendPath("vbd", d.domid, k.devid), 30)}\n`;
    }
  }
  return s;
}

/** The hypervisor's report of one device of `d`, if it gave one. */
function deviceOf(d: Dom, kind: "vbd" | "vif", devid: number): DeviceInfo | undefined {
  return d.devices?.find((x) => x.kind === kind && x.devid === devid);
}

/** xl_nic.c: "%-3s %-2s %-17s %-6s %-5s %-6s %5s/%-5s %-30s" Idx BE "Mac Addr." handle state evt-ch tx-/rx-ring-ref BE-path. */
export function networkListHeader(): string {
  return `${left("Idx", 3)} ${left("BE", 2)} ${left("Mac Addr.", 17)} ${left("handle", 6)} ${left("state", 5)} ${left("evt-ch", 6)} ${right("tx-", 5)}/${left("rx-ring-ref", 5)} ${left("BE-path", 30)}\n`;
}

/** "aa:bb:cc:dd:ee:ff" as LIBXL_MAC_FMT prints it (lower-case, two digits each). */
export function macString(mac: string): string {
  const parts = mac.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) return mac;
  return parts.map((p) => p.toLowerCase().padStart(2, "0")).join(":");
}

/**
 * xl_nic.c rows: "%-3d %-2d " + MAC + "%6d %5d %6d %5d/%-11d %-30s" (devid, backend 0, MAC, handle = devid,
 * the front-end's state, event channel, tx/rx ring refs, backend path); runtime values as for block-list.
 */
export function formatNetworkList(doms: readonly Dom[]): string {
  let s = networkListHeader();
  for (const d of doms) {
    for (const v of d.spec?.vifs ?? []) {
      const i = deviceOf(d, "vif", v.devid);
      s += `${left(v.devid, 3)} ${left(0, 2)} ${macString(v.mac)}${right(v.devid, 6)} ${right(i?.state ?? "-", 5)} ${right(i?.evtch ?? "-", 6)} ${right(i?.txRingRef ?? "-", 5)}/${left(i?.rxRingRef ?? "-", 11)} ${left(backendPath("vif", d.domid, v.devid), 30)}\n`;
    }
  }
  return s;
}

// ---- xentop (xl top) ----

/** xentop.c fields[]: header and default width of each column, in order. */
export const TOP_FIELDS: readonly [string, number][] = [
  ["NAME", 10], ["STATE", 6], ["CPU(sec)", 10], ["CPU(%)", 6], ["MEM(k)", 10], ["MEM(%)", 6], ["MAXMEM(k)", 10],
  ["MAXMEM(%)", 9], ["VCPUS", 5], ["NETS", 4], ["NETTX(k)", 8], ["NETRX(k)", 8], ["VBDS", 4], ["VBD_OO", 8],
  ["VBD_RD", 8], ["VBD_WR", 8], ["VBD_RSECT", 10], ["VBD_WSECT", 10], ["SSID", 4],
];

/** xentop do_header: each header "%*s" at its width, one space between. `nameWidth` for -f (full names). */
export function topHeader(nameWidth = 10): string {
  return TOP_FIELDS.map(([h, w], i) => right(h, i === 0 ? nameWidth : w)).join(" ") + "\n";
}

/** xentop print_state: the letters d s b c p r, each or '-'. */
export function topStateLetters(d: Dom): string {
  const shut = d.state === "shutdown" || d.state === "crashed";
  return (d.state === "dying" ? "d" : "-") + (shut ? "s" : "-") + (d.state === "blocked" ? "b" : "-") +
    (d.state === "crashed" ? "c" : "-") + (d.state === "paused" ? "p" : "-") + (d.state === "running" ? "r" : "-");
}

/**
 * One xentop domain line: NAME "%10.10s" (or "%*s" with -f), STATE, CPU(sec) "%10llu", CPU(%) "%6.1f", MEM(k)
 * "%10llu", MEM(%) "%6.1f" of the host's total, MAXMEM(k) "%10llu", MAXMEM(%) "%9.1f", VCPUS "%5u", NETS "%4u",
 * NETTX/NETRX "%8llu" (KiB, from the guest's side: TX is what it sent), VBDS "%4u", VBD_OO/RD/WR "%8llu",
 * VBD_RSECT/WSECT "%10llu" (512-byte sectors) and SSID "%4u". The I/O figures are the domain's back-ends' own
 * counters summed over its devices (src/hv/io-stats.ts); a domain with no devices has 0; "-" only when the
 * hypervisor did not report them. `cpuPct`: from two samples (0.0 on the first, as xentop).
 */
export function topRow(d: Dom, cpuPct: number, totalKiB: number, nameWidth?: number): string {
  const pct = (k: number): number => (totalKiB > 0 ? (k / totalKiB) * 100 : 0);
  const name = nameWidth === undefined ? right(d.name.slice(0, 10), 10) : right(d.name, nameWidth);
  const nets = d.spec?.vifs.length ?? 0, vbds = d.spec?.disks.length ?? 0;
  const io = (devices: number, f: (x: DomainIo) => number): number | string => (d.io !== undefined ? f(d.io) : devices === 0 ? 0 : "-");
  return [
    name, topStateLetters(d), right(Math.floor(d.cpuSeconds), 10), fixed1(cpuPct, 6), right(d.memKiB, 10),
    fixed1(pct(d.memKiB), 6), right(d.maxMemKiB, 10), fixed1(pct(d.maxMemKiB), 9), right(d.vcpus, 5),
    right(nets, 4), right(io(nets, (x) => Math.floor(x.netTxBytes / 1024)), 8), right(io(nets, (x) => Math.floor(x.netRxBytes / 1024)), 8),
    right(vbds, 4), right(io(vbds, (x) => x.vbdOo), 8), right(io(vbds, (x) => x.vbdRd), 8), right(io(vbds, (x) => x.vbdWr), 8),
    right(io(vbds, (x) => x.vbdRsect), 10), right(io(vbds, (x) => x.vbdWsect), 10), right(0, 4),
  ].join(" ") + "\n";
}

/**
 * xentop's summary (interactive mode only): "xentop - %s   Xen %s", the state counts, and
 * "Mem: %lluk total, %lluk used, %lluk free    CPUs: %u" (xentop adds " @ %lluMHz"; the clock is not known).
 */
export function topSummary(doms: readonly Dom[], h: HostInfo, nowS: number): string {
  const n = (st: Dom["state"]): number => doms.filter((d) => d.state === st).length;
  const total = h.totalMemoryMiB * 1024;
  const free = h.freeMemoryMiB * 1024;
  return `xentop - ${clockString(nowS)}   Xen ${h.xenMajor}.${h.xenMinor}${h.xenExtra}\n` +
    `${doms.length} domains: ${n("running")} running, ${n("blocked")} blocked, ${n("paused")} paused, ` +
    `${n("crashed")} crashed, ${n("dying")} dying, ${n("shutdown")} shutdown \n` +
    `Mem: ${total}k total, ${total - free}k used, ${free}k free    CPUs: ${h.nrCpus}\n`;
}

/** xentop's order: by name, case-insensitively (its default sort field), Domain-0 first with -z. */
export function topOrder(doms: readonly Dom[], dom0First: boolean): Dom[] {
  const byName = (a: Dom, b: Dom): number => {
    const x = a.name.toLowerCase(), y = b.name.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  };
  const d0 = dom0First ? doms.filter((d) => d.domid === 0) : [];
  return [...d0, ...doms.filter((d) => !d0.includes(d)).sort(byName)];
}
