/**
 * The XenAPI calls served, each with its argument schema (zod), its minimum role (roles.ts, as xapi's
 * datamodel gives them) and whether it changes anything (mutating calls go to the audit log). Class calls:
 * get_all, get_all_records, get_record, get_by_uuid, get_by_name_label and a getter per field (X.get_FIELD).
 */
import { z } from "zod";
import { XapiError } from "./errors.js";
import { CLASSES, type XenModel } from "./model.js";
import type { Role } from "./roles.js";
import type { XapiRecord } from "./store.js";
import type { VmActions } from "./vm-actions.js";
import type { Tasks } from "./tasks.js";
import type { ConsoleTickets } from "./console-ws.js";
import { Int32, XapiDateTime } from "./values.js";

/** What a call runs with: the caller and the parts of the API server it may use. */
export interface CallContext {
  model: XenModel;
  vm: VmActions;
  tasks: Tasks;
  tickets: ConsoleTickets;
  /** The caller's address (for console tickets). */
  from: string;
  session?: { ref: string; uuid: string; user: string; role: Role; since: number };
  /** Aborted when the client goes away (event.from stops waiting). */
  signal?: AbortSignal;
}

export interface MethodDef {
  /** Argument names after the session, for FIELD_TYPE_ERROR. */
  names: string[];
  /** One schema per argument; optional ones at the end. */
  args: z.ZodTypeAny[];
  /** Arguments that may be left off the end. */
  optional?: number;
  /** Takes a session ref as its first parameter (all but session.login_with_password and system.*). */
  session: boolean;
  role: Role;
  mutating: boolean;
  run(ctx: CallContext, args: unknown[]): Promise<unknown> | unknown;
}

/** XAPI's int: a JSON number in JSON-RPC, a decimal string in XML-RPC (xapi's int64 convention). */
const int = z.union([z.number().int(), z.string().regex(/^-?\d{1,19}$/, "a decimal integer")]).transform(Number)
  .refine((n) => Number.isSafeInteger(n), "an integer within ±2^53");
const float = z.union([z.number(), z.string().regex(/^-?\d+(\.\d+)?$/, "a number")]).transform(Number).refine(Number.isFinite, "a finite number");
const str = z.string().max(4096);
const ref = z.string().max(128);
const bool = z.boolean();

function record(ctx: CallContext, cls: string, r: string): XapiRecord {
  const o = ctx.model.store.get(r);
  if (!o || o.cls !== cls) throw new XapiError("HANDLE_INVALID", cls, r);
  return o.record;
}

const vmCall = (run: (ctx: CallContext, vmRef: string, uuid: string, rest: unknown[]) => Promise<void>, role: Role, extra: { names: string[]; args: z.ZodTypeAny[] } = { names: [], args: [] }): MethodDef => ({
  names: ["vm", ...extra.names], args: [ref, ...extra.args], session: true, role, mutating: true,
  run: async (ctx, [vmRef, ...rest]) => {
    const rec = record(ctx, "VM", vmRef as string);
    await run(ctx, vmRef as string, rec.uuid as string, rest);
    return "";
  },
});

export function buildMethods(): Map<string, MethodDef> {
  const m = new Map<string, MethodDef>();
  for (const cls of CLASSES) {
    m.set(`${cls}.get_all`, { names: [], args: [], session: true, role: "read-only", mutating: false, run: (ctx) => ctx.model.store.refs(cls) });
    m.set(`${cls}.get_all_records`, { names: [], args: [], session: true, role: "read-only", mutating: false, run: (ctx) => Object.fromEntries(ctx.model.store.all(cls)) });
    m.set(`${cls}.get_record`, { names: ["self"], args: [ref], session: true, role: "read-only", mutating: false, run: (ctx, [r]) => record(ctx, cls, r as string) });
    m.set(`${cls}.get_by_uuid`, {
      names: ["uuid"], args: [str], session: true, role: "read-only", mutating: false,
      run: (ctx, [u]) => {
        const hit = ctx.model.store.all(cls).find(([, rec]) => rec.uuid === u);
        if (!hit) throw new XapiError("UUID_INVALID", cls, u as string);
        return hit[0];
      },
    });
    m.set(`${cls}.get_by_name_label`, {
      names: ["label"], args: [str], session: true, role: "read-only", mutating: false,
      run: (ctx, [l]) => ctx.model.store.all(cls).filter(([, rec]) => rec.name_label === l).map(([r]) => r),
    });
  }
  m.set("session.login_with_password", { names: ["uname", "pwd", "version", "originator"], args: [str, str, str, str], optional: 2, session: false, role: "read-only", mutating: true, run: () => { throw new XapiError("INTERNAL_ERROR", "handled by the dispatcher"); } });
  m.set("session.logout", { names: [], args: [], session: true, role: "read-only", mutating: false, run: () => "" });
  m.set("session.get_record", {
    names: ["self"], args: [ref], session: true, role: "read-only", mutating: false,
    run: (ctx, [r]) => {
      const s = ctx.session!;
      if (r !== s.ref) throw new XapiError("HANDLE_INVALID", "session", r as string);
      return { uuid: s.uuid, this_host: ctx.model.hostRef, this_user: "OpaqueRef:NULL", last_active: new Date(s.since).toISOString(), pool: false, is_local_superuser: s.role === "pool-admin", auth_user_name: s.user, xeno_role: s.role, rbac_permissions: [], tasks: [], other_config: {}, originator: "", parent: "OpaqueRef:NULL", subject: "OpaqueRef:NULL", auth_user_sid: "", validation_time: "", client_certificate: false };
    },
  });
  m.set("session.get_this_host", { names: ["self"], args: [ref], session: true, role: "read-only", mutating: false, run: (ctx) => ctx.model.hostRef });
  m.set("system.listMethods", { names: [], args: [], session: false, role: "read-only", mutating: false, run: () => [] }); // filled by the dispatcher

  m.set("VM.start", vmCall((ctx, r, u, [paused]) => ctx.vm.start(r, u, paused as boolean), "vm-operator", { names: ["start_paused", "force"], args: [bool, bool] }));
  m.set("VM.clean_shutdown", vmCall((ctx, r, u) => ctx.vm.cleanShutdown(r, u), "vm-operator"));
  m.set("VM.hard_shutdown", vmCall((ctx, r, u) => ctx.vm.hardShutdown(r, u), "vm-operator"));
  m.set("VM.clean_reboot", vmCall((ctx, r, u) => ctx.vm.cleanReboot(r, u), "vm-operator"));
  m.set("VM.hard_reboot", vmCall((ctx, r, u) => ctx.vm.hardReboot(r, u), "vm-operator"));
  m.set("VM.pause", vmCall((ctx, r, u) => ctx.vm.pause(r, u), "vm-operator"));
  m.set("VM.unpause", vmCall((ctx, r, u) => ctx.vm.unpause(r, u), "vm-operator"));
  m.set("VM.set_memory_dynamic_range", vmCall((ctx, r, u, [min, max]) => ctx.vm.setMemoryDynamicRange(r, u, min as number, max as number), "vm-power-admin", { names: ["min", "max"], args: [int, int] }));
  m.set("VM.destroy", vmCall((ctx, r, u) => ctx.vm.destroy(r, u), "vm-admin"));
  m.set("VM.suspend", vmCall((ctx, r, u) => ctx.vm.suspend(r, u), "vm-operator"));
  m.set("VM.resume", vmCall((ctx, r, u, [paused]) => ctx.vm.resume(r, u, paused as boolean), "vm-operator", { names: ["start_paused", "force"], args: [bool, bool] }));

  // Xeno extensions (docs/api.md): a VM from an xl.cfg text (vm-create.ts), and a one-shot console ticket (console-ws.ts).
  m.set("VM.create_from_xl_config", {
    names: ["config", "start_paused"], args: [z.string().max(65536), bool], session: true, role: "vm-admin", mutating: true,
    run: (ctx, [text, paused]) => ctx.vm.createFromConfig(text as string, paused as boolean),
  });
  m.set("VM.xeno_console_ticket", {
    names: ["self"], args: [ref], session: true, role: "vm-operator", mutating: false,
    run: (ctx, [r]) => {
      const rec = record(ctx, "VM", r as string);
      const d = ctx.model.domains.get(rec.uuid as string);
      if (!d || d.state === "shutdown" || d.state === "crashed" || d.state === "dying") throw new XapiError("VM_BAD_POWER_STATE", r as string, "running", String(rec.power_state).toLowerCase());
      if (d.domid === 0) throw new XapiError("OPERATION_NOT_ALLOWED", "Domain-0 has no guest console");
      const s = ctx.session!;
      return ctx.tickets.issue({ user: s.user, role: s.role, vmUuid: d.uuid, vmName: d.name, domid: d.domid, from: ctx.from });
    },
  });

  m.set("task.create", {
    names: ["label", "description"], args: [str, str], session: true, role: "read-only", mutating: false,
    run: (ctx, [label, description]) => ctx.tasks.create(label as string, description as string, ctx.session!.user),
  });
  m.set("host.get_servertime", {
    names: ["host"], args: [ref], session: true, role: "read-only", mutating: false,
    run: (ctx, [r]) => { record(ctx, "host", r as string); return new XapiDateTime(Date.now()); },
  });
  m.set("task.cancel", { names: ["task"], args: [ref], session: true, role: "read-only", mutating: true, run: (ctx, [r]) => { ctx.tasks.cancel(r as string); return ""; } });
  m.set("task.destroy", { names: ["self"], args: [ref], session: true, role: "read-only", mutating: false, run: (ctx, [r]) => { ctx.tasks.destroy(r as string); return ""; } });
  m.set("event.inject", {
    names: ["class", "ref"], args: [str, ref], session: true, role: "read-only", mutating: false,
    run: (ctx, [cls, r]) => {
      const o = ctx.model.store.get(r as string);
      if (!o || o.cls.toLowerCase() !== (cls as string).toLowerCase()) throw new XapiError("HANDLE_INVALID", cls as string, r as string);
      return String(ctx.model.store.touch(r as string));
    },
  });
  m.set("event.from", {
    names: ["classes", "token", "timeout"], args: [z.array(str).max(256), z.string().max(64), float], session: true, role: "read-only", mutating: false,
    run: async (ctx, [classes, token, timeout]) => {
      const t = token as string;
      if (t !== "" && !/^\d{1,15}$/.test(t)) throw new XapiError("EVENT_FROM_TOKEN_PARSE_FAILURE", t);
      const since = t === "" ? 0 : Number(t);
      // A token from the future is one of an earlier xenod (its generations started again at 0): reload.
      if (since > ctx.model.store.gen) throw new XapiError("EVENTS_LOST");
      const want = new Set((classes as string[]).map((c) => c.toLowerCase()));
      const store = ctx.model.store;
      // Waits up to `timeout` seconds (at most 10 min) for a change to a wanted class, as xapi's event.from does.
      const deadline = Date.now() + Math.min(Math.max(timeout as number, 0), 600) * 1000;
      for (;;) {
        let events;
        try { events = store.changesSince(since, want); } catch { throw new XapiError("EVENTS_LOST"); }
        if (events.length > 0 || Date.now() >= deadline || ctx.signal?.aborted) {
          const counts: Record<string, Int32> = {};
          for (const cls of CLASSES) if (want.has("*") || want.has(cls.toLowerCase())) counts[cls.toLowerCase()] = new Int32(store.count(cls));
          return { events, valid_ref_counts: counts, token: String(store.gen) };
        }
        await store.waitForChange(deadline - Date.now(), ctx.signal);
      }
    },
  });
  m.set("pool.add_to_other_config", {
    names: ["self", "key", "value"], args: [ref, str, str], session: true, role: "pool-operator", mutating: true,
    run: (ctx, [r, k, v]) => { record(ctx, "pool", r as string); ctx.model.setPoolOtherConfig(k as string, v as string); return ""; },
  });
  m.set("pool.remove_from_other_config", {
    names: ["self", "key"], args: [ref, str], session: true, role: "pool-operator", mutating: true,
    run: (ctx, [r, k]) => { record(ctx, "pool", r as string); ctx.model.setPoolOtherConfig(k as string, null); return ""; },
  });
  return m;
}

/** `CLS.get_FIELD`: a getter for a field of a served class (null: not such a name). */
export function fieldGetter(method: string): { cls: string; field: string } | null {
  const m = /^([A-Za-z_]+)\.get_([A-Za-z0-9_]+)$/.exec(method);
  if (!m || !(CLASSES as readonly string[]).includes(m[1]!)) return null;
  return { cls: m[1]!, field: m[2]! };
}
