/**
 * VM lifecycle calls carried out with the hypervisor's requests, with XAPI's meaning: a call returns when the
 * VM has reached the state it asked for (clean_shutdown: Halted; clean_reboot: Running again under a new domid),
 * or fails with XAPI's error. A halted VM is started from the spec the API keeps for it (model.ts).
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { DomainInfo, DomainSpec, ToolstackData } from "../hv/protocol.js";
import type { ApiBackend, HvCall } from "./backend.js";
import { XapiError } from "./errors.js";
import type { XenModel } from "./model.js";
import { specFromXlConfig } from "./vm-create.js";

/** How long clean_shutdown / clean_reboot wait for the guest (xapi's default shutdown timeout is 20 min; a
 * guest here that has not acted in 2 min is not going to). */
export const CLEAN_TIMEOUT_MS = 120_000;
const NAME_RETRY_MS = 5_000;

/** Maps a hypervisor failure to XAPI's error. */
export function hvError(e: unknown, vmRef: string, hostRef: string): XapiError {
  if (e instanceof XapiError) return e;
  const code = (e as { code?: string })?.code, msg = (e as Error)?.message ?? String(e);
  switch (code) {
    case "ENOENT_DOMAIN": return new XapiError("HANDLE_INVALID", "VM", vmRef);
    case "ESTATE": return new XapiError("VM_BAD_POWER_STATE", vmRef, "", msg);
    case "EHVDOWN": return new XapiError("HOST_OFFLINE", hostRef);
    case "ENOMEM": return new XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", msg);
    case "EINVAL": return new XapiError("OPERATION_NOT_ALLOWED", msg);
    default: return new XapiError("INTERNAL_ERROR", `${code ?? "error"}: ${msg}`);
  }
}

export class VmActions {
  constructor(private readonly model: XenModel, private readonly backend: ApiBackend, private readonly suspendDir: string, private readonly createRoots: readonly string[] = []) {}

  /** VM.create_from_xl_config (vm-create.ts): the new VM's ref once its domain runs (or is paused). */
  async createFromConfig(text: string, paused: boolean): Promise<string> {
    const spec = specFromXlConfig(text, this.createRoots);
    // A VM's UUID is its identity here (model.ts): a config naming one the API knows would make two VMs of one.
    if (spec.uuid !== undefined && this.model.store.all("VM").some(([, r]) => r.uuid === spec.uuid)) {
      throw new XapiError("OPERATION_NOT_ALLOWED", `uuid=${spec.uuid} is a VM this host has already (VM.start starts a halted one)`);
    }
    let domid: number;
    try {
      domid = (await this.backend.request({ op: "create", spec: { ...spec, paused: paused || undefined } }) as { domid: number }).domid;
    } catch (e) {
      if ((e as { code?: string }).code === "EEXIST_NAME") throw new XapiError("OPERATION_NOT_ALLOWED", `a domain named ${spec.name} exists already`);
      throw hvError(e, "OpaqueRef:NULL", this.model.hostRef);
    }
    for (const deadline = Date.now() + 30_000; ;) {
      await this.model.refresh();
      const d = [...this.model.domains.values()].find((x) => x.domid === domid);
      if (d) return this.model.vmRef(d.uuid);
      if (Date.now() >= deadline) throw new XapiError("INTERNAL_ERROR", `domain ${domid} was created but is not listed (see xenod.log)`);
      await this.model.store.waitForChange(500);
    }
  }

  private async call(vmRef: string, body: HvCall): Promise<unknown> {
    try { return await this.backend.request(body); } catch (e) { throw hvError(e, vmRef, this.model.hostRef); }
  }

  /**
   * Refreshes until `pred` holds for the VM's domain (undefined: none), or throws VM_SHUTDOWN_TIMEOUT (waiting
   * for a guest to stop) or INTERNAL_ERROR (the hypervisor did not show the change it was asked for).
   */
  private async until(vmRef: string, uuid: string, pred: (d: DomainInfo | undefined) => boolean, ms = CLEAN_TIMEOUT_MS): Promise<DomainInfo | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      await this.model.refresh();
      const d = this.model.domains.get(uuid);
      if (pred(d)) return d;
      if (Date.now() >= deadline) {
        throw ms === CLEAN_TIMEOUT_MS ? new XapiError("VM_SHUTDOWN_TIMEOUT", vmRef, String(ms / 1000))
          : new XapiError("INTERNAL_ERROR", `the VM's domain did not reach the state asked for within ${ms / 1000} s (see xenod.log and hv.log)`);
      }
      await this.model.store.waitForChange(Math.min(1000, deadline - Date.now()));
    }
  }

  /** The running (or paused) domain of a VM, or VM_BAD_POWER_STATE naming what it is instead. */
  private live(vmRef: string, uuid: string, expected: string, allowPaused: boolean): DomainInfo {
    const d = this.model.domains.get(uuid);
    const actual = !d || d.state === "shutdown" || d.state === "crashed" || d.state === "dying" ? "Halted" : d.state === "paused" ? "Paused" : "Running";
    if (d?.domid === 0) throw new XapiError("OPERATION_NOT_ALLOWED", "Domain-0 is the toolstack's own domain; it cannot be stopped, paused or rebooted");
    if (actual === "Halted" || (actual === "Paused" && !allowPaused)) throw new XapiError("VM_BAD_POWER_STATE", vmRef, expected, actual.toLowerCase());
    return d!;
  }

  private async create(vmRef: string, spec: DomainSpec, paused: boolean): Promise<void> {
    const deadline = Date.now() + NAME_RETRY_MS;
    for (;;) {
      try {
        await this.backend.request({ op: "create", spec: { ...spec, paused: paused || undefined } });
        return;
      } catch (e) {
        // A just-destroyed domain may hold its name a moment longer (as the supervisor's restart retries).
        if ((e as { code?: string }).code === "EEXIST_NAME" && Date.now() < deadline) { await new Promise((r) => setTimeout(r, 200)); continue; }
        throw hvError(e, vmRef, this.model.hostRef);
      }
    }
  }

  async start(vmRef: string, uuid: string, startPaused: boolean): Promise<void> {
    const d = this.model.domains.get(uuid);
    if (this.model.suspendFile(uuid)) throw new XapiError("VM_BAD_POWER_STATE", vmRef, "halted", "suspended");
    if (d && d.domid === 0) throw new XapiError("VM_BAD_POWER_STATE", vmRef, "halted", "running");
    if (d && d.state !== "shutdown" && d.state !== "crashed") throw new XapiError("VM_BAD_POWER_STATE", vmRef, "halted", d.state === "paused" ? "paused" : "running");
    const spec = d ? d.spec : this.model.haltedSpec(uuid);
    if (!spec) throw new XapiError("HANDLE_INVALID", "VM", vmRef);
    if (d) await this.call(vmRef, { op: "destroy", domid: d.domid }); // a preserved stopped domain: its remains go first
    await this.create(vmRef, { ...spec, uuid }, startPaused); // the same UUID: the same VM
    await this.until(vmRef, uuid, (x) => x !== undefined && x.state !== "shutdown" && x.state !== "crashed", 30_000);
  }

  async cleanShutdown(vmRef: string, uuid: string): Promise<void> {
    const d = this.live(vmRef, uuid, "running", false);
    const original = d.spec.toolstack;
    // XAPI's clean_shutdown ends Halted whatever on_poweroff says: the toolstack is told to destroy it.
    if (original && original.onPoweroff !== "destroy") await this.call(vmRef, { op: "set-toolstack", domid: d.domid, toolstack: { ...original, onPoweroff: "destroy" } });
    await this.call(vmRef, { op: "shutdown", domid: d.domid, reason: "poweroff" });
    const left = await this.until(vmRef, uuid, (x) => x === undefined || x.domid !== d.domid || x.state === "shutdown");
    if (left && left.domid === d.domid) {
      // Stopped: the supervisor destroys it (on_poweroff=destroy) unless this gets there first.
      await this.backend.request({ op: "destroy", domid: d.domid }).catch((e: unknown) => {
        if ((e as { code?: string }).code !== "ENOENT_DOMAIN") throw hvError(e, vmRef, this.model.hostRef);
      });
    }
    if (original) this.model.keepHalted(uuid, { ...d.spec, toolstack: original as ToolstackData });
    await this.model.refresh();
  }

  async hardShutdown(vmRef: string, uuid: string): Promise<void> {
    const file = this.model.suspendFile(uuid);
    if (file) {
      // XAPI: a suspended VM shut down is Halted; its suspend image is discarded.
      this.model.setSuspended(uuid, null);
      await rm(file, { force: true });
      await this.model.refresh();
      return;
    }
    const d = this.live(vmRef, uuid, "running", true);
    await this.call(vmRef, { op: "destroy", domid: d.domid });
    await this.until(vmRef, uuid, (x) => x === undefined || x.domid !== d.domid, 30_000);
  }

  async cleanReboot(vmRef: string, uuid: string): Promise<void> {
    const d = this.live(vmRef, uuid, "running", false);
    const ts = d.spec.toolstack;
    if (ts && ts.onReboot !== "restart") await this.call(vmRef, { op: "set-toolstack", domid: d.domid, toolstack: { ...ts, onReboot: "restart" } });
    await this.call(vmRef, { op: "shutdown", domid: d.domid, reason: "reboot" });
    const now = await this.until(vmRef, uuid, (x) => x !== undefined && x.domid !== d.domid && x.state !== "shutdown" && x.state !== "crashed");
    // The policy was changed only for this reboot: the new domain gets the one it had.
    if (ts && ts.onReboot !== "restart" && now) await this.call(vmRef, { op: "set-toolstack", domid: now.domid, toolstack: ts });
  }

  async hardReboot(vmRef: string, uuid: string): Promise<void> {
    const d = this.live(vmRef, uuid, "running", true);
    await this.call(vmRef, { op: "destroy", domid: d.domid });
    await this.until(vmRef, uuid, (x) => x === undefined || x.domid !== d.domid, 30_000);
    await this.create(vmRef, { ...d.spec, uuid }, false);
    await this.until(vmRef, uuid, (x) => x !== undefined && x.state !== "shutdown", 30_000);
  }

  async pause(vmRef: string, uuid: string): Promise<void> {
    const d = this.live(vmRef, uuid, "running", true);
    if (d.state === "paused") throw new XapiError("VM_BAD_POWER_STATE", vmRef, "running", "paused");
    await this.call(vmRef, { op: "pause", domid: d.domid });
    await this.model.refresh();
  }

  async unpause(vmRef: string, uuid: string): Promise<void> {
    const d = this.live(vmRef, uuid, "paused", true);
    if (d.state !== "paused") throw new XapiError("VM_BAD_POWER_STATE", vmRef, "paused", "running");
    await this.call(vmRef, { op: "unpause", domid: d.domid });
    await this.model.refresh();
  }

  /** The balloon: memory/target = max (there is no squeezed to choose between min and max). */
  async setMemoryDynamicRange(vmRef: string, uuid: string, min: number, max: number): Promise<void> {
    const d = this.live(vmRef, uuid, "running", true);
    const staticMax = d.maxMemKiB * 1024;
    if (min > max) throw new XapiError("MEMORY_CONSTRAINT_VIOLATION", `dynamic_min (${min}) > dynamic_max (${max})`);
    if (max > staticMax) throw new XapiError("MEMORY_CONSTRAINT_VIOLATION", `dynamic_max (${max}) > static_max (${staticMax})`);
    if (max < 16 * 1024 * 1024) throw new XapiError("MEMORY_CONSTRAINT_VIOLATION", `dynamic_max (${max}) < 16 MiB, the least a Xeno guest is given`);
    await this.call(vmRef, { op: "mem-set", domid: d.domid, targetKiB: Math.floor(max / 1024) });
    await this.model.refresh();
  }

  /**
   * VM.suspend: the domain's state and memory to a save file (the hypervisor's `save`, as `xeno save`: docs/
   * save-format.md) in SUSPEND_DIR of the API directory; the domain is destroyed and the VM is Suspended.
   */
  async suspend(vmRef: string, uuid: string): Promise<void> {
    const d = this.live(vmRef, uuid, "running", false);
    await mkdir(this.suspendDir, { recursive: true, mode: 0o700 });
    const path = join(this.suspendDir, `${uuid}.xeno`);
    await this.call(vmRef, { op: "save", domid: d.domid, path });
    this.model.setSuspended(uuid, path);
    this.model.keepHalted(uuid, d.spec);
    await this.until(vmRef, uuid, (x) => x === undefined || x.domid !== d.domid, 30_000);
  }

  /** VM.resume: the hypervisor restores the save file (same name, UUID and domid); the file is removed after. */
  async resume(vmRef: string, uuid: string, startPaused: boolean): Promise<void> {
    const path = this.model.suspendFile(uuid);
    if (!path) {
      const d = this.model.domains.get(uuid);
      throw new XapiError("VM_BAD_POWER_STATE", vmRef, "suspended", !d || d.state === "shutdown" || d.state === "crashed" ? "halted" : d.state === "paused" ? "paused" : "running");
    }
    await this.call(vmRef, { op: "restore", path, paused: startPaused || undefined });
    this.model.setSuspended(uuid, null);
    await rm(path, { force: true });
    await this.until(vmRef, uuid, (x) => x !== undefined && x.state !== "shutdown" && x.state !== "crashed", 30_000);
  }

  /** XAPI's VM.destroy: removes a halted VM's record (its disks' files stay). */
  async destroy(vmRef: string, uuid: string): Promise<void> {
    const d = this.model.domains.get(uuid);
    if (d && d.domid === 0) throw new XapiError("OPERATION_NOT_ALLOWED", "Domain-0 cannot be destroyed");
    if (d && d.state !== "shutdown" && d.state !== "crashed") throw new XapiError("VM_BAD_POWER_STATE", vmRef, "halted", d.state === "paused" ? "paused" : "running");
    if (this.model.suspendFile(uuid)) throw new XapiError("VM_BAD_POWER_STATE", vmRef, "halted", "suspended");
    if (d) await this.call(vmRef, { op: "destroy", domid: d.domid });
    this.model.forget(uuid);
    await this.model.refresh();
  }
}
