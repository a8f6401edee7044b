/**
 * Handing a station over between switch ports without losing frames: what a domain's vifs do around the
 * stop-and-copy of a live migration (src/hv/hypervisor.ts migrateSend).
 *
 * Why: frames for the guest that reach the source's port after its final snapshot are lost — the destination
 * restores the snapshot and never sees them — and the source keeps the guest's MAC until the destination's
 * announce (a RARP, save-live.ts announceFrame) moves it, 100–300 ms later. A real TCP peer retransmits such a
 * loss; passt (0.0~git20230309) often does not: its fast retransmit needs a duplicate ACK whose window equals
 * the one it stored, which its 1 % hysteresis in tcp_clamp_window leaves stale, and its 2 s ACK timeout is
 * re-armed by every new segment it sends, so a connection with steady host → guest traffic never gets the lost
 * segment again (seen in test/hv/live-migrate: the guest acknowledging one sequence number for a minute while
 * passt sent ever newer data). So the switch holds the guest's frames instead of delivering them to the port
 * that is about to stop:
 *
 *   source vif → switch   HOLD(mac)     the switch queues frames for `mac` (bounded) and answers ACK on that
 *                                       port, behind every frame it had already sent there; the source waits for
 *                                       the ACK (so those frames are in the guest before its snapshot), then pauses
 *   dest vif   → switch   any frame from `mac` (the RARP announce): `mac` moves there, the queue follows it
 *   source vif → switch   RELEASE(mac)  the migration failed and the source runs on: the queue goes back to it
 *
 * A hold ends by itself after HOLD_MS (the queue then goes wherever `mac` is learned, or is dropped). A HOLD is
 * honoured only from the port `mac` is learned on, so a station can hold nothing but its own frames.
 *
 * Wire format (Xeno's own, consumed by the switch, never forwarded): an Ethernet frame to ff:ff:ff:ff:ff:ff
 * from `mac`, EtherType 0x88b5 (IEEE 802 "Local Experimental EtherType 1", IEEE Std 802-2014 9.2.4), payload
 * the 8 bytes "XenoHand" and one op byte, padded to 60 bytes.
 */
import { ETH_HEADER_LEN, writeMac } from "./ethernet.js";

export const ETHERTYPE_LOCAL_EXPERIMENTAL = 0x88b5;
export const HANDOVER_HOLD = 1, HANDOVER_RELEASE = 2, HANDOVER_ACK = 3;
const MAGIC = [0x58, 0x65, 0x6e, 0x6f, 0x48, 0x61, 0x6e, 0x64]; // "XenoHand"
const FRAME_LEN = 60;

/** A handover control frame from `mac` ("xx:xx:…" or a number) with `op`. */
export function handoverFrame(mac: number, op: number): Uint8Array {
  const f = new Uint8Array(FRAME_LEN);
  f.fill(0xff, 0, 6);
  writeMac(f, 6, mac);
  f[12] = ETHERTYPE_LOCAL_EXPERIMENTAL >>> 8; f[13] = ETHERTYPE_LOCAL_EXPERIMENTAL & 0xff;
  f.set(MAGIC, ETH_HEADER_LEN);
  f[ETH_HEADER_LEN + MAGIC.length] = op;
  return f;
}

/** The op of a handover frame (HANDOVER_*), 0 for any other frame (one compare on the hot path). */
export function handoverOp(f: Uint8Array): number {
  if (f.length < ETH_HEADER_LEN + MAGIC.length + 1 || f[12] !== 0x88 || f[13] !== 0xb5) return 0;
  for (let i = 0; i < MAGIC.length; i++) if (f[ETH_HEADER_LEN + i] !== MAGIC[i]) return 0;
  const op = f[ETH_HEADER_LEN + MAGIC.length]!;
  return op >= HANDOVER_HOLD && op <= HANDOVER_ACK ? op : 0;
}
