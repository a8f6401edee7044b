/**
 * What the xl subcommands need of the toolstack daemon's client (src/toolstack/client.ts XenodClient, which
 * satisfies it), and connecting to it. The subcommands take an XlClient so that tests can hand them a fake.
 */
import type { Duplex } from "node:stream";
import type { DomainInfo, Event, HostInfo, Op, Request, ResultMap } from "../../hv/protocol.js";
import { connectXenod } from "../../toolstack/client.js";
import { domainTable, type Dom } from "./domains.js";
import { describeFailure } from "./errors.js";

/** The arguments of one op (the request minus `id` and `op`). */
export type OpArgs<O extends Op> = Omit<Extract<Request, { op: O }>, "id" | "op">;
/** Optional for ops that take no arguments (list, info). */
type ArgsParam<O extends Op> = Record<string, never> extends OpArgs<O> ? [args?: OpArgs<O>] : [args: OpArgs<O>];

export interface XlClient {
  /** Resolves with the op's result; rejects with an Error whose `code` is the protocol's ErrorCode (or the client's). */
  request<O extends Op>(op: O, ...args: ArgsParam<O>): Promise<ResultMap[O]>;
  /** Events from now on (resolves once the daemon confirmed the subscription). */
  subscribe(onEvent: (e: Event) => void): Promise<void>;
  /** The domain's console as a byte stream (guest output readable, writes go to the guest). */
  openConsole(domid: number, opts?: { replay?: boolean }): Promise<Duplex>;
  close(): void;
  /** True once the connection has closed. */
  readonly closed?: boolean;
}

/** Connects to xenod in $XENO_RUN_DIR (default /run/xeno), starting it (and so the hypervisor) when none answers. */
export async function connectXl(): Promise<XlClient> {
  try {
    return await connectXenod({ autostart: true });
  } catch (e) {
    throw describeFailure(e, "reach the toolstack daemon (xenod)");
  }
}

/** One request, with a failure turned into an XlError saying what could not be done. */
export async function ask<O extends Op>(c: XlClient, what: string, op: O, ...args: ArgsParam<O>): Promise<ResultMap[O]> {
  try {
    return await c.request(op, ...args);
  } catch (e) {
    throw describeFailure(e, what);
  }
}

/** The domain table (Domain-0 first; made up from `info` when the hypervisor does not list it). */
export async function fetchTable(c: XlClient, nowS = Date.now() / 1000): Promise<{ table: Dom[]; host: HostInfo; list: DomainInfo[] }> {
  const [list, host] = await Promise.all([ask(c, "list the domains", "list"), ask(c, "read the host information", "info")]);
  return { table: domainTable(list, host, nowS), host, list };
}
