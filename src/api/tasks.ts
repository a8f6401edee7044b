/**
 * XAPI's asynchronous calls: `Async.CLASS.METHOD(session, args…)` starts the call and returns a task ref at once;
 * the task (class `task`, in the store, so `event.from` reports it) goes from `pending` to `success` with the
 * call's result written as an XML-RPC value (as xapi does: Xen Orchestra's connector parses it so) or `failure`
 * with the error's [CODE, params…]. `task.destroy` removes a finished task, `task.cancel` marks a pending one
 * cancelled (the call itself runs to its end: none of the calls here can be stopped half-way). Finished tasks no
 * one destroys are removed after TASK_TTL_MS.
 */
import { randomUUID } from "node:crypto";
import { XapiError } from "./errors.js";
import type { XenModel } from "./model.js";
import { newRef, NULL_REF, XapiDateTime } from "./values.js";
import { encodeValue } from "./xmlrpc.js";

export const TASK_TTL_MS = 10 * 60_000;
/** Pending and finished tasks kept at most (a client starting calls in a loop cannot grow memory). */
export const MAX_TASKS = 1000;

export class Tasks {
  private readonly order: string[] = [];
  /** Tasks made by task.create, finished by whoever the client hands them to (an HTTP handler's task_id). */
  private readonly manual = new Map<string, { done(v: unknown): void; fail(e: unknown): void }>();

  constructor(private readonly model: XenModel) {}

  /** Starts `run` as a task named for `method`; the task ref. */
  start(method: string, user: string, run: () => Promise<unknown>, label = `Async.${method}`, description = ""): string {
    if (this.order.length >= MAX_TASKS) {
      const old = this.order.find((r) => this.model.store.get(r)?.record.status !== "pending");
      if (!old) throw new XapiError("OPERATION_NOT_ALLOWED", `${MAX_TASKS} tasks are pending; wait for some to finish`);
      this.destroy(old);
    }
    const ref = newRef();
    const base = {
      uuid: randomUUID(), name_label: label, name_description: description, allowed_operations: ["cancel"], current_operations: {},
      created: new XapiDateTime(Date.now()), finished: new XapiDateTime(0), status: "pending", resident_on: this.model.hostRef, progress: 0,
      type: "", result: "", error_info: [] as string[], other_config: { "xeno:user": user }, subtask_of: NULL_REF, subtasks: [], backtrace: "()",
    };
    this.model.store.put("task", ref, base);
    this.order.push(ref);
    const finish = (fields: Record<string, unknown>): void => {
      const cur = this.model.store.get(ref);
      if (!cur) return; // destroyed meanwhile
      const cancelled = cur.record.status === "cancelling";
      this.model.store.put("task", ref, { ...cur.record, ...fields, ...(cancelled ? { status: "cancelled" } : {}), allowed_operations: [], progress: 1, finished: new XapiDateTime(Date.now()) });
      setTimeout(() => this.destroy(ref), TASK_TTL_MS).unref();
    };
    run().then(
      (value) => finish({ status: "success", result: value === "" || value === undefined ? "" : encodeValue(value).join("") }),
      (e: unknown) => finish({ status: "failure", error_info: e instanceof XapiError ? e.description : ["INTERNAL_ERROR", String((e as Error)?.message ?? e)] }),
    );
    return ref;
  }

  /**
   * task.create: a pending task the client names, as xapi's, which clients (Xen Orchestra's connector) pass to an
   * HTTP handler as `task_id`; the handler finishes it (finish()).
   */
  create(label: string, description: string, user: string): string {
    let hooks!: { done(v: unknown): void; fail(e: unknown): void };
    const p = new Promise<unknown>((done, fail) => { hooks = { done, fail }; });
    const ref = this.start("task.create", user, () => p, label, description);
    this.manual.set(ref, hooks);
    return ref;
  }

  /** Finishes a task.create task (success, or failure with `error`); any other ref is ignored. */
  finish(ref: unknown, error?: XapiError): void {
    const m = typeof ref === "string" ? this.manual.get(ref) : undefined;
    if (!m) return;
    this.manual.delete(ref as string);
    if (error) m.fail(error); else m.done("");
  }

  cancel(ref: string): void {
    const t = this.model.store.get(ref);
    if (!t || t.cls !== "task") throw new XapiError("HANDLE_INVALID", "task", ref);
    if (t.record.status === "pending") this.model.store.put("task", ref, { ...t.record, status: "cancelling", allowed_operations: [] });
  }

  destroy(ref: string): void {
    const t = this.model.store.get(ref);
    if (!t || t.cls !== "task") throw new XapiError("HANDLE_INVALID", "task", ref);
    this.model.store.remove(ref);
    this.manual.delete(ref);
    const i = this.order.indexOf(ref);
    if (i >= 0) this.order.splice(i, 1);
  }
}
