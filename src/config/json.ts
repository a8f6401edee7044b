/**
 * The JSON form printed by `xeno create -n` (dry run). xl's dry run prints libxl_domain_config as JSON; we mimic
 * its shape loosely — c_info (create-time), b_info (build-time), disks, nics, on_* actions — keeping libxl's
 * field names where they exist (target_memkb, max_vcpus, pdev_path, vdev, …) and staying readable (actions and
 * formats as lowercase strings rather than libxl's enum spellings, affinities as the CPU list text).
 */
import type { DomainConfig } from "./domain.js";

export interface DomainConfigJSON {
  c_info: { type: string; name: string; uuid: string };
  b_info: {
    max_vcpus: number;
    avail_vcpus: number[];
    vcpu_hard_affinity?: string[];
    vcpu_soft_affinity?: string[];
    sched_params: { weight: number; cap: number };
    max_memkb: number;
    target_memkb: number;
    kernel: string;
    ramdisk?: string;
    cmdline: string;
    type: string;
  };
  disks: Record<string, unknown>[];
  nics: Record<string, unknown>[];
  on_poweroff: string;
  on_reboot: string;
  on_watchdog: string;
  on_crash: string;
  on_soft_reset: string;
}

export function domainConfigToJSON(c: DomainConfig): DomainConfigJSON {
  const affinity = (a: DomainConfig["cpus"]): string[] | undefined =>
    a === undefined ? undefined : a.kind === "all-vcpus" ? Array.from({ length: c.maxVcpus }, () => a.text) : a.texts;
  const b_info: DomainConfigJSON["b_info"] = {
    max_vcpus: c.maxVcpus,
    avail_vcpus: Array.from({ length: c.vcpus }, (_, i) => i),
    sched_params: { weight: c.cpuWeight, cap: c.cap },
    max_memkb: c.maxMemoryMiB * 1024,
    target_memkb: c.memoryMiB * 1024,
    kernel: c.kernel,
    cmdline: c.cmdline,
    type: c.type,
  };
  const hard = affinity(c.cpus), soft = affinity(c.cpusSoft);
  if (hard) b_info.vcpu_hard_affinity = hard;
  if (soft) b_info.vcpu_soft_affinity = soft;
  if (c.ramdisk !== undefined) b_info.ramdisk = c.ramdisk;
  return {
    c_info: { type: c.type, name: c.name, uuid: c.uuid },
    b_info,
    disks: c.disks.map((d) => strip({
      pdev_path: d.target, vdev: d.vdev, virtual_device: d.vdevNumber, format: d.format,
      readwrite: d.readwrite ? 1 : 0, is_cdrom: d.devtype === "cdrom" ? 1 : 0, removable: d.removable ? 1 : 0,
      backend_domname: d.backend, backend: d.backendType, script: d.script, specification: d.specification,
      direct_io_safe: d.directIoSafe, discard_enable: d.discard, trusted: d.trusted, grant_usage: d.grantUsage,
    })),
    nics: c.vifs.map((v) => strip({
      devid: v.devid, mac: v.mac, bridge: v.bridge, script: v.script, ip: v.ip, ifname: v.vifname,
      backend_domname: v.backend, model: v.model, nictype: v.type, gatewaydev: v.gatewaydev, mtu: v.mtu, vlan: v.vlan,
      rate_bytes_per_interval: v.rate?.bytesPerInterval, rate_interval_usecs: v.rate?.intervalUsecs, trusted: v.trusted,
    })),
    on_poweroff: c.onPoweroff,
    on_reboot: c.onReboot,
    on_watchdog: c.onWatchdog,
    on_crash: c.onCrash,
    on_soft_reset: c.onSoftReset,
  };
}

/** Drops undefined fields so the JSON shows only what is set. */
function strip(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}
