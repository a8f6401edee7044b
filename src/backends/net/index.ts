/**
 * A vif for a DomU: the XenStore device as libxl creates it (tools/libs/light/libxl_nic.c) and Linux netback
 * advertises it (drivers/net/xen-netback/xenbus.c netback_probe), wired to the ring engine in net-back.ts.
 *
 * Back-end directory: frontend, frontend-id, online, state (BackendDevice), plus mac, bridge, handle, type
 * "vif", script, mtu, hotplug-status "connected" (no hotplug script runs here; libxl and netback wait for this
 * key before completing a state change), and rate "BYTES,USECS" when the vif is rate-limited (credit.ts). Front-end directory: backend, backend-id, state, handle, mac, mtu.
 *
 * Features offered before InitWait, and why:
 *  - feature-rx-copy 1, feature-rx-flip 0: copy mode only (netfront refuses a back-end without rx-copy);
 *  - feature-sg 1: multi-slot packets both ways (xenvif_count_requests / NETRXF_more_data are implemented);
 *  - feature-gso-tcpv4 1 and feature-gso-tcpv6 1 (unless the vif's `gso` is false): netfront's TCP sends up to
 *    64 KiB per ring packet with a GSO extra slot, and the back-end cuts it into MTU-sized segments (gso.ts) —
 *    the guest's per-packet work is done once per 64 KiB instead of once per 1448 bytes, which is what an
 *    interpreted guest CPU needs most. netfront turns TSO6 on only together with IPv6 checksum offload
 *    (NETIF_F_TSO6 needs NETIF_F_IPV6_CSUM), hence:
 *  - feature-ipv6-csum-offload 1: IPv6 TCP/UDP frames may come with NETTXF_csum_blank, as IPv4 ones always do
 *    (netfront always offloads IPv4 checksums); the back-end completes both (checksum.ts);
 *  - feature-multicast-control 0: every multicast frame is delivered, no filter;
 *  - feature-split-event-channels 1: separate tx/rx ports if the front-end wants them (event-channel-tx/-rx),
 *    otherwise one event-channel;
 *  - multi-queue-max-queues N (the vif's `queues`, default DEFAULT_MAX_QUEUES): netfront takes
 *    min(N, its max_queues parameter, default its online vCPUs) queues, each a tx/rx ring pair with its own
 *    event channel(s), written under queue-K/ when it takes more than one (flat keys for one).
 *
 * Connect (front-end Initialised/Connected — netfront goes straight to Connected): multi-queue-num-queues
 * (absent: 1; 0 or more than offered fails the device, as netback's connect), per queue tx-ring-ref,
 * rx-ring-ref, the port(s), request-rx-copy = 1 (required, as netback's read_xenbus_vif_flags), feature-sg (multi-slot rx).
 * feature-rx-notify is not needed (the rx queue asks for a notification with req_event); rx GSO is used with
 * the front-end's feature-gso-tcpv4 unless its feature-no-csum-offload is 1, and with its feature-gso-tcpv6 and
 * feature-ipv6-csum-offload (GSO packets are CHECKSUM_PARTIAL: NETRXF_csum_blank; gro.ts).
 */
import type { XenDomain } from "../../xen/domain.js";
import type { StoreApi } from "../../xenstore/index.js";
import { BackendDevice } from "../xenbus-backend.js";
import { NetBackend } from "./net-back.js";
import type { NetBack, NetQueueKeys } from "./types.js";
import type { NetBackState } from "./net-back-state.js";
import { ETH_HLEN, XEN_NETIF_MAX_TX_SIZE } from "./netif.js";

export type { NetBack, NetBackStats } from "./types.js";
export type { NetBackState, NetQueueState } from "./net-back-state.js";
export { completeChecksum } from "./checksum.js";

export interface NetVifConfig {
  /** Device id: vif<domid>.<devid>, the guest's eth<devid> (XenStore handle). */
  devid: number;
  /** The guest's MAC, "00:16:3e:xx:xx:xx" (Xen's OUI by convention). */
  mac: string;
  /** Largest IP packet accepted from the guest (frames up to mtu + 18 bytes: Ethernet header, one VLAN tag). */
  mtu: number;
  /** Bridge (switch) name, recorded in XenStore for the toolstack. */
  bridge: string;
  /**
   * Offer TCP segmentation offload (feature-gso-tcpv4 and -tcpv6) to the front-end; default true. false gives the
   * pre-GSO behaviour (one ring packet per wire frame), for tests and comparisons.
   */
  gso?: boolean;
  /**
   * Join TCP segments from the wire into GSO packets for a front-end that takes them (its feature-gso-tcpv4 /
   * -tcpv6; gro.ts); default true unless $XENO_NET_RX_GSO is "0" (for A/B). false delivers every frame as it came.
   */
  rxGso?: boolean;
  /** Transmit rate limit (xl.cfg vif rate=), written to the back-end's `rate` key as libxl does. */
  rate?: { bytesPerInterval: number; intervalUsecs: number };
  /** Queues offered (multi-queue-max-queues), 1..MAX_QUEUES; default $XENO_NET_QUEUES or DEFAULT_MAX_QUEUES. */
  queues?: number;
}

/**
 * Queues offered by default: a guest of up to 4 vCPUs gets a ring pair per vCPU (netfront's own default is one
 * queue per online vCPU, at most 8). Each queue costs the guest two ring pages and its rx buffers.
 */
export const DEFAULT_MAX_QUEUES = 4;
/** Most queues a vif may offer (Linux netback's max_queues is the dom0's CPU count; this bounds a config). */
export const MAX_QUEUES = 16;

/** The hotplug script libxl records (nothing runs it here). */
const VIF_SCRIPT = "/etc/xen/scripts/vif-bridge";

/** Normalises "0:16:3E:a:b:c"-style input to six lower-case hex pairs; throws RangeError when malformed. */
export function parseMac(mac: string): string {
  const parts = mac.split(":");
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new RangeError(`vif: bad MAC address "${mac}" (want xx:xx:xx:xx:xx:xx)`);
  }
  const bytes = parts.map((p) => parseInt(p, 16));
  if ((bytes[0]! & 1) !== 0) throw new RangeError(`vif: MAC address ${mac} is multicast`);
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * Creates vif `vif.devid` for domain `xen.domid` in `store` and serves it. `out` receives every Ethernet frame
 * the guest transmits, complete (checksums filled in); the array is a view of a buffer reused for the next
 * frame, valid only during the call: copy it to keep it. `out` runs inside the guest's notification
 * (synchronously, in the guest's thread); it may call receive() of any vif, this one included. `now` is the
 * rate limit's millisecond clock (tests pass a fake one); the host calls service() to resume a throttled vif. Throws only
 * for a bad configuration (RangeError); everything the guest does is handled without throwing.
 */
export function attachNetBack(xen: XenDomain, store: StoreApi, vif: NetVifConfig,
  out: (frame: Uint8Array) => void, log: (line: string) => void, now?: () => number, onRxBacklog?: (full: boolean) => void): NetBack {
  return makeNetBack(xen, store, vif, out, log, now, undefined, onRxBacklog);
}

/**
 * Rebuilds a saved vif (Firecracker's Persist::restore shape): `xen` already restored, the vif's event
 * channel(s) left detached (XenDomain.restore without endpoints for them); `store` holding the device's nodes.
 * The state is checked against `vif` (devid, MAC, MTU, GSO offer, rate) and the domain before anything is
 * attached; a refusal (StateError) leaves nothing behind.
 */
export function restoreNetBack(args: { xen: XenDomain; store: StoreApi; vif: NetVifConfig; out: (frame: Uint8Array) => void;
  log: (line: string) => void; now?: () => number; onRxBacklog?: (full: boolean) => void }, state: NetBackState): NetBack {
  return makeNetBack(args.xen, args.store, args.vif, args.out, args.log, args.now, state, args.onRxBacklog);
}

function makeNetBack(xen: XenDomain, store: StoreApi, vif: NetVifConfig, out: (frame: Uint8Array) => void,
  log: (line: string) => void, now: (() => number) | undefined, saved: NetBackState | undefined,
  onRxBacklog: ((full: boolean) => void) | undefined): NetBack {
  const mac = parseMac(vif.mac);
  if (!Number.isInteger(vif.devid) || vif.devid < 0 || vif.devid > 0xffff) throw new RangeError(`vif: bad devid ${vif.devid}`);
  if (!Number.isInteger(vif.mtu) || vif.mtu < 68 || vif.mtu > XEN_NETIF_MAX_TX_SIZE - ETH_HLEN) {
    throw new RangeError(`vif: MTU ${vif.mtu} outside 68..${XEN_NETIF_MAX_TX_SIZE - ETH_HLEN}`);
  }
  if (vif.rate !== undefined && !(Number.isSafeInteger(vif.rate.bytesPerInterval) && vif.rate.bytesPerInterval > 0 &&
    Number.isInteger(vif.rate.intervalUsecs) && vif.rate.intervalUsecs > 0 && vif.rate.intervalUsecs <= 0xffffffff)) {
    throw new RangeError(`vif: bad rate ${JSON.stringify(vif.rate)} (positive bytes per interval, interval 1..2^32-1 us)`);
  }
  const queues = vif.queues ?? envQueues();
  if (!Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) throw new RangeError(`vif: queues ${queues} outside 1..${MAX_QUEUES}`);
  const gso = vif.gso !== false;
  const rxGso = vif.rxGso ?? process.env.XENO_NET_RX_GSO !== "0";
  const back = new NetBackend({ mem: xen.mem, gnttab: xen.gnttab, evtchn: xen.evtchn, mtu: vif.mtu, out, log,
    gsoTcpv4: gso, gsoTcpv6: gso, rxGso, rxQueueBytes: rxQueueBytes(), rate: vif.rate, now, maxQueues: queues, onRxBacklog });
  const restored = saved === undefined ? null : back.checkSaved(saved, vif.devid, mac);
  const dev = new BackendDevice({
    store, domid: xen.domid, type: "vif", devid: vif.devid, log,
    backend: {
      mac, bridge: vif.bridge, handle: String(vif.devid), type: "vif", script: VIF_SCRIPT, mtu: String(vif.mtu),
      "hotplug-status": "connected",
      ...(vif.rate !== undefined ? { rate: `${vif.rate.bytesPerInterval},${vif.rate.intervalUsecs}` } : {}),
    },
    frontend: { handle: String(vif.devid), mac, mtu: String(vif.mtu) },
    features: {
      "feature-sg": "1", "feature-gso-tcpv4": gso ? "1" : "0", "feature-gso-tcpv6": gso ? "1" : "0", "feature-ipv6-csum-offload": "1",
      "feature-rx-copy": "1", "feature-rx-flip": "0", "feature-multicast-control": "0",
      "feature-split-event-channels": "1", "multi-queue-max-queues": String(queues),
    },
    connect: (d) => connectFrontend(back, d, queues),
    disconnect: () => back.disconnect(),
    existing: restored === null ? undefined : { connected: restored.connected },
  });
  back.attachDevice(dev, mac);
  if (restored !== null) back.loadSaved(restored);
  return back;
}

/** $XENO_NET_QUEUES (1..MAX_QUEUES, for A/B) or DEFAULT_MAX_QUEUES. */
function envQueues(): number {
  const v = process.env.XENO_NET_QUEUES;
  if (v === undefined || v === "") return DEFAULT_MAX_QUEUES;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_QUEUES) throw new RangeError(`XENO_NET_QUEUES=${v}: 1..${MAX_QUEUES}`);
  return n;
}

/** The rx queue's bound: $XENO_NET_RX_QUEUE_KIB (64..16384, for experiments) or netback's default. */
function rxQueueBytes(): number | undefined {
  const v = process.env.XENO_NET_RX_QUEUE_KIB;
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 64 || n > 16384) throw new RangeError(`XENO_NET_RX_QUEUE_KIB=${v}: 64..16384`);
  return n * 1024;
}

/** Reads the front-end's keys (netback's connect / connect_data_rings / read_xenbus_vif_flags). */
function connectFrontend(back: NetBackend, d: BackendDevice, maxQueues: number): string | null {
  // netfront writes multi-queue-num-queues when the back-end offers multi-queue (even for 1), and the queues'
  // keys flat for one queue, under queue-K/ for several (xennet_create_queues / write_queue_xenstore_keys).
  const nqRaw = d.front("multi-queue-num-queues");
  const nq = nqRaw === undefined ? 1 : d.frontInt("multi-queue-num-queues");
  if (nq < 1 || nq > maxQueues) return `front-end asked for ${nqRaw} queues (multi-queue-num-queues); 1..${maxQueues} offered`;
  const queues: NetQueueKeys[] = [];
  for (let k = 0; k < nq; k++) {
    const at = nq === 1 ? "" : `queue-${k}/`;
    const txRef = d.frontInt(`${at}tx-ring-ref`), rxRef = d.frontInt(`${at}rx-ring-ref`);
    if (txRef < 0 || rxRef < 0) return `reading ${d.frontPath}/${at}tx-ring-ref and rx-ring-ref`;
    let txPort = d.frontInt(`${at}event-channel-tx`), rxPort = d.frontInt(`${at}event-channel-rx`);
    if (txPort < 0 || rxPort < 0) {
      txPort = rxPort = d.frontInt(`${at}event-channel`);
      if (txPort < 0) return `reading ${d.frontPath}/${at}event-channel(-tx/rx)`;
    }
    queues.push({ txRef, rxRef, txPort, rxPort });
  }
  if (d.frontInt("request-rx-copy") !== 1) return "front-end does not request rx-copy (page flipping is not offered)";
  // Rx GSO packets are CHECKSUM_PARTIAL (NETRXF_csum_blank): IPv4 needs checksum offload not refused
  // (feature-no-csum-offload, default 0), IPv6 needs feature-ipv6-csum-offload (default 0), as Linux netback's
  // read_xenbus_vif_flags reads them.
  const csum4 = d.frontInt("feature-no-csum-offload") !== 1, csum6 = d.frontInt("feature-ipv6-csum-offload") === 1;
  return back.connect({ queues, sg: d.frontInt("feature-sg") === 1,
    gsoTcpv4: csum4 && d.frontInt("feature-gso-tcpv4") === 1, gsoTcpv6: csum6 && d.frontInt("feature-gso-tcpv6") === 1 });
}
