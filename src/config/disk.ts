/**
 * disk=[...] spec strings (xl-disk-configuration(5); Xen's tools/libs/util/libxlu_disk_l.l and libxlu_disk.c)
 * and virtual device names → VBD numbers (xen-vbd-interface(7); libxl__device_disk_dev_number).
 *
 * A spec is comma-separated parameters, scanned left to right as Xen's disk lexer does:
 * - flags: cdrom, direct-io-safe, discard, no-discard, trusted, untrusted, colo, no-colo;
 * - key=value: format, vdev, access, devtype, backend, backendtype, script, specification, grant_usage,
 *   colo-host, colo-port, colo-export, active-disk, hidden-disk;
 * - Xeno's extension (not in xl): `rate=RATE` (bytes per second read and written, RATE as vif's `rate=`:
 *   ^[0-9]+[GMK]?[Bb]/s$, decimal multipliers, lower-case b for bits) and `iops=N` (requests per second),
 *   the disk's I/O limit enforced by blkback (src/backends/blk/blk-limit.ts);
 * - `target=` eats the rest of the string (so it must come last, and may contain commas);
 * - deprecated prefixes on a parameter: `raw:` `qcow:` `qcow2:` `vhd:` (format), `iscsi:` `nbd:` `enbd:` `drbd:`
 *   (script=block-…), and `tapdisk:` `tap:` `tap2:` `aio:` `ioemu:` `file:` `phy:` (stripped and ignored), so
 *   `tap:aio:/img`, `tap:qcow2:/img`, `phy:/dev/vg/lv` work;
 * - other parameters are positional: target, format, vdev (optionally `vdev:cdrom` / `vdev:disk`), access.
 *   After a deprecated format prefix the format slot is skipped (`raw:/img,hdc:cdrom,ro`).
 * Each parameter may be given once (a second, different value is "respecified"); empty values mean default.
 */
import { ConfigError, type SourcePos } from "./errors.js";

export type DiskFormat = "raw" | "qcow" | "qcow2" | "vhd" | "qed" | "empty";
export type DiskBackendType = "phy" | "qdisk" | "standalone" | "tap";

export interface DiskSpec {
  /** The spec string as written. */
  spec: string;
  /** Backing file or device ("" for an empty cdrom). Relative paths are kept as written (see domain.ts). */
  target: string;
  format: DiskFormat;
  vdev: string;
  /** The VBD number written to xenstore (`virtual-device`), per xen-vbd-interface(7). */
  vdevNumber: number;
  /** The name a Linux guest's xen-blkfront gives it (/dev/xvdX[N]); undefined for numeric and nvmeN vdevs. */
  guestDevice?: string;
  readwrite: boolean;
  devtype: "disk" | "cdrom";
  removable: boolean;
  backend?: string;
  backendType?: DiskBackendType;
  script?: string;
  specification: "xen" | "virtio";
  directIoSafe: boolean;
  discard: boolean;
  trusted: boolean;
  grantUsage?: boolean;
  /** Xeno's I/O limit (`rate=`, `iops=`): absent when neither is given. */
  limit?: { bytesPerSecond?: number; iops?: number };
  colo?: { enable: boolean; host?: string; port?: number; export?: string; activeDisk?: string; hiddenDisk?: string };
}

/** Where a spec came from, for error messages. */
export interface SpecOrigin {
  file: string;
  pos: SourcePos;
  key: string;
  sourceLine?: string;
}

const FORMATS: readonly string[] = ["raw", "qcow", "qcow2", "vhd", "empty", "qed"];
const BACKEND_TYPES: readonly string[] = ["phy", "tap", "qdisk", "standalone"];
const FLAGS = new Set(["cdrom", "direct-io-safe", "discard", "no-discard", "colo", "no-colo", "trusted", "untrusted"]);
const STRING_KEYS = new Set(["format", "vdev", "access", "devtype", "backend", "backendtype", "script", "specification",
  "grant_usage", "colo-host", "colo-port", "colo-export", "active-disk", "hidden-disk", "rate", "iops"]);
const IGNORED_PREFIXES = new Set(["tapdisk", "tap", "tap2", "aio", "ioemu", "file", "phy"]);
const SCRIPT_PREFIXES = new Set(["iscsi", "nbd", "enbd", "drbd"]);
const FORMAT_PREFIXES = new Set(["raw", "qcow", "qcow2", "vhd"]);

export function parseDiskSpec(spec: string, origin?: SpecOrigin): DiskSpec {
  const fail = (msg: string): ConfigError => new ConfigError("CONFIG_BAD_DISK", `${origin ? `${origin.key}: ` : ""}'${spec}': ${msg}`, {
    file: origin?.file ?? "<disk spec>", line: origin?.pos.line ?? 1, column: origin?.pos.column ?? 1,
    key: origin?.key, sourceLine: origin?.sourceLine,
  });

  const st: Record<string, string | undefined> = {};
  let format: DiskFormat | undefined;
  let readwrite = true;
  let accessSet = false;
  let cdrom = false;
  let hadPrefix = false;
  let directIoSafe = false, discard = true, trusted = true;
  let colo: boolean | undefined;

  const save = (what: string, v: string): void => {
    if (st[what]) throw fail(`${what} respecified`);
    st[what] = v;
  };
  const setFormat = (v: string): void => {
    const f = (v === "" ? "raw" : v) as DiskFormat;
    if (!FORMATS.includes(f)) throw fail(`unknown value for format: '${v}' (raw, qcow, qcow2, vhd, qed)`);
    if (format !== undefined && format !== f) throw fail("format respecified");
    format = f;
  };
  const setAccess = (v: string): void => {
    if (v === "r" || v === "ro") readwrite = false;
    else if (v === "w" || v === "rw" || v === "") readwrite = true;
    else throw fail(`unknown value for access: '${v}' (r, ro, w, rw)`);
  };
  /** `vdev:cdrom` / `vdev:disk` (deprecated); returns false when there is no colon. */
  const vdevAndDevtype = (v: string): boolean => {
    const colon = v.lastIndexOf(":");
    if (colon < 0) return false;
    save("vdev", v.slice(0, colon));
    const t = v.slice(colon + 1);
    if (t === "cdrom") cdrom = true;
    else if (t === "disk") cdrom = false;
    else throw fail(`unknown deprecated type '${t}' after vdev (cdrom or disk)`);
    return true;
  };

  let i = 0;
  while (i < spec.length) {
    while (i < spec.length && /[ \t\n]/.test(spec[i])) i++;
    if (i >= spec.length) break;
    const rest = spec.slice(i);

    // target= eats the rest of the spec (one trailing comma dropped, as Xen's STRIP does).
    if (rest.startsWith("target=")) {
      const v = rest.slice(7).replace(/,$/, "");
      if (st.target) throw fail("target respecified");
      st.target = v;
      break;
    }
    const comma = rest.indexOf(",");
    const param = comma < 0 ? rest : rest.slice(0, comma);
    const advance = comma < 0 ? rest.length : comma + 1;

    // Deprecated prefixes apply to the start of a parameter and consume only the prefix.
    const pm = /^([a-z][a-z0-9]*):/.exec(rest);
    if (pm && (FORMAT_PREFIXES.has(pm[1]) || SCRIPT_PREFIXES.has(pm[1]) || IGNORED_PREFIXES.has(pm[1]))) {
      hadPrefix = true;
      if (FORMAT_PREFIXES.has(pm[1])) setFormat(pm[1]);
      else if (SCRIPT_PREFIXES.has(pm[1])) save("script", `block-${pm[1]}`);
      i += pm[0].length;
      continue;
    }
    if (pm && /^[a-z][a-z0-9]*:(?:[^a-z0-9]|$)/.test(rest) && !param.includes("=")) {
      throw fail(`unknown deprecated disk prefix '${pm[1]}:'`);
    }

    if (FLAGS.has(param)) {
      switch (param) {
        case "cdrom": cdrom = true; break;
        case "direct-io-safe": directIoSafe = true; break;
        case "discard": discard = true; break;
        case "no-discard": discard = false; break;
        case "trusted": trusted = true; break;
        case "untrusted": trusted = false; break;
        case "colo": colo = true; break;
        case "no-colo": colo = false; break;
      }
    } else if (param.includes("=")) {
      const eq = param.indexOf("=");
      const k = param.slice(0, eq), v = param.slice(eq + 1);
      if (!STRING_KEYS.has(k)) throw fail(`unknown parameter '${k}'`);
      switch (k) {
        case "format": setFormat(v); break;
        case "access": setAccess(v); accessSet = true; break;
        case "devtype":
          if (v === "cdrom") cdrom = true;
          else if (v === "disk") cdrom = false;
          else throw fail(`unknown value for devtype: '${v}' (cdrom or disk)`);
          break;
        case "backendtype":
          if (!BACKEND_TYPES.includes(v)) throw fail(`unknown value for backendtype: '${v}' (phy, qdisk, standalone, tap)`);
          if (st.backendtype && st.backendtype !== v) throw fail("backendtype respecified");
          st.backendtype = v;
          break;
        case "specification":
          if (v !== "xen" && v !== "virtio") throw fail(`unknown value for specification: '${v}' (xen or virtio)`);
          if (st.specification && st.specification !== v) throw fail("specification respecified");
          st.specification = v;
          break;
        case "grant_usage":
          if (v !== "0" && v !== "1") throw fail(`unknown value for grant_usage: '${v}' (0 or 1)`);
          st.grant_usage = v;
          break;
        case "colo-port":
          if (!/^[1-9][0-9]*$/.test(v)) throw fail(`unknown value for colo-port: '${v}'`);
          save(k, v);
          break;
        case "rate": {
          const m = /^([0-9]+)([GMK]?)([Bb])\/s$/.exec(v);
          if (!m) throw fail(`invalid rate '${v}' (bytes per second read and written, e.g. 20MB/s, 500KB/s, 80Mb/s)`);
          const n = Number(m[1]) * { G: 1e9, M: 1e6, K: 1e3, "": 1 }[m[2] as "G" | "M" | "K" | ""] / (m[3] === "b" ? 8 : 1);
          if (!Number.isSafeInteger(Math.floor(n)) || Math.floor(n) < 1) throw fail(`rate out of range in '${v}'`);
          save(k, String(Math.floor(n)));
          break;
        }
        case "iops":
          if (!/^[1-9][0-9]{0,8}$/.test(v)) throw fail(`invalid iops '${v}' (requests per second, 1..999999999)`);
          save(k, v);
          break;
        default: save(k, v);
      }
    } else if (st.target === undefined) {
      st.target = param;
    } else if (!hadPrefix && format === undefined) {
      if (st.target === "" && vdevAndDevtype(param)) format = "empty";
      else setFormat(param);
    } else if (st.vdev === undefined) {
      if (!vdevAndDevtype(param)) save("vdev", param);
    } else if (!accessSet) {
      accessSet = true;
      setAccess(param);
    } else {
      throw fail(`too many positional parameters at '${param}'`);
    }
    i += advance;
  }

  if (format === undefined) format = "raw";
  if (cdrom) {
    readwrite = false;
    if (!st.target) format = "empty";
  }
  if (!st.vdev) throw fail("no vdev specified");
  if (st.target === undefined && !cdrom) throw fail("no target specified (and device not removable)");
  const vbd = vbdNumber(st.vdev);
  if (vbd === undefined) throw fail(`invalid or unsupported virtual disk identifier '${st.vdev}' (e.g. xvda, xvdb1, sda, hdc, d0p1, nvme0)`);

  const d: DiskSpec = {
    spec, target: st.target ?? "", format, vdev: st.vdev, vdevNumber: vbd.number, readwrite,
    devtype: cdrom ? "cdrom" : "disk", removable: cdrom,
    specification: (st.specification as "xen" | "virtio" | undefined) ?? "xen",
    directIoSafe, discard, trusted,
  };
  if (vbd.disk !== undefined && !st.vdev.startsWith("nvme")) d.guestDevice = `/dev/xvd${diskLetters(vbd.disk)}${vbd.partition ? vbd.partition : ""}`;
  if (st.backend) d.backend = st.backend;
  if (st.backendtype) d.backendType = st.backendtype as DiskBackendType;
  if (st.script) d.script = st.script;
  if (st.grant_usage !== undefined) d.grantUsage = st.grant_usage === "1";
  if (st.rate || st.iops) {
    d.limit = {};
    if (st.rate) d.limit.bytesPerSecond = Number(st.rate);
    if (st.iops) d.limit.iops = Number(st.iops);
  }
  if (colo !== undefined || st["colo-host"] || st["colo-port"] || st["colo-export"] || st["active-disk"] || st["hidden-disk"]) {
    d.colo = { enable: colo ?? false };
    if (st["colo-host"]) d.colo.host = st["colo-host"];
    if (st["colo-port"]) d.colo.port = Number(st["colo-port"]);
    if (st["colo-export"]) d.colo.export = st["colo-export"];
    if (st["active-disk"]) d.colo.activeDisk = st["active-disk"];
    if (st["hidden-disk"]) d.colo.hiddenDisk = st["hidden-disk"];
  }
  return d;
}

// ---- virtual device numbers (xen-vbd-interface(7)) ----

/** Majors of the encodings in xen-vbd-interface(7) "Concrete encoding". */
const XVD_MAJOR = 202; //   202 << 8 | disk << 4 | partition   (xvd, disk and partition ≤ 15)
const XVD_EXTENDED = 1 << 28; // 1 << 28 | disk << 8 | partition (xvd, disks 16.. or partitions 16..)
const SD_MAJOR = 8; //       8 << 8 | disk << 4 | partition    (sd, disk and partition ≤ 15)
const NVME_MAJOR = 259; // Linux's BLOCK_EXT_MAJOR (nvme0n1's major)
const HD_MAJOR_01 = 3; //    3 << 8 | disk << 6 | partition    (hd disks 0..1)
const HD_MAJOR_23 = 22; //  22 << 8 | (disk-2) << 6 | partition (hd disks 2..3)

export interface VbdNumber {
  number: number;
  /** Disk and partition indices, when the name encodes them (not for a bare number). */
  disk?: number;
  partition?: number;
}

/** Decodes `xvdb`, `xvdtq37`, `d1p2`, `sdb3`, `hdc2` or a bare number (decimal/0x/0-octal) to a VBD number. */
export function vbdNumber(vdev: string): VbdNumber | undefined {
  const dp = /^d(0|[1-9][0-9]*)(?:p(0|[1-9][0-9]*))?$/.exec(vdev);
  const xvd = dp ? undefined : matchDisk(vdev, "xvd", (1 << 20) - 1, 255);
  if (dp || xvd) {
    const disk = dp ? Number(dp[1]) : xvd!.disk;
    const partition = dp ? Number(dp[2] ?? 0) : xvd!.partition;
    if (disk >= 1 << 20 || partition > 255) return undefined;
    const number = disk <= 15 && partition <= 15
      ? (XVD_MAJOR << 8) | (disk << 4) | partition
      : XVD_EXTENDED | (disk << 8) | partition;
    return { number, disk, partition };
  }
  if (/^(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.test(vdev)) {
    const n = /^0[xX]/.test(vdev) ? parseInt(vdev.slice(2), 16) : /^0./.test(vdev) ? parseInt(vdev, 8) : Number(vdev);
    return n <= 0x7fffffff ? { number: n } : undefined;
  }
  const hd = matchDisk(vdev, "hd", 3, 63);
  if (hd) {
    const major = hd.disk < 2 ? HD_MAJOR_01 : HD_MAJOR_23;
    return { number: (major << 8) | ((hd.disk & 1) << 6) | hd.partition, ...hd };
  }
  const sd = matchDisk(vdev, "sd", 15, 15);
  if (sd) return { number: (SD_MAJOR << 8) | (sd.disk << 4) | sd.partition, ...sd };
  // nvme0, nvme1, …: an HVM domain's emulated NVMe controllers (Xeno's name: Xen's libxl has none; Linux names the
  // controllers so). Numbered in Linux's extended block major 259, where NVMe namespaces appear, apart from the
  // xvd/hd/sd numbers above.
  const nvme = /^nvme(0|[1-9][0-9]?)$/.exec(vdev);
  if (nvme) return { number: (NVME_MAJOR << 8) | Number(nvme[1]), disk: Number(nvme[1]), partition: 0 };
  return undefined;
}

/** `prefix` + letters (bijective base 26: a=0 … z=25, aa=26 …) + optional partition without leading zeros. */
function matchDisk(vdev: string, prefix: string, maxDisk: number, maxPartition: number):
  { disk: number; partition: number } | undefined {
  const m = new RegExp(`^${prefix}([a-z]+)([1-9][0-9]*)?$`).exec(vdev);
  if (!m) return undefined;
  let disk = -1;
  for (const ch of m[1]) {
    disk = (disk + 1) * 26 + (ch.charCodeAt(0) - 97);
    if (disk > maxDisk) return undefined;
  }
  const partition = m[2] ? Number(m[2]) : 0;
  return partition > maxPartition ? undefined : { disk, partition };
}

/** Inverse of the letter encoding: 0 → "a", 25 → "z", 26 → "aa". */
export function diskLetters(n: number): string {
  return (n >= 26 ? diskLetters(Math.floor(n / 26) - 1) : "") + String.fromCharCode(97 + (n % 26));
}
