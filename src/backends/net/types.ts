/**
 * The vif's public face (NetBack, NetBackStats) and the ring engine's inputs (NetBackendOptions from
 * attachNetBack, NetFrontKeys from the front-end's XenStore directory); the engine is net-back.ts.
 */
import type { BackendDevice } from "../xenbus-backend.js";
import type { EventChannels } from "../../xen/event-channel.js";
import type { GrantTable } from "../../xen/grant-table.js";
import type { GuestMemory } from "../../xen/guest-memory.js";
import type { NetBackState } from "./net-back-state.js";

/** Counters of one vif (monotonic; never reset by reconnects). */
export interface NetBackStats {
  /** Frames the guest sent that reached `out`, and their bytes (a GSO packet counts as its segments). */
  txFrames: number;
  txBytes: number;
  /** Guest packets answered NETIF_RSP_ERROR (malformed, bad grant, over the MTU, checksum not completable). */
  txErrors: number;
  /** Well-formed frames lost on the host side (`out` threw). */
  txDropped: number;
  /** Frames delivered into the guest's posted buffers, and their bytes. */
  rxFrames: number;
  rxBytes: number;
  /** Frames receive() refused: vif not connected, too few posted buffers, size out of range. */
  rxDropped: number;
  /** Frames that hit a bad grant in a posted buffer (the guest got NETIF_RSP_ERROR for it). */
  rxErrors: number;
  /** Tx frames whose TCP/UDP checksum was completed (NETTXF_csum_blank). */
  csumCompleted: number;
  /** Times the vif was failed for a protocol violation. */
  fatal: number;
  /** Times transmission paused because the rate limit's credit ran out (vif rate=). */
  txThrottled: number;
  /** GSO super-packets from the guest (feature-gso-tcpv4/-tcpv6) cut into segments, and the segments made. */
  gsoPackets: number;
  gsoSegments: number;
  /** GSO packets delivered to the guest (TCP segments from the wire joined by gro.ts), and the segments in them. */
  rxGsoPackets: number;
  rxGsoSegments: number;
}

/** The vif as the host sees it (attachNetBack's result). */
export interface NetBack {
  readonly stats: NetBackStats;
  /** The front-end's rings and event channel(s) are attached. */
  readonly connected: boolean;
  /** Queues connected (0 when not connected). */
  readonly queues: number;
  /** The XenStore side (paths, state). */
  readonly device: BackendDevice;
  /**
   * Delivers one Ethernet frame (copied; `frame` may be reused after the call) into the guest's posted rx
   * buffers and notifies it, or queues a copy while the guest has too few buffers posted (up to 512 KiB).
   * Returns false (counted in stats) when the vif is not connected, the queue is full, the frame is shorter
   * than an Ethernet header or longer than the front-end can take (65535 bytes with feature-sg, one page
   * without). When the front-end takes rx GSO, TCP segments may be held to be joined with the ones that
   * follow (gro.ts): `more` says more frames of the same batch follow at once; the last frame of a batch
   * goes with `more` false (or flushRx() is called), which delivers whatever is held.
   */
  receive(frame: Uint8Array, more?: boolean): boolean;
  /** Delivers the packet receive() holds for joining, if any (end of a batch of frames). */
  flushRx(): void;
  /** Runs the tx ring without a notification (cheap when idle); the host may call it once per slice. */
  poll(): void;
  /**
   * Resumes transmission held back by the vif's rate limit when its window has ended. Returns milliseconds
   * until it must be called again (0: now), or Infinity when nothing waits: the host folds it into its sleep.
   */
  service(): number;
  /** Saved state (net-back-state.ts); refuses (StateError) while requests are in flight. */
  save(): NetBackState;
  /** Hot-unplug: disconnects and removes the device's XenStore directories. */
  close(): void;
}

/** One queue's rings and event channel(s), from the front-end's directory (or its queue-N/ with several). */
export interface NetQueueKeys {
  txRef: number;
  rxRef: number;
  txPort: number;
  /** Equal to txPort with a single event channel. */
  rxPort: number;
}

/** The front-end's connection parameters, read from XenStore by the caller. */
export interface NetFrontKeys {
  /** One entry per queue (multi-queue-num-queues of them; 1 without multi-queue). */
  queues: NetQueueKeys[];
  sg: boolean;
  /**
   * The front-end takes TCPv4 / TCPv6 GSO packets on its rx ring: its feature-gso-tcpv4 (and checksum offload
   * not refused with feature-no-csum-offload) / feature-gso-tcpv6 with feature-ipv6-csum-offload — GSO
   * packets are CHECKSUM_PARTIAL (NETRXF_csum_blank). Used only with `sg` (a GSO packet takes many slots).
   */
  gsoTcpv4: boolean;
  gsoTcpv6: boolean;
}

export interface NetBackendOptions {
  mem: GuestMemory;
  gnttab: GrantTable;
  evtchn: EventChannels;
  /** Largest IP packet accepted from the guest (frames: MTU + Ethernet header + one VLAN tag). */
  mtu: number;
  out(frame: Uint8Array): void;
  log(line: string): void;
  /** GSO types offered to the front-end (feature-gso-tcpv4 / feature-gso-tcpv6); segmented in gso.ts. */
  gsoTcpv4: boolean;
  gsoTcpv6: boolean;
  /** Join TCP segments into GSO packets for a front-end that takes them (default true; false for A/B). */
  rxGso?: boolean;
  /** Bytes of frames that may wait for one queue's rx buffers before more are dropped (default 512 KiB). */
  rxQueueBytes?: number;
  /** Queues offered (multi-queue-max-queues); default 1. */
  maxQueues?: number;
  /**
   * Backpressure for the host: called with true when frames pile up for the guest (a queue holds more than
   * half its bound: stop sending), with false once every queue is below an eighth again (send again), and with
   * the current state when the vif is attached or restored (the host may have stopped for an earlier copy).
   */
  onRxBacklog?(full: boolean): void;
  /** Transmit rate limit (xl.cfg vif rate=): bytes per interval; none when absent. */
  rate?: { bytesPerInterval: number; intervalUsecs: number };
  /** Clock in milliseconds for the rate limit (default performance.now). */
  now?: () => number;
}
