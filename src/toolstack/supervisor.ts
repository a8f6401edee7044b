/**
 * Applies the shutdown policies (policy.ts) to domains: on each "shutdown"/"crashed" event, and to every
 * listed domain when the link to the hypervisor comes up (domains that stopped while no xenod was running).
 * Each stopped domain (identified by domid, uuid and start time) is handled once per xenod; a domain being
 * handled is not handled again by a concurrent event or listing.
 */
import type { DomainInfo, Event, ResultMap } from "../hv/protocol.js";
import { decide, describe, type Decision, type HvCall } from "./policy.js";
import { ToolstackError, type RequestBody } from "./wire.js";

/** A destroyed domain's name may stay taken for a moment; how long a restart's create retries EEXIST_NAME. */
const NAME_RETRY_MS = 5_000;
const NAME_RETRY_STEP_MS = 200;
/** Handled-domain keys kept (a set that would otherwise grow for ever in a long-lived xenod). */
const MAX_REMEMBERED = 4096;

export interface HvRequester {
  request(body: RequestBody): Promise<unknown>;
}

export class Supervisor {
  private readonly busy = new Set<number>();
  private readonly handled = new Set<string>();
  /** Settles when nothing is being handled (tests and shutdown wait for it). */
  private inflight = new Set<Promise<void>>();

  constructor(
    private readonly hv: HvRequester,
    private readonly log: (line: string) => void,
    private readonly nowSec: () => number = () => Date.now() / 1000,
  ) {}

  /** A hypervisor event: a domain that entered "shutdown" or "crashed" is looked up and handled. */
  onEvent(e: Event): void {
    if (e.event !== "domain") return;
    if (e.state !== "shutdown" && e.state !== "crashed") return;
    this.track(this.list().then((doms) => {
      const info = doms.find((d) => d.domid === e.domid);
      if (info) return this.handle(info);
      return undefined;
    }));
  }

  /** Lists every domain and handles those already stopped. */
  resync(): Promise<void> {
    const p = this.list().then((doms) => Promise.all(doms.map((d) => this.handle(d)))).then(() => undefined);
    this.track(p);
    return p;
  }

  /** Resolves once every handling started so far has finished. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private track(p: Promise<unknown>): void {
    const q: Promise<void> = p.then(() => undefined, (e: unknown) => {
      const code = e instanceof ToolstackError ? e.code : "";
      // EHVDOWN: the link dropped; the resync after reconnecting catches up.
      if (code !== "EHVDOWN") this.log(`policy handling failed: ${(e as Error).message}`);
    }).finally(() => this.inflight.delete(q));
    this.inflight.add(q);
  }

  private async list(): Promise<DomainInfo[]> {
    return await this.hv.request({ op: "list" }) as ResultMap["list"];
  }

  private async handle(info: DomainInfo): Promise<void> {
    const d = decide(info, this.nowSec());
    if (!d) return;
    const key = `${info.domid}/${info.uuid}/${info.startTime}`;
    if (this.busy.has(info.domid) || this.handled.has(key)) return;
    this.busy.add(info.domid);
    try {
      const outcome = await this.carryOut(d);
      this.remember(key);
      this.log(describe(d, outcome));
    } finally {
      this.busy.delete(info.domid);
    }
  }

  private remember(key: string): void {
    if (this.handled.size >= MAX_REMEMBERED) {
      const first = this.handled.values().next();
      if (!first.done) this.handled.delete(first.value);
    }
    this.handled.add(key);
  }

  /** Makes the decision's calls in order; stops at the first failure. */
  private async carryOut(d: Decision): Promise<{ newDomid?: number; error?: string }> {
    let newDomid: number | undefined;
    for (const call of d.calls) {
      try {
        const r = await this.call(d, call);
        if (call.op === "create") newDomid = (r as ResultMap["create"]).domid;
      } catch (e) {
        if (e instanceof ToolstackError && e.code === "EHVDOWN") throw e; // not handled: the resync retries
        const code = e instanceof ToolstackError ? `${e.code}: ` : "";
        return { error: `${call.op}: ${code}${(e as Error).message}` };
      }
    }
    return { newDomid };
  }

  private async call(d: Decision, call: HvCall): Promise<unknown> {
    if (call.op === "create") {
      // Destroy may leave the name taken for a moment; retry for a while before giving up.
      const deadline = Date.now() + NAME_RETRY_MS;
      for (;;) {
        try {
          return await this.hv.request(call);
        } catch (e) {
          if (!(e instanceof ToolstackError && e.code === "EEXIST_NAME") || Date.now() >= deadline) throw e;
          await new Promise((r) => setTimeout(r, NAME_RETRY_STEP_MS));
        }
      }
    }
    if (call.op === "rename") {
      try {
        return await this.hv.request(call);
      } catch (e) {
        // Two rename-restarts within the same minute: xl's suffix is taken; add the domid.
        if (!(e instanceof ToolstackError && e.code === "EEXIST_NAME")) throw e;
        const name = `${call.name}-${call.domid}`;
        d.renamedTo = name;
        return await this.hv.request({ ...call, name });
      }
    }
    return await this.hv.request(call);
  }
}
