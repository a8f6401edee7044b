/**
 * What blkback offers in XenStore and what it reads back from the front-end at connect, as blkif.h specifies
 * and Linux's xen-blkback/xenbus.c (connect_ring, read_per_ring_refs) does it:
 *
 *   back-end writes           front-end answers (read at Initialised)
 *   feature-persistent 1      feature-persistent 1: both → persistent grants (persistent-grants.ts; offered
 *                             only with XENO_BLK_PERSISTENT=1, see below)
 *   max-ring-page-order N     ring-page-order n ≤ N, then ring-ref0 … ring-ref<2^n - 1>; absent: ring-ref (order 0)
 *   multi-queue-max-queues Q  multi-queue-num-queues q, 1 ≤ q ≤ Q; q > 1: queue-<i>/{ring-ref…, event-channel}
 *                             for i < q; absent or 1: the keys at the top of the front-end's directory
 *   (always)                  event-channel (per queue), protocol (absent: the native, arm-abi here)
 *
 * ring-page-order is one key for all queues (at the top). Anything beyond the offer is refused with Linux's
 * words for it (the device fails: xenbus error node, Closing). Keys are decimal u32 (xenbus_scanf "%u"); as
 * before, a single-page ring may also be named ring-ref0.
 *
 * Persistent grants are implemented but not offered by default: Xeno's grant "mapping" is a pin (one
 * compare-and-swap on the guest's entry), so keeping grants saves the back-end little, while blkfront with the
 * feature copies every byte between the request's pages and its persistent pool — guest CPU, which is what the
 * interpreter is short of: bench/io measured seq write 0.50x, seq read 0.44x, random 4 KiB reads 0.64x with
 * the feature on (docs/benchmarks.md, 2026-12-07). XENO_BLK_PERSISTENT=1 offers it.
 *
 * The offers are set for A/B measurements by environment variables read when a disk is attached:
 * XENO_BLK_PERSISTENT=1 (offer feature-persistent), XENO_BLK_MAX_RING_ORDER=0..4, XENO_BLK_MAX_QUEUES=1..
 */
import type { BackendDevice } from "../xenbus-backend.js";
import { BLKIF_MAX_RING_ORDER } from "./blkif.js";

/** Protocols whose requests have the 64-bit layout (io/protocols.h XEN_IO_PROTO_ABI_ARM / _X86_64). */
const PROTOCOLS_64 = new Set(["arm-abi", "x86_64-abi"]);
/** Most queues offered whatever the vCPU count (Linux's blkfront takes at most 4 by default anyway). */
export const BLK_MAX_QUEUES = 16;

/** What a disk offers its front-end. */
export interface BlkOffer {
  persistent: boolean;
  maxRingOrder: number;
  maxQueues: number;
}

/** One queue as the front-end set it up. */
export interface QueuePlan {
  /** Grant refs of the ring pages (2^order of them). */
  refs: number[];
  port: number;
}

export interface ConnectPlan {
  persistent: boolean;
  order: number;
  queues: QueuePlan[];
}

/** The default offer for a domain with `vcpus` vCPUs (one queue per vCPU), lowered by the A/B variables. */
export function blkOffer(vcpus: number, env: NodeJS.ProcessEnv = process.env): BlkOffer {
  const num = (name: string, lo: number, hi: number, dflt: number): number => {
    const v = env[name];
    if (v === undefined || v === "") return dflt;
    const n = Number(v);
    return Number.isInteger(n) && n >= lo && n <= hi ? n : dflt;
  };
  return {
    persistent: env.XENO_BLK_PERSISTENT === "1",
    maxRingOrder: num("XENO_BLK_MAX_RING_ORDER", 0, BLKIF_MAX_RING_ORDER, BLKIF_MAX_RING_ORDER),
    maxQueues: num("XENO_BLK_MAX_QUEUES", 1, BLK_MAX_QUEUES, Math.max(1, Math.min(BLK_MAX_QUEUES, vcpus))),
  };
}

/** The XenStore keys of an offer (written with the other features before InitWait). */
export function offerKeys(o: BlkOffer): Record<string, string> {
  const keys: Record<string, string> = {
    "max-ring-page-order": String(o.maxRingOrder),
    "multi-queue-max-queues": String(o.maxQueues),
  };
  if (o.persistent) keys["feature-persistent"] = "1";
  return keys;
}

/** Reads the front-end's keys against the offer: a plan, or the reason to fail the device. */
export function readFrontend(dev: BackendDevice, o: BlkOffer): ConnectPlan | string {
  const protocol = dev.front("protocol");
  if (protocol !== undefined && !PROTOCOLS_64.has(protocol)) return `unknown fe protocol ${protocol}`;
  // xenbus_read_unsigned(…, "feature-persistent", 0): anything but a number ≥ 1 is "no".
  const persistent = o.persistent && dev.frontInt("feature-persistent") >= 1;

  let nq = 1;
  if (dev.front("multi-queue-num-queues") !== undefined) {
    nq = dev.frontInt("multi-queue-num-queues");
    if (nq < 1 || nq > o.maxQueues) {
      return `Frontend requested ${dev.front("multi-queue-num-queues")} queues (multi-queue-num-queues), at most ${o.maxQueues} offered`;
    }
  }
  let order = 0;
  const hasOrder = dev.front("ring-page-order") !== undefined;
  if (hasOrder) {
    order = dev.frontInt("ring-page-order");
    if (order < 0 || order > o.maxRingOrder) {
      return `requested ring page order ${dev.front("ring-page-order")} exceeds max:${o.maxRingOrder}`;
    }
  }
  const queues: QueuePlan[] = [];
  for (let q = 0; q < nq; q++) {
    const dir = nq === 1 ? "" : `queue-${q}/`;
    const port = dev.frontInt(`${dir}event-channel`);
    if (port < 0) return `reading ${dir}event-channel: missing or malformed`;
    const refs: number[] = [];
    if (!hasOrder) {
      let ref = dev.frontInt(`${dir}ring-ref`);
      if (ref < 0) ref = dev.frontInt(`${dir}ring-ref0`);
      if (ref < 0) return `reading ${dir}ring-ref: missing or malformed`;
      refs.push(ref);
    } else {
      for (let i = 0; i < 1 << order; i++) {
        const ref = dev.frontInt(`${dir}ring-ref${i}`);
        if (ref < 0) return `reading ${dir}ring-ref${i}: missing or malformed`;
        refs.push(ref);
      }
    }
    queues.push({ refs, port });
  }
  return { persistent, order, queues };
}
