/**
 * What xenod does with a domain that stopped: xl.cfg's on_poweroff / on_reboot / on_crash (xl.cfg(5)), decided
 * as a pure function of the domain's listing so that it can be tested as a table and applied the same way to an
 * event and to a domain found stopped at startup.
 *
 * As xl does (tools/xl/xl_vmcontrol.c, handle_domain_death and preserve_domain):
 *  - restart destroys the domain and creates one from the same config, same name and uuid, new domid;
 *  - rename-restart keeps the stopped domain under "<name>-<UTC %Y%m%dT%H%MZ>" and creates a new one from the
 *    config. xl also gives the kept domain a fresh uuid; the protocol cannot change a uuid, so here the kept one
 *    keeps its uuid and the new one gets a fresh one (uuids stay unique either way). The kept domain's own
 *    policies become "preserve" so that a later xenod does not handle it again;
 *  - coredump-destroy / coredump-restart: Xeno writes no core dumps, so they act as destroy / restart;
 *  - soft-reset (the on_soft_reset action, and a soft_reset shutdown): done as a restart.
 * Xeno's addition: a domain that crashes within CRASH_LOOP_SECONDS of its start is destroyed, not restarted.
 */
import type { DomainInfo, DomainSpec, ShutdownAction, ToolstackData } from "../hv/protocol.js";

/** xl.cfg(5) defaults: on_poweroff=destroy, on_reboot=restart, on_crash=destroy. */
export const DEFAULT_POLICIES: ToolstackData = { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" };

/** A crash this soon after the domain's (re)start is not followed by another restart. */
export const CRASH_LOOP_SECONDS = 10;

/** The hypervisor calls a decision makes, in order. */
export type HvCall =
  | { op: "destroy"; domid: number }
  | { op: "create"; spec: DomainSpec }
  | { op: "rename"; domid: number; name: string }
  | { op: "set-toolstack"; domid: number; toolstack: ToolstackData };

export type PolicySetting = "on_poweroff" | "on_reboot" | "on_crash" | "on_soft_reset";

export interface Decision {
  domid: number;
  name: string;
  /** What the guest did, for the log: "powered off", "rebooted", "crashed", … */
  what: string;
  /** The xl.cfg setting that applies and its value; null when none does (suspend, unknown reason). */
  setting: PolicySetting | null;
  action: ShutdownAction | null;
  calls: HvCall[];
  /** The calls end by creating the domain anew (its new domid completes the log line). */
  restarts: boolean;
  /** For rename-restart: the name the stopped domain keeps. */
  renamedTo?: string;
  /** Why the outcome differs from the action ("core dumps are not written", the crash-loop guard). */
  notes: string[];
  /** Restart suppressed by the crash-loop guard (seconds since start). */
  crashLoop?: number;
}

/**
 * The decision for a domain as listed, or null when it is not stopped (running, blocked, paused, dying).
 * `nowSec` is Unix time in seconds (compared with DomainInfo.startTime for the crash-loop guard).
 */
export function decide(info: DomainInfo, nowSec: number): Decision | null {
  if (info.state !== "shutdown" && info.state !== "crashed") return null;
  const policies = info.spec.toolstack ?? DEFAULT_POLICIES;
  const reason = info.state === "crashed" ? "crash" : info.shutdownReason;
  const base = { domid: info.domid, name: info.name, calls: [] as HvCall[], restarts: false, notes: [] as string[] };
  let setting: PolicySetting;
  let action: ShutdownAction;
  let what: string;
  switch (reason) {
    case "poweroff": setting = "on_poweroff"; action = policies.onPoweroff; what = "powered off"; break;
    case "reboot": setting = "on_reboot"; action = policies.onReboot; what = "rebooted"; break;
    case "crash": setting = "on_crash"; action = policies.onCrash; what = "crashed"; break;
    case "watchdog": setting = "on_crash"; action = policies.onCrash; what = "was stopped by its watchdog"; break;
    // ToolstackData has no on_soft_reset; xl's default for it is soft-reset.
    case "soft_reset": setting = "on_soft_reset"; action = "soft-reset"; what = "asked for a soft reset"; break;
    case "suspend":
      return { ...base, what: "suspended", setting: null, action: null, notes: ["left as it is (no save image is written)"] };
    default:
      return { ...base, what: "shut down for an unknown reason", setting: null, action: null, notes: ["left as it is"] };
  }
  const d: Decision = { ...base, what, setting, action };

  let effective: "destroy" | "restart" | "rename-restart" | "preserve";
  switch (action) {
    case "destroy": effective = "destroy"; break;
    case "restart": effective = "restart"; break;
    case "preserve": effective = "preserve"; break;
    case "rename-restart": effective = "rename-restart"; break;
    case "coredump-destroy": effective = "destroy"; d.notes.push("core dumps are not written"); break;
    case "coredump-restart": effective = "restart"; d.notes.push("core dumps are not written"); break;
    case "soft-reset": effective = "restart"; d.notes.push("soft reset is done as a restart"); break;
    default: {
      // A value this xenod does not know (written by a newer one): do nothing destructive.
      const unknown: never = action;
      d.notes.push(`unknown action ${String(unknown)}: left as it is`);
      return d;
    }
  }

  if (setting === "on_crash" && effective !== "destroy" && effective !== "preserve") {
    const up = Math.max(0, Math.floor(nowSec - info.startTime));
    if (up < CRASH_LOOP_SECONDS) {
      d.crashLoop = up;
      d.calls.push({ op: "destroy", domid: info.domid });
      return d;
    }
  }

  switch (effective) {
    case "preserve":
      break;
    case "destroy":
      d.calls.push({ op: "destroy", domid: info.domid });
      break;
    case "restart":
      d.calls.push({ op: "destroy", domid: info.domid }, { op: "create", spec: restartSpec(info, true) });
      d.restarts = true;
      break;
    case "rename-restart": {
      const keptName = info.name + utcSuffix(nowSec);
      d.renamedTo = keptName;
      const ts = info.spec.toolstack ?? DEFAULT_POLICIES;
      d.calls.push(
        { op: "rename", domid: info.domid, name: keptName },
        { op: "set-toolstack", domid: info.domid, toolstack: { ...ts, onPoweroff: "preserve", onReboot: "preserve", onCrash: "preserve" } },
        { op: "create", spec: restartSpec(info, false) },
      );
      d.restarts = true;
      break;
    }
  }
  return d;
}

/** The spec of the domain created anew: the same config under the domain's current name, not paused. */
function restartSpec(info: DomainInfo, sameUuid: boolean): DomainSpec {
  const { paused: _paused, uuid: _uuid, ...rest } = info.spec;
  const spec: DomainSpec = { ...rest, name: info.name };
  if (sameUuid) spec.uuid = info.spec.uuid ?? info.uuid;
  return spec;
}

/** xl's suffix for a preserved domain: strftime("-%Y%m%dT%H%MZ") in UTC. */
export function utcSuffix(nowSec: number): string {
  const t = new Date(nowSec * 1000);
  const p = (n: number): string => String(n).padStart(2, "0");
  return `-${t.getUTCFullYear()}${p(t.getUTCMonth() + 1)}${p(t.getUTCDate())}T${p(t.getUTCHours())}${p(t.getUTCMinutes())}Z`;
}

/**
 * The log line for a decision once carried out: "domain 3 (web) powered off: destroyed (on_poweroff=destroy)".
 * `newDomid` is the restarted domain's; `error` says why the calls stopped part-way.
 */
export function describe(d: Decision, outcome: { newDomid?: number; error?: string } = {}): string {
  const head = `domain ${d.domid} (${d.name}) ${d.what}: `;
  const setting = d.setting && d.action ? ` (${d.setting}=${d.action})` : "";
  if (outcome.error !== undefined) {
    const verb = d.crashLoop !== undefined ? "destroy" : d.restarts ? "restart" : d.calls.length > 0 ? "destroy" : "action";
    return `${head}${verb} failed: ${outcome.error}${setting}`;
  }
  if (d.crashLoop !== undefined) {
    return `${head}destroyed, not restarted: it crashed ${d.crashLoop} s after its start (crash-loop guard, ${CRASH_LOOP_SECONDS} s)${setting}`;
  }
  let what: string;
  if (d.action === null) what = "";
  else if (d.renamedTo !== undefined) what = `kept as ${d.renamedTo}, restarted as domain ${outcome.newDomid ?? "?"}`;
  else if (d.restarts) what = `restarted as domain ${outcome.newDomid ?? "?"}`;
  else if (d.calls.some((c) => c.op === "destroy")) what = "destroyed";
  else what = "preserved";
  const notes = [what, ...d.notes].filter((s) => s !== "").join("; ");
  return head + notes + setting;
}
