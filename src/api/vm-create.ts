/**
 * `VM.create_from_xl_config(session, config, start_paused)`: a Xeno extension to XAPI (XAPI creates VMs from
 * templates with VM.clone/provision, which Xeno has no storage for). The text is an xl.cfg file, parsed and
 * validated by src/config as `xeno create` does, turned into the hypervisor's DomainSpec and created through
 * xenod; the answer is the new VM's ref once it runs (or is paused).
 *
 * An API user is not root: every file the config names (kernel, ramdisk, disk targets) must resolve (symlinks
 * followed) inside one of the allowed roots (ApiServerOptions.createRoots; by default the image cache, where
 * `xeno image fetch` puts the Debian kernel, and `sr/` in the API directory for disk images), so a vm-admin
 * cannot attach /etc/shadow as a disk or boot an arbitrary host file. $VAR expansion in kernel=/ramdisk= sees
 * only XENO_IMAGES and HOME, not xenod's whole environment.
 */
import { realpathSync, statSync } from "node:fs";
import { isAbsolute, resolve, sep } from "node:path";
import { ConfigError, parseConfigText, validateConfig, type DomainConfig } from "../config/index.js";
import { resolveCpuList } from "../config/cpus.js";
import type { DomainSpec, ShutdownAction } from "../hv/protocol.js";
import { MAX_RAM_MIB } from "../machine/layout.js";
import { cpus } from "node:os";
import { XapiError } from "./errors.js";

/** The board's limits (src/cli/create.ts checks the same for `xeno create`). */
const BOARD_MAX_VCPUS = 8;
const BOARD_MIN_MIB = 16;
/** Largest config text taken (an xl.cfg is a few hundred bytes). */
export const MAX_CONFIG_BYTES = 64 * 1024;

function inside(path: string, roots: readonly string[]): boolean {
  return roots.some((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep));
}

/** Where a named file really is, or an error naming the key and what to do. */
function allowedFile(key: string, path: string, roots: readonly string[]): string {
  if (!isAbsolute(path)) throw new XapiError("OPERATION_NOT_ALLOWED", `${key}=${path}: give an absolute path (the API has no current directory)`);
  let real: string;
  try { real = realpathSync(path); } catch { throw new XapiError("OPERATION_NOT_ALLOWED", `${key}=${path}: no such file on the host`); }
  const realRoots = roots.map((r) => { try { return realpathSync(r); } catch { return resolve(r); } });
  if (!inside(real, realRoots)) {
    throw new XapiError("OPERATION_NOT_ALLOWED", `${key}=${path}: files a VM uses through the API must be under ${roots.join(" or ")} (put the image there, or use xeno create as root)`);
  }
  if (!statSync(real).isFile()) throw new XapiError("OPERATION_NOT_ALLOWED", `${key}=${path}: not a regular file`);
  return real;
}

/** The config text as the hypervisor's spec; XapiError (OPERATION_NOT_ALLOWED / FIELD_TYPE_ERROR) naming the line. */
export function specFromXlConfig(text: string, roots: readonly string[]): DomainSpec {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw new XapiError("FIELD_TYPE_ERROR", "config", `over ${MAX_CONFIG_BYTES} bytes`);
  let c: DomainConfig;
  try {
    const raw = parseConfigText(text, "config");
    c = validateConfig(raw, "config", { checkFiles: false, env: { XENO_IMAGES: process.env.XENO_IMAGES, HOME: process.env.HOME }, cwd: "/" }).config;
  } catch (e) {
    if (e instanceof ConfigError) {
      throw new XapiError("OPERATION_NOT_ALLOWED", `the xl config is not valid: line ${e.line}${e.key ? ` (${e.key})` : ""}: ${e.detail}`);
    }
    throw e;
  }
  if (c.vcpus > BOARD_MAX_VCPUS) throw new XapiError("OPERATION_NOT_ALLOWED", `vcpus=${c.vcpus}: Xeno's board supports at most ${BOARD_MAX_VCPUS}`);
  const maxMiB = c.xenPlatform ? MAX_RAM_MIB - 1 : MAX_RAM_MIB;
  if (c.memoryMiB < BOARD_MIN_MIB || c.memoryMiB > maxMiB) throw new XapiError("OPERATION_NOT_ALLOWED", `memory=${c.memoryMiB}: Xeno's board supports ${BOARD_MIN_MIB}..${maxMiB} MiB`);
  const kernel = allowedFile("kernel", c.kernel, roots);
  const ramdisk = c.ramdisk === undefined ? undefined : allowedFile("ramdisk", c.ramdisk, roots);
  const disks = c.disks.map((d, i) => {
    if (!c.xenPlatform) throw new XapiError("OPERATION_NOT_ALLOWED", `disk[${i}]: disks are Xen PV devices; this domain has xen_platform=0`);
    if (d.format !== "raw" || d.devtype === "cdrom" || d.specification !== "xen" || d.target === "") {
      throw new XapiError("OPERATION_NOT_ALLOWED", `disk[${i}] (${d.vdev}): only raw Xen PV disk images are served`);
    }
    const path = allowedFile(`disk[${i}] target`, d.target, roots);
    const size = statSync(path).size;
    if (size === 0 || size % 512 !== 0) throw new XapiError("OPERATION_NOT_ALLOWED", `disk[${i}] target ${path}: size ${size} is not a positive multiple of 512 bytes`);
    return { path, devid: d.vdevNumber, vdev: d.vdev, readOnly: !d.readwrite, ...(d.limit ? { limit: d.limit } : {}) };
  });
  const vifs = c.vifs.map((v, i) => {
    if (!c.xenPlatform) throw new XapiError("OPERATION_NOT_ALLOWED", `vif[${i}]: vifs are Xen PV devices; this domain has xen_platform=0`);
    return { devid: v.devid, mac: v.mac, mtu: v.mtu ?? 1500, bridge: v.bridge, ...(v.rate && v.rate.bytesPerInterval >= 1 ? { rate: { bytesPerInterval: v.rate.bytesPerInterval, intervalUsecs: v.rate.intervalUsecs } } : {}) };
  });
  let affinity: number[] | null = null;
  if (c.cpus !== undefined) {
    const set = new Set<number>();
    for (const t of c.cpus.kind === "all-vcpus" ? [c.cpus.terms] : c.cpus.terms) for (const k of resolveCpuList(t, cpus().length)) set.add(k);
    affinity = [...set].sort((a, b) => a - b);
  }
  const cmdline = /(^|\s)console=/.test(c.cmdline) ? c.cmdline : `${c.xenPlatform ? "console=hvc0" : "console=ttyAMA0"}${c.cmdline ? " " + c.cmdline : ""}`;
  return {
    name: c.name, uuid: c.uuid, memMiB: c.memoryMiB, vcpus: c.vcpus, kernel, ramdisk, cmdline, xen: c.xenPlatform, disks, vifs,
    sched: { weight: c.cpuWeight, cap: c.cap, cpus: affinity },
    toolstack: { onPoweroff: c.onPoweroff as ShutdownAction, onReboot: c.onReboot as ShutdownAction, onCrash: c.onCrash as ShutdownAction, configText: text },
  };
}
