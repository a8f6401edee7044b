/**
 * One XenAPI call, whatever the transport: method lookup (MESSAGE_METHOD_UNKNOWN), argument count
 * (MESSAGE_PARAMETER_COUNT_MISMATCH, counting the session as xapi does), session (SESSION_INVALID), role
 * (RBAC_PERMISSION_DENIED), argument types (FIELD_TYPE_ERROR, by zod), then the call. Every mutating call, every
 * refused one and every login attempt is written to the audit log. Nothing a client sends can throw out of
 * `call`: unexpected failures come back as INTERNAL_ERROR and are logged.
 */
import { randomUUID } from "node:crypto";
import type { AuditLog } from "./audit.js";
import { XapiError } from "./errors.js";
import { buildMethods, fieldGetter, type CallContext, type MethodDef } from "./methods.js";
import { CLASSES, type XenModel } from "./model.js";
import { allows, type Role } from "./roles.js";
import type { Authenticator, LocalAuthenticator, Principal } from "./users.js";
import type { VmActions } from "./vm-actions.js";
import { Tasks } from "./tasks.js";
import { ConsoleTickets } from "./console-ws.js";
import { newRef } from "./values.js";

/** Sessions idle this long expire (xapi: 24 h for an unused session). */
export const SESSION_IDLE_MS = 24 * 3600_000;
/** At most this many sessions; the least recently used goes first (a client looping on login cannot grow memory). */
export const MAX_SESSIONS = 5_000;
/** Failed logins from one address within FAIL_WINDOW_MS before further attempts are refused at once, unhashed. */
export const MAX_FAILS = 10;
export const FAIL_WINDOW_MS = 60_000;

interface Session { ref: string; uuid: string; user: string; role: Role; via: string; since: number; last: number }

export interface DispatchOptions {
  model: XenModel;
  vm: VmActions;
  authenticators: Authenticator[];
  audit: AuditLog;
  log(line: string, level?: "info" | "warn" | "error"): void;
}

export class Dispatcher {
  private readonly methods = buildMethods();
  private readonly sessions = new Map<string, Session>();
  private readonly fails = new Map<string, number[]>();
  readonly tasks: Tasks;
  readonly tickets = new ConsoleTickets();
  /** Counters since start (tests and /metrics read them). */
  readonly counts = { calls: 0, errors: 0, loginFailures: 0, loginThrottled: 0, internalErrors: 0 };

  constructor(private readonly o: DispatchOptions) {
    this.tasks = new Tasks(o.model);
  }

  /** Calls `method` with `params`; resolves with its value or rejects with an XapiError (only). */
  async call(method: unknown, params: unknown, from: string, signal?: AbortSignal): Promise<unknown> {
    this.counts.calls++;
    let who: { user: string; role: string } = { user: "-", role: "-" };
    let def: MethodDef | undefined;
    try {
      if (typeof method !== "string" || method.length > 256) throw new XapiError("MESSAGE_METHOD_UNKNOWN", String(method).slice(0, 256));
      if (!Array.isArray(params)) throw new XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, "an array", typeof params);
      // Async.CLASS.METHOD: the same call, run as a task (tasks.ts); the answer is the task's ref.
      const isAsync = method.startsWith("Async.");
      const name = isAsync ? method.slice("Async.".length) : method;
      def = this.methods.get(name) ?? this.getter(name);
      if (!def || (isAsync && (!def.session || name.startsWith("event.") || name.startsWith("session.") || name.startsWith("task.")))) {
        throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
      }
      if (method === "session.login_with_password") {
        who = { user: typeof params[0] === "string" ? params[0].slice(0, 128) : "-", role: "-" };
        return await this.login(def, params, from);
      }
      if (method === "system.listMethods") return this.listMethods();
      const total = def.args.length + (def.session ? 1 : 0), min = total - (def.optional ?? 0);
      if (params.length < min || params.length > total) {
        throw new XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, String(min === total ? total : `${min}..${total}`), String(params.length));
      }
      let args = params;
      const ctx: CallContext = { model: this.o.model, vm: this.o.vm, tasks: this.tasks, tickets: this.tickets, from, signal: isAsync ? undefined : signal };
      if (def.session) {
        const s = this.session(params[0]);
        who = s;
        ctx.session = s;
        args = params.slice(1);
        if (method === "session.logout") { this.sessions.delete(s.ref); return ""; }
        if (!allows(s.role, def.role)) {
          throw new XapiError("RBAC_PERMISSION_DENIED", method.toLowerCase(), `the role ${s.role} of ${s.user} does not allow ${method} (it needs ${def.role} or above)`);
        }
      }
      const parsed = args.map((a, i) => {
        const r = def!.args[i]!.safeParse(a);
        if (!r.success) throw new XapiError("FIELD_TYPE_ERROR", def!.names[i] ?? `#${i}`, `${r.error.issues[0]?.message ?? "wrong type"}; got ${describe(a)}`);
        return r.data as unknown;
      });
      if (isAsync) {
        const d = def, w = who;
        return this.tasks.start(name, w.user, async () => {
          try {
            const r = await d.run(ctx, parsed);
            if (d.mutating) this.audit(w, method, params, d, "ok", from);
            return r;
          } catch (e) {
            const err = e instanceof XapiError ? e : this.internal(e, method);
            this.audit(w, method, params, d, err.message, from);
            throw err;
          }
        });
      }
      const result = await def.run(ctx, parsed);
      if (def.mutating) this.audit(who, method, params, def, "ok", from);
      return result;
    } catch (e) {
      this.counts.errors++;
      const err = e instanceof XapiError ? e : this.internal(e, method);
      if (who.user === "-" && def?.session && Array.isArray(params) && typeof params[0] === "string") {
        const s = this.sessions.get(params[0]); // refused before the session was checked: still say whose it was
        if (s) who = s;
      }
      if (def?.mutating || err.code === "RBAC_PERMISSION_DENIED" || err.code === "SESSION_INVALID" || err.code === "MESSAGE_METHOD_UNKNOWN") {
        this.audit(who, typeof method === "string" ? method.slice(0, 256) : "?", Array.isArray(params) ? params : [], def, err.message, from);
      }
      throw err;
    }
  }

  private internal(e: unknown, method: unknown): XapiError {
    this.counts.internalErrors++;
    this.o.log(`API: ${String(method)} failed unexpectedly: ${(e as Error)?.stack ?? String(e)}`, "error");
    return new XapiError("INTERNAL_ERROR", (e as Error)?.message ?? String(e));
  }

  private getter(method: string): MethodDef | undefined {
    const g = fieldGetter(method);
    if (!g) return undefined;
    return {
      names: ["self"], args: this.methods.get(`${g.cls}.get_record`)!.args, session: true, role: "read-only", mutating: false,
      run: (ctx, [r]) => {
        const o = ctx.model.store.get(r as string);
        if (!o || o.cls !== g.cls) throw new XapiError("HANDLE_INVALID", g.cls, r as string);
        if (!Object.hasOwn(o.record, g.field)) throw new XapiError("MESSAGE_METHOD_UNKNOWN", method);
        return o.record[g.field];
      },
    };
  }

  /** Every method name: the fixed ones and a getter per field of each class that has objects. */
  private listMethods(): string[] {
    const names = [...this.methods.keys()];
    for (const [n, d] of this.methods) if (d.mutating && d.session && !n.startsWith("task.")) names.push(`Async.${n}`);
    for (const cls of CLASSES) {
      const first = this.o.model.store.all(cls)[0];
      if (first) for (const f of Object.keys(first[1])) names.push(`${cls}.get_${f}`);
    }
    return [...new Set(names)].sort();
  }

  private session(ref: unknown): Session {
    const s = typeof ref === "string" ? this.sessions.get(ref) : undefined;
    const now = Date.now();
    if (!s || now - s.last > SESSION_IDLE_MS) {
      if (s) this.sessions.delete(s.ref);
      throw new XapiError("SESSION_INVALID", typeof ref === "string" ? ref.slice(0, 128) : String(ref));
    }
    // The user's role now: `xeno user role` / `remove` apply to open sessions at their next call.
    const local = this.o.authenticators.find((a) => a.name === "local") as LocalAuthenticator | undefined;
    if (s.via === "local" && local) {
      const role = local.roleOf(s.user);
      if (role === null) { this.sessions.delete(s.ref); throw new XapiError("SESSION_INVALID", s.ref); }
      s.role = role;
    }
    s.last = now;
    this.sessions.delete(s.ref); // re-inserted: the Map's order is least recently used first
    this.sessions.set(s.ref, s);
    return s;
  }

  /** True for a live session (GET /metrics with ?session_id=). */
  hasSession(ref: string): boolean {
    try { this.session(ref); return true; } catch { return false; }
  }

  /** A password check outside a call (HTTP Basic on /metrics): throttled and audited as a login. */
  async checkLogin(user: string, password: string, from: string): Promise<boolean> {
    try {
      const ref = await this.login(this.methods.get("session.login_with_password")!, [user.slice(0, 128), password], from);
      this.sessions.delete(ref);
      return true;
    } catch (e) {
      if (e instanceof XapiError) this.audit({ user: user.slice(0, 128), role: "-" }, "GET /metrics", [user.slice(0, 128), "(secret)"], undefined, e.message, from);
      return false;
    }
  }

  private async login(def: MethodDef, params: unknown[], from: string): Promise<string> {
    const user = typeof params[0] === "string" ? params[0].slice(0, 128) : "";
    const fail = (why: string): never => {
      this.counts.loginFailures++;
      throw new XapiError("SESSION_AUTHENTICATION_FAILED", user, why);
    };
    if (params.length < 2 || params.length > 4) throw new XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", "session.login_with_password", "2..4", String(params.length));
    params.forEach((p, i) => { if (!def.args[i]!.safeParse(p).success) throw new XapiError("FIELD_TYPE_ERROR", def.names[i]!, `a string; got ${describe(p)}`); });
    const now = Date.now();
    const recent = (this.fails.get(from) ?? []).filter((t) => now - t < FAIL_WINDOW_MS);
    if (recent.length >= MAX_FAILS) {
      this.counts.loginThrottled++;
      fail(`too many failed logins from ${from} (${MAX_FAILS} within ${FAIL_WINDOW_MS / 1000} s); wait and try again`);
    }
    let p: Principal | null = null;
    for (const a of this.o.authenticators) {
      try { p = await a.authenticate(user, params[1] as string); } catch (e) { this.o.log(`API: authenticator ${a.name} failed: ${(e as Error).message}`, "warn"); }
      if (p) break;
    }
    if (!p) {
      recent.push(now);
      this.fails.set(from, recent);
      if (this.fails.size > 10_000) this.fails.delete(this.fails.keys().next().value!);
      fail("Authentication failure (unknown user or wrong password)");
    }
    this.fails.delete(from);
    const s: Session = { ref: newRef(), uuid: randomUUID(), user: p!.user, role: p!.role, via: p!.via, since: now, last: now };
    this.sessions.set(s.ref, s);
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.audit(s, "session.login_with_password", params, def, "ok", from);
    return s.ref;
  }

  /** An event outside a call (console open/close) for the audit log. */
  auditEvent(who: { user: string; role: string }, method: string, args: unknown[], result: string, from: string): void {
    this.audit(who, method, args, undefined, result, from);
  }

  /** The session's user and role, or null (an HTTP handler checking ?session_id=). */
  whoIs(ref: string): { user: string; role: Role } | null {
    try { const s = this.session(ref); return { user: s.user, role: s.role }; } catch { return null; }
  }

  private audit(who: { user: string; role: string }, method: string, params: unknown[], def: MethodDef | undefined, result: string, from: string): void {
    try {
      this.o.audit.append({ time: new Date().toISOString(), user: who.user, role: who.role, method, args: redact(method, params, def), result: result.slice(0, 1024), from });
    } catch (e) {
      this.o.log(`API: cannot append to the audit log ${this.o.audit.path}: ${(e as Error).message}`, "error");
    }
  }
}

/** Arguments as the audit log keeps them: the session and passwords replaced, long values cut. */
function redact(method: string, params: unknown[], def: MethodDef | undefined): unknown[] {
  return params.slice(0, 16).map((p, i) => {
    if (method === "session.login_with_password") return i === 0 ? p : "(secret)";
    if (i === 0 && def?.session) return "(session)";
    const s = safeJson(p);
    return s.length > 256 ? `${s.slice(0, 256)}…` : s === TOO_DEEP ? s : p;
  });
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  const s = safeJson(v);
  return `${typeof v} ${s.length > 40 ? s.slice(0, 40) + "…" : s}`;
}

/** JSON of a client's value; one nested too deep to write (JSON.parse takes depths JSON.stringify cannot) is named. */
function safeJson(v: unknown): string {
  try { return JSON.stringify(v) ?? String(v); } catch { return TOO_DEEP; }
}
const TOO_DEEP = "(nested too deep to show)";
