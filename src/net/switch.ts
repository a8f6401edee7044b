/**
 * A learning L2 switch (IEEE 802.1D transparent bridging without spanning tree), pure and unit-testable: ports
 * are objects with send(frame); the caller feeds ingress frames with receive(port, frame); time comes from an
 * injected clock. The bridge daemon (bridge-daemon.ts) puts one port per connected vif and one for the passt
 * uplink on it.
 *
 * Forwarding (802.1D 7.7 / 802.1Q 8.8 filtering database, simplified to one VLAN):
 * - the source MAC of every valid frame is learned against its ingress port (a MAC seen on another port moves);
 * - a unicast destination found in the table goes out of that port only; if that port is the ingress port the
 *   frame is filtered (never hairpinned back);
 * - unknown unicast, broadcast and multicast are flooded to every port except the ingress port;
 * - entries not refreshed for `ageingMs` (default 300 s, 802.1D's recommended ageing time) are forgotten.
 *
 * Dropped at ingress (counted in rxDropped): frames shorter than the 14-byte header or longer than
 * MAX_FRAME; frames whose source is a group address or 00:00:00:00:00:00 (not a station, as Linux's bridge
 * br_handle_frame checks with is_valid_ether_addr); frames to the 802.1D reserved groups 01:80:c2:00:00:0X.
 *
 * Memory is bounded whatever the guests send: at most `maxPorts` ports; at most `maxMacs` table entries in all
 * and `maxMacsPerPort` per port. A guest spraying source MACs fills its own quota and stops being learned (its
 * frames still flow, and frames to its unlearned MACs are flooded as unknown unicast), while the other ports'
 * stations stay learned: one port cannot evict another's entries. Expired entries are swept lazily on lookup,
 * by sweep(), and (rate-limited) when a quota is hit.
 *
 * Static entries (addStatic; 802.1Q 8.8.1 static filtering entries) never age or move: the daemon pins passt's
 * MAC to the uplink port, and a frame from another port claiming a static MAC as its source is dropped as
 * spoofed, so a guest cannot pull the gateway's traffic to itself.
 *
 * Frames are immutable to everyone: the switch passes the same object to every port of a flood, and ports
 * that queue a frame may keep the reference.
 */

import { NetError } from "./errors.js";
import { MAX_FRAME, MIN_FRAME, formatMac, isGroupMacAt, isReservedGroupMacAt, macAt } from "./ethernet.js";
import { HANDOVER_ACK, HANDOVER_HOLD, HANDOVER_RELEASE, handoverFrame, handoverOp } from "./handover.js";

/** One attachment to the switch: a vif's socket, the passt uplink, a test's array. */
export interface SwitchPort {
  /** For logs and stats. */
  readonly name: string;
  /**
   * Deliver a frame out of this port. Return false if the port dropped it (backpressure, filter, down); the
   * switch counts it in txDropped. A throw is caught and counted the same way, so one broken port cannot stop
   * a flood to the others. `from`: the port the frame came in on (undefined for the switch's own frames), for
   * ports that share their egress fairly between sources (stream-port.ts).
   */
  send(frame: Uint8Array, from?: SwitchPort): boolean | void;
}

export interface PortStats {
  rxFrames: number;
  rxBytes: number;
  /** Ingress frames dropped as invalid (length, source MAC, reserved group destination). */
  rxDropped: number;
  txFrames: number;
  txBytes: number;
  /** Frames this port refused (send returned false or threw). */
  txDropped: number;
  /** Table entries currently pointing at this port. */
  macs: number;
}

export interface SwitchStats {
  ports: number;
  macs: number;
  /** Frames flooded (unknown unicast, broadcast, multicast). */
  floods: number;
  /** Frames filtered because their destination sits on the ingress port. */
  filtered: number;
  /** Source MACs not learned because the table or the port's quota was full. */
  learnRefused: number;
  /** Frames dropped because their source is a static entry of another port. */
  spoofed: number;
  /** Learned MACs that moved to another port. */
  moves: number;
  /** Handover (handover.ts): holds begun, frames queued by them, frames a hold could not keep (bounds, expiry). */
  holds: number;
  held: number;
  heldDropped: number;
}

export interface SwitchOptions {
  /** Default 64. */
  maxPorts?: number;
  /** Default 4096. */
  maxMacs?: number;
  /** Default 64: a vif has one MAC; a guest bridging its own VMs a few more. */
  maxMacsPerPort?: number;
  /** Default 300 000 ms (802.1D-2004 table 7-5, recommended ageing time). */
  ageingMs?: number;
  /** Milliseconds, monotonic; default performance.now. */
  now?: () => number;
  /** How long a handover hold lasts at most (default HOLD_MS). */
  holdMs?: number;
}

/** A handover hold's longest life: a paused migration of a large domain takes seconds to restore. */
export const HOLD_MS = 30_000;
/** Bytes one hold queues at most, and all holds together (beyond: dropped, counted in heldDropped). */
export const HOLD_BYTES = 1 << 20, HOLD_TOTAL_BYTES = 4 << 20;

/** A station being handed over: frames for it wait here (handover.ts). */
interface Hold {
  /** The port that asked (where RELEASE must come from). */
  readonly from: PortState;
  readonly since: number;
  readonly frames: Uint8Array[];
  bytes: number;
}

/** What receive() did with a frame (for tests and tracing). */
export type ForwardResult = "forwarded" | "flooded" | "filtered" | "invalid" | "held" | "control";

interface PortState {
  readonly port: SwitchPort;
  readonly stats: PortStats;
}

interface MacEntry {
  state: PortState;
  seen: number;
  /** Static: never ages, never moves (seen is +Infinity). */
  readonly fixed: boolean;
}

/** Minimum spacing of the sweeps a full table or quota triggers, so a MAC spray cannot make every frame O(n). */
const FULL_SWEEP_INTERVAL_MS = 1000;

export class LearningSwitch {
  readonly maxPorts: number;
  readonly maxMacs: number;
  readonly maxMacsPerPort: number;
  readonly ageingMs: number;
  private readonly now: () => number;
  private readonly ports = new Map<SwitchPort, PortState>();
  private readonly table = new Map<number, MacEntry>();
  private readonly totals = { floods: 0, filtered: 0, learnRefused: 0, moves: 0, spoofed: 0, holds: 0, held: 0, heldDropped: 0 };
  private lastFullSweep = -Infinity;
  private readonly holdMs: number;
  private readonly holds = new Map<number, Hold>();
  private heldBytes = 0;

  constructor(opts: SwitchOptions = {}) {
    this.maxPorts = opts.maxPorts ?? 64;
    this.maxMacs = opts.maxMacs ?? 4096;
    this.maxMacsPerPort = opts.maxMacsPerPort ?? 64;
    this.ageingMs = opts.ageingMs ?? 300_000;
    this.now = opts.now ?? (() => performance.now());
    this.holdMs = opts.holdMs ?? HOLD_MS;
  }

  /** Attach a port; throws NET_PORT_LIMIT when full. Adding a port twice is a no-op. */
  addPort(port: SwitchPort): void {
    if (this.ports.has(port)) return;
    if (this.ports.size >= this.maxPorts) {
      throw new NetError("NET_PORT_LIMIT", `switch is full (${this.maxPorts} ports); '${port.name}' refused`);
    }
    this.ports.set(port, {
      port, stats: { rxFrames: 0, rxBytes: 0, rxDropped: 0, txFrames: 0, txBytes: 0, txDropped: 0, macs: 0 },
    });
  }

  /** Detach a port and forget every MAC learned on it. Returns its final stats, or undefined if unknown. */
  removePort(port: SwitchPort): PortStats | undefined {
    const st = this.ports.get(port);
    if (st === undefined) return undefined;
    this.ports.delete(port);
    for (const [mac, e] of this.table) if (e.state === st) this.table.delete(mac);
    st.stats.macs = 0;
    return st.stats;
  }

  get portCount(): number {
    return this.ports.size;
  }

  /** Ingress: a frame arrived on `port`. Never throws (an unknown port's frame is dropped as invalid). */
  receive(port: SwitchPort, frame: Uint8Array): ForwardResult {
    const st = this.ports.get(port);
    if (st === undefined) return "invalid";
    const len = frame.length;
    st.stats.rxFrames++;
    st.stats.rxBytes += len;
    if (len < MIN_FRAME || len > MAX_FRAME || isGroupMacAt(frame, 6) || isReservedGroupMacAt(frame, 0)) {
      st.stats.rxDropped++;
      return "invalid";
    }
    const src = macAt(frame, 6);
    if (src === 0) {
      st.stats.rxDropped++;
      return "invalid";
    }
    const now = this.now();
    const op = handoverOp(frame);
    if (op !== 0) return this.handover(st, src, op, now);
    if (!this.learn(src, st, now)) {
      st.stats.rxDropped++;
      this.totals.spoofed++;
      return "invalid";
    }

    if (!isGroupMacAt(frame, 0)) {
      const dst = macAt(frame, 0);
      if (this.holds.size > 0 && this.holdFrame(dst, frame, now)) return "held";
      const e = this.table.get(dst);
      if (e !== undefined) {
        if (now - e.seen <= this.ageingMs) {
          if (e.state === st) {
            this.totals.filtered++;
            return "filtered";
          }
          this.deliver(e.state, frame, st);
          return "forwarded";
        }
        this.forget(dst, e);
      }
    }
    this.totals.floods++;
    for (const out of this.ports.values()) if (out !== st) this.deliver(out, frame, st);
    return "flooded";
  }

  /** Learn `mac` on `st`; false if the MAC is static on another port (spoofed source). */
  private learn(mac: number, st: PortState, now: number): boolean {
    const e = this.table.get(mac);
    if (e !== undefined) {
      if (e.state === st) {
        if (!e.fixed) e.seen = now;
        return true;
      }
      if (e.fixed) return false;
      // Moved (guest migrated, or spoofing): relearn it on the new port, within that port's quota.
      this.forget(mac, e);
      this.totals.moves++;
    }
    if ((this.table.size >= this.maxMacs || st.stats.macs >= this.maxMacsPerPort) && !this.sweepWhenFull(now, st)) {
      this.totals.learnRefused++;
      return true;
    }
    this.table.set(mac, { state: st, seen: now, fixed: false });
    st.stats.macs++;
    // A held station showing up on another port (the migration's destination announcing it): its frames follow.
    if (this.holds.size > 0) {
      const h = this.holds.get(mac);
      if (h !== undefined && h.from !== st) this.endHold(mac, h, st);
    }
    return true;
  }

  /**
   * A handover control frame from `src` on `st` (handover.ts): HOLD (only from the port `src` is learned on)
   * starts or renews a hold and answers ACK there; RELEASE from the holding port gives the queue back to it.
   * ACK frames are the switch's own and ignored when they come in. Never forwarded.
   */
  private handover(st: PortState, src: number, op: number, now: number): ForwardResult {
    const e = this.table.get(src);
    const owns = e !== undefined && !e.fixed && e.state === st && now - e.seen <= this.ageingMs;
    if (op === HANDOVER_HOLD && owns) {
      e!.seen = now;
      const old = this.holds.get(src);
      if (old !== undefined) this.endHold(src, old, st); // renewed: what the old one queued goes out first
      this.holds.set(src, { from: st, since: now, frames: [], bytes: 0 });
      this.totals.holds++;
      this.deliver(st, handoverFrame(src, HANDOVER_ACK));
    } else if (op === HANDOVER_RELEASE) {
      const h = this.holds.get(src);
      if (h !== undefined && h.from === st) this.endHold(src, h, st);
    } else if (op !== HANDOVER_ACK) {
      st.stats.rxDropped++; // a HOLD for a station not learned on this port
    }
    return "control";
  }

  /** Queues a frame for a held station; false when `dst` is not held (or its hold just expired). */
  private holdFrame(dst: number, frame: Uint8Array, now: number): boolean {
    const h = this.holds.get(dst);
    if (h === undefined) return false;
    if (now - h.since > this.holdMs) {
      const e = this.table.get(dst);
      this.endHold(dst, h, e !== undefined && now - e.seen <= this.ageingMs ? e.state : undefined);
      return false;
    }
    if (h.bytes + frame.length > HOLD_BYTES || this.heldBytes + frame.length > HOLD_TOTAL_BYTES) {
      this.totals.heldDropped++;
      return true;
    }
    h.frames.push(frame); // frames are immutable to everyone (see the top): the reference may be kept
    h.bytes += frame.length;
    this.heldBytes += frame.length;
    this.totals.held++;
    return true;
  }

  /** Ends a hold: its frames go out of `to` in order (dropped, counted, when there is no such port). */
  private endHold(mac: number, h: Hold, to: PortState | undefined): void {
    this.holds.delete(mac);
    this.heldBytes -= h.bytes;
    const live = to !== undefined && this.ports.get(to.port) === to;
    for (const f of h.frames) {
      if (live) this.deliver(to, f);
      else this.totals.heldDropped++;
    }
  }

  /** Pin `mac` to `port` (attached) for good; replaces a learned entry. Static entries count in no quota. */
  addStatic(mac: number, port: SwitchPort): void {
    const st = this.ports.get(port);
    if (st === undefined) throw new NetError("NET_BAD_OPTION", `static MAC ${formatMac(mac)}: port '${port.name}' is not attached`);
    const e = this.table.get(mac);
    if (e !== undefined && !e.fixed) this.forget(mac, e);
    this.table.set(mac, { state: st, seen: Infinity, fixed: true });
  }

  /** A quota is hit: sweep expired entries (at most once a second) and say whether there is room now. */
  private sweepWhenFull(now: number, st: PortState): boolean {
    if (now - this.lastFullSweep < FULL_SWEEP_INTERVAL_MS) return false;
    this.lastFullSweep = now;
    this.sweep();
    return this.table.size < this.maxMacs && st.stats.macs < this.maxMacsPerPort;
  }

  private forget(mac: number, e: MacEntry): void {
    this.table.delete(mac);
    if (!e.fixed) e.state.stats.macs--;
  }

  private deliver(out: PortState, frame: Uint8Array, from?: PortState): void {
    let ok: boolean | void;
    try {
      ok = out.port.send(frame, from?.port);
    } catch {
      ok = false;
    }
    if (ok === false) {
      out.stats.txDropped++;
    } else {
      out.stats.txFrames++;
      out.stats.txBytes += frame.length;
    }
  }

  /** Forget entries older than the ageing time; returns how many. The daemon calls it periodically. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const [mac, h] of this.holds) {
      if (now - h.since <= this.holdMs) continue;
      const e = this.table.get(mac);
      this.endHold(mac, h, e !== undefined && now - e.seen <= this.ageingMs ? e.state : undefined);
    }
    for (const [mac, e] of this.table) {
      if (now - e.seen > this.ageingMs) {
        this.forget(mac, e);
        n++;
      }
    }
    return n;
  }

  /** The port a MAC is currently learned on (expired entries count as absent). */
  lookup(mac: number): SwitchPort | undefined {
    const e = this.table.get(mac);
    if (e === undefined || this.now() - e.seen > this.ageingMs) return undefined;
    return e.state.port;
  }

  /** A copy of the port's counters, or undefined if the port is not attached. */
  portStats(port: SwitchPort): PortStats | undefined {
    const st = this.ports.get(port);
    return st === undefined ? undefined : { ...st.stats };
  }

  stats(): SwitchStats {
    return { ports: this.ports.size, macs: this.table.size, ...this.totals };
  }

  /** The MAC table for diagnostics. */
  macTable(): Array<{ mac: string; port: string; ageMs: number; static: boolean }> {
    const now = this.now();
    return [...this.table].map(([mac, e]) => ({
      mac: formatMac(mac), port: e.state.port.name, ageMs: e.fixed ? 0 : now - e.seen, static: e.fixed,
    }));
  }
}
