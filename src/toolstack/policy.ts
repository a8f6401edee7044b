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
 *
 * `xeno create --standalone` (src/cli/create.ts), which runs its one domain in its own process, asks the same
 * through decideStandalone(): one copy of the rule for both.
 */
import type { DomainInfo, DomainSpec, ShutdownAction, ToolstackData } from "../hv/protocol.js";
import type { DomainStopped } from "../hv/vm-host.js";

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

/** What decide() reads of a domain's listing (the rest of DomainInfo does not matter to it). */
export type PolicyInput = Pick<DomainInfo, "domid" | "name" | "uuid" | "state" | "shutdownReason" | "startTime" | "spec">;

/**
 * The decision for a domain as listed, or null when it is not stopped (running, blocked, paused, dying).
 * `nowSec` is Unix time in seconds (compared with DomainInfo.startTime for the crash-loop guard).
 */
export function decide(info: PolicyInput, nowSec: number): Decision | null {
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
function restartSpec(info: PolicyInput, sameUuid: boolean): DomainSpec {
  const { paused: _paused, uuid: _uuid, ...rest } = info.spec;
  const spec: DomainSpec = { ...rest, name: info.name };
  if (sameUuid) spec.uuid = info.spec.uuid ?? info.uuid;
  return spec;
}

// ------------------------------------------------------------------------------------------ without the daemons

/** A domain that `xeno create --standalone` runs: its spec (with the uuid it was given, as the hypervisor gives
 * every domain one) and the Unix time (s) its current run started. */
export interface StandaloneRun { spec: DomainSpec & { uuid: string }; startTime: number }

/** What the standalone mode does with its stopped domain (see decideStandalone). */
export interface StandaloneDecision {
  /** decide()'s answer: the setting and action that apply, what the guest did, the crash-loop guard. */
  decision: Decision;
  /** The spec to run next (decide()'s create call; without a uuid after rename-restart), or null: the domain is gone. */
  restart: DomainSpec | null;
  /** For the user: where xenod's answer cannot be followed without a daemon, then decide()'s own notes. */
  notes: string[];
}

/**
 * `xeno create --standalone` runs one domain in its own process (a DomainRunner), with neither xenod nor the
 * hypervisor process. It follows decide() as xenod does, except where the answer keeps a stopped domain:
 * nothing outlives that process and no toolstack could list what it kept, so
 *  - preserve (and a stop no setting covers) destroys the domain;
 *  - rename-restart does not keep the old domain under another name: a plain restart.
 * Returns null for "destroyed" (ended from outside — a signal, a detach: nothing to decide). The stop report is
 * read as the hypervisor lists a stopped domain (src/hv/hypervisor.ts): "crashed" is state crashed with reason
 * crash; poweroff and reboot are state shutdown with that reason.
 */
export function decideStandalone(run: StandaloneRun, stop: DomainStopped, nowSec: number): StandaloneDecision | null {
  if (stop.state === "destroyed") return null;
  const d = decide({
    // src/xen's id for a domain built without one, as the standalone builds it (only decide()'s calls name it).
    domid: 1, name: run.spec.name, uuid: run.spec.uuid, startTime: run.startTime, spec: run.spec,
    ...(stop.state === "crashed" ? { state: "crashed", shutdownReason: "crash" } : { state: "shutdown", shutdownReason: stop.state }),
  }, nowSec);
  if (d === null) return null; // not reached: the domain is stopped
  let restart: DomainSpec | null = null;
  for (const c of d.calls) if (c.op === "create") restart = c.spec;
  let notes = d.notes;
  if (d.renamedTo !== undefined) notes = ["no toolstack daemon to keep the old domain; restarting", ...d.notes];
  // Nothing to do for xenod means the domain stays for inspection (preserve) or is left as it is.
  else if (d.calls.length === 0) notes = ["no toolstack daemon to keep the domain for inspection; destroying it"];
  return { decision: d, restart, notes };
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
