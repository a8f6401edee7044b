/**
 * What the API needs from the toolstack daemon that hosts it: its requests to the hypervisor (src/hv/protocol.ts,
 * the same ones the `xeno` CLI sends through xenod) and the hypervisor's events. xenod (src/toolstack/daemon.ts)
 * satisfies it; tests may give a fake. The API sits below the toolstack in the layer table for this reason: the
 * daemon composes it, and the API knows the hypervisor only through this interface and the protocol's types.
 */
import type { Duplex } from "node:stream";
import type { Event, Request } from "../hv/protocol.js";

/** A request without its id. */
export type HvCall = Request extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export interface ApiBackend {
  /** Rejects with an Error whose `code` is the protocol's (ENOENT_DOMAIN, ESTATE, EHVDOWN, …). */
  request(body: HvCall): Promise<unknown>;
  /** Calls `listener` for every hypervisor event from now on. */
  onEvent(listener: (e: Event) => void): void;
  /**
   * The domain's console as a byte stream (guest output in, keystrokes out; `replay`: its recent output
   * first), as `xeno console` gets it. Rejects with the protocol's error code (ENOENT_DOMAIN, EHVDOWN, …).
   * Absent: the web console's terminal is not offered.
   */
  openConsole?(domid: number, replay: boolean): Promise<Duplex>;
}
