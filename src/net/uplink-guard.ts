/**
 * What the switch may send to passt. passt was written for one VM on a point-to-point link, and two of its
 * habits break a shared segment (both read in passt 0.0~git20230309, tap.c / arp.c, and seen on the wire):
 *
 * - it answers an ARP request for *any* address except the guest's own with its own MAC (arp.c), so if guest A
 *   ARPs for guest B and the broadcast reaches passt, passt's (fast, native) reply races B's and usually wins:
 *   A's traffic for B then goes to passt and is lost;
 * - it takes the guest's MAC and IPv4 address from the source of the *last* frame it received
 *   (tap_handler_passt updates mac_guest, tap4_handler addr4_seen), and sends everything host-side (replies,
 *   forwarded port connections) to that one MAC and address, so frames from a second guest hijack the first
 *   guest's connections.
 *
 * So the guard passes only frames that passt must see, from one guest, the uplink's *owner*:
 * - unicast frames addressed to passt's MAC (traffic through the gateway: to the host, or beyond it);
 * - ARP requests for the gateway (or another configured passt address such as --dns-forward's);
 * - DHCP requests (broadcast UDP to port 67), which passt answers with its one guest address.
 * Other broadcasts and all multicast are dropped: they are the guests' business, not passt's.
 *
 * The owner is the MAC configured with `ownerMac`, or else the first station whose frame passes, for as long
 * as the switch still has that MAC learned (it ages out after the switch's ageing time, or goes with its
 * port). Frames from other stations are dropped, so they neither get the passt address by DHCP nor steal the
 * owner's traffic; they reach the host only through the owner (routing, or not at all).
 */

import {
  ARP_OP_REQUEST, ETHERTYPE_ARP, MAC_BROADCAST, etherTypeOf, formatMac, isGroupMacAt, ipv4UdpDestPort, macAt,
  parseArp,
} from "./ethernet.js";

/** DHCP server port (RFC 2131 4.1). */
const DHCP_SERVER_PORT = 67;

export interface UplinkGuardOptions {
  /** passt's own MAC (its -M). */
  passtMac: number;
  /** IPv4 addresses passt should answer ARP for: the gateway, and the DNS forwarding address if any. */
  arpTargets: readonly number[];
  /** Pin the owner instead of first come, first served. */
  ownerMac?: number;
  /** Whether a MAC is still a live station on the switch (LearningSwitch.lookup !== undefined). */
  isPresent(mac: number): boolean;
  /** Told when the owner changes (for the log). */
  onOwner?(mac: number): void;
}

export interface UplinkGuardStats {
  passed: number;
  /** From a station other than the owner. */
  notOwner: number;
  /** Broadcast or multicast passt has no business with (ARP for other addresses, mDNS, NDP…). */
  notForUplink: number;
}

export class UplinkGuard {
  private owner: number | undefined;
  readonly stats: UplinkGuardStats = { passed: 0, notOwner: 0, notForUplink: 0 };

  constructor(private readonly opts: UplinkGuardOptions) {
    this.owner = opts.ownerMac;
  }

  /** The station passt currently serves, if any. */
  get ownerMac(): number | undefined {
    return this.owner;
  }

  /** Whether `frame` (already validated by the switch) may go to passt; claims ownership if it is free. */
  allow(frame: Uint8Array): boolean {
    if (!this.forUplink(frame)) {
      this.stats.notForUplink++;
      return false;
    }
    const src = macAt(frame, 6);
    if (this.owner !== src) {
      const pinned = this.opts.ownerMac !== undefined;
      if (pinned || (this.owner !== undefined && this.opts.isPresent(this.owner))) {
        this.stats.notOwner++;
        return false;
      }
      this.owner = src;
      this.opts.onOwner?.(src);
    }
    this.stats.passed++;
    return true;
  }

  private forUplink(frame: Uint8Array): boolean {
    if (!isGroupMacAt(frame, 0)) return macAt(frame, 0) === this.opts.passtMac;
    if (macAt(frame, 0) !== MAC_BROADCAST) return false;
    if (etherTypeOf(frame) === ETHERTYPE_ARP) {
      const arp = parseArp(frame);
      return arp !== undefined && arp.op === ARP_OP_REQUEST && this.opts.arpTargets.includes(arp.targetIp);
    }
    return ipv4UdpDestPort(frame) === DHCP_SERVER_PORT;
  }

  describeOwner(): string {
    return this.owner === undefined ? "none" : formatMac(this.owner);
  }
}
