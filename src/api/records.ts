/**
 * The records of the larger XAPI classes (VM, host, pool) with XAPI's field names (xapi's ocaml/idl/datamodel*.ml).
 * Fields Xeno has no notion of get XAPI's empty or default values, so that clients reading them find the type
 * they expect. Values that would change at every refresh (uptime, clocks) are left out: each change is an event.
 */
import { hostname } from "node:os";
import type { DomainInfo, DomainSpec, HostInfo } from "../hv/protocol.js";
import type { XapiRecord } from "./store.js";
import { NULL_REF } from "./values.js";

const MiB = 1024 * 1024;

export type PowerState = "Running" | "Paused" | "Suspended" | "Halted";

export interface VmInput {
  uuid: string;
  /** The domain, when the hypervisor lists one for this VM. */
  d?: DomainInfo;
  /** Its config (absent for Domain-0). */
  spec?: DomainSpec;
  power: PowerState;
  isDom0: boolean;
  hostRef: string;
  vbds: string[];
  vifs: string[];
  consoles: string[];
  metricsRef: string;
  guestRef: string;
  suspendFile: string;
}

export function vmRecord(v: VmInput): XapiRecord {
  const { d, spec, power, isDom0, hostRef } = v;
  const ts = spec?.toolstack;
  const live = power === "Running" || power === "Paused";
  const memBytes = d ? d.maxMemKiB * 1024 : (spec?.memMiB ?? 0) * MiB;
  const target = d && d.domid !== 0 ? d.targetKiB * 1024 : memBytes;
  return {
    uuid: v.uuid, name_label: d?.name ?? spec?.name ?? "",
    name_description: isDom0 ? "The toolstack and hypervisor process (xenod, xeno-hv)" : ts?.configFile ? `from ${ts.configFile}` : "",
    power_state: power, is_control_domain: isDom0, is_a_template: false, is_a_snapshot: false, is_default_template: false,
    domid: live ? d!.domid : -1, domarch: "arm64", resident_on: live ? hostRef : NULL_REF, affinity: hostRef,
    memory_static_max: memBytes, memory_static_min: isDom0 ? memBytes : 16 * MiB, memory_dynamic_max: target, memory_dynamic_min: target,
    memory_target: target, memory_overhead: 0, suspend_image_path_xeno: v.suspendFile,
    VCPUs_max: d?.vcpus ?? spec?.vcpus ?? 1, VCPUs_at_startup: d?.vcpus ?? spec?.vcpus ?? 1,
    VCPUs_params: { weight: String(d?.sched?.weight ?? spec?.sched?.weight ?? 256), cap: String(d?.sched?.cap ?? spec?.sched?.cap ?? 0) },
    actions_after_shutdown: ts?.onPoweroff ?? "destroy", actions_after_reboot: ts?.onReboot ?? "restart", actions_after_crash: ts?.onCrash ?? "destroy",
    PV_kernel: spec?.kernel ?? "", PV_ramdisk: spec?.ramdisk ?? "", PV_args: spec?.cmdline ?? "", PV_bootloader: "", PV_bootloader_args: "", PV_legacy_args: "",
    HVM_boot_policy: "", HVM_boot_params: {}, platform: {}, domain_type: "pvh",
    VBDs: v.vbds, VIFs: v.vifs, consoles: v.consoles, VUSBs: [], VGPUs: [], VTPMs: [], crash_dumps: [], attached_PCIs: [], snapshots: [], children: [],
    metrics: v.metricsRef, guest_metrics: v.guestRef, parent: NULL_REF, snapshot_of: NULL_REF, appliance: NULL_REF, suspend_VDI: NULL_REF, suspend_SR: NULL_REF,
    allowed_operations: allowedOperations(power, isDom0), current_operations: {}, blocked_operations: {}, other_config: {}, xenstore_data: {}, tags: [],
    user_version: 1, ha_restart_priority: "", order: 0, start_delay: 0, shutdown_delay: 0, has_vendor_device: false, generation_id: "", hardware_platform_version: 0,
    last_booted_record: "", recommendations: "", bios_strings: {}, protection_policy: NULL_REF, is_snapshot_from_vmpp: false, snapshot_schedule: NULL_REF,
    is_vmss_snapshot: false, groups: [], pending_guidances: [],
  };
}

function allowedOperations(power: PowerState, isDom0: boolean): string[] {
  if (isDom0) return [];
  switch (power) {
    case "Halted": return ["start", "destroy"];
    case "Suspended": return ["resume", "hard_shutdown"];
    case "Paused": return ["unpause", "hard_shutdown", "hard_reboot"];
    case "Running": return ["clean_shutdown", "clean_reboot", "hard_shutdown", "hard_reboot", "pause", "suspend"];
  }
}

export function hostRecord(uuid: string, info: HostInfo, metricsRef: string, residentVms: string[], dom0Ref: string): XapiRecord {
  const name = hostname();
  return {
    uuid, name_label: name, name_description: `Xeno on ${info.machine}`, hostname: name, address: "127.0.0.1", enabled: true,
    API_version_major: 2, API_version_minor: 21, API_version_vendor: "Xeno", API_version_vendor_implementation: {},
    software_version: { product_brand: "Xeno", product_version: "0.1.0", xen: `${info.xenMajor}.${info.xenMinor}${info.xenExtra}`, platform_name: "Xeno", platform_version: "0.1.0", hostname: name },
    metrics: metricsRef, resident_VMs: residentVms, control_domain: dom0Ref,
    cpu_info: { cpu_count: String(info.pcpus ?? info.nrCpus), socket_count: "1", vendor: "Xeno", modelname: "Xeno AArch64 interpreter" },
    host_CPUs: [], PIFs: [], PBDs: [], PCIs: [], PGPUs: [], PUSBs: [], crashdumps: [], patches: [], updates: [], supported_bootloaders: [], capabilities: [],
    other_config: {}, logging: {}, license_params: {}, license_server: {}, edition: "free", bios_strings: {}, cpu_configuration: {}, chipset_info: {},
    external_auth_type: "", external_auth_service_name: "", external_auth_configuration: {}, sched_policy: "credit", memory_overhead: 0,
    tags: [], blobs: {}, allowed_operations: [], current_operations: {}, power_on_mode: "", power_on_config: {}, local_cache_sr: NULL_REF,
    suspend_image_sr: NULL_REF, crash_dump_sr: NULL_REF, ha_statefiles: [], ha_network_peers: [], guest_VCPUs_params: {}, virtual_hardware_platform_versions: [0],
  };
}

export function poolRecord(uuid: string, masterRef: string, srRef: string, otherConfig: Record<string, string>): XapiRecord {
  return {
    uuid, name_label: "", name_description: "", master: masterRef, default_SR: srRef, suspend_image_SR: NULL_REF, crash_dump_SR: NULL_REF,
    other_config: otherConfig, tags: [], blobs: {}, ha_enabled: false, ha_configuration: {}, ha_statefiles: [], ha_host_failures_to_tolerate: 0,
    ha_plan_exists_for: 0, ha_allow_overcommit: false, ha_overcommitted: false, gui_config: {}, health_check_config: {}, wlb_url: "", wlb_username: "",
    wlb_enabled: false, wlb_verify_cert: false, redo_log_enabled: false, redo_log_vdi: NULL_REF, vswitch_controller: "", restrictions: {}, metadata_VDIs: [],
    allowed_operations: [], current_operations: {}, cpu_info: {}, policy_no_vendor_device: false, live_patching_disabled: false, igmp_snooping_enabled: false,
  };
}
