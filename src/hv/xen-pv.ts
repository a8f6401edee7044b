/**
 * The dom0 services a Xen DomU on this board talks to, wired at machine creation: XenStore on the guest's
 * xenbus ring (the domain's nodes written and the domain introduced first, as libxl does before unpausing) and
 * the PV console back-end on hvc0's page. Both attach to the guest's pre-allocated unbound ports as host
 * endpoints of domain 0 (src/xen/event-channel.ts hostBind).
 */
import type { XenDomain } from "../xen/domain.js";
import { XenStore, Connection, type StoreApi } from "../xenstore/index.js";
import { XenbusRing, XENSTORE_ERROR_PROTO, type XenbusPeer, type XenbusRingState } from "../xen/xenbus-ring.js";
import { introduceDomain } from "../xen/xenstore-domain.js";
import { ECS_FREE, NR_EVTCHN_2L, type HostEndpoint } from "../xen/event-channel.js";
import type { XenDomainState } from "../xen/domain.js";
import { ConsoleBack, type ConsoleBackState } from "../backends/console/index.js";
import { attachBlkBack, BlkBack, type BlkBackState, type BlkDiskConfig } from "../backends/blk/index.js";
import { attachNetBack, restoreNetBack, type NetBack, type NetBackState, type NetVifConfig } from "../backends/net/index.js";
import { StateError, stateVersion } from "../common/state.js";

/** A vif and where its guest's transmitted frames go (a view valid during the call only). */
export interface VifAttach {
  config: NetVifConfig;
  out(frame: Uint8Array): void;
  /** netback's backpressure (NetBackendOptions.onRxBacklog): stop/resume sending this vif frames. */
  flow?(full: boolean): void;
}

export interface XenPvOptions {
  /** The store (default: a fresh XenStore in this thread). */
  store?: StoreApi;
  /**
   * When the store lives in another thread (src/hv/store-link.ts): the guest's xenbus ring talks to this peer
   * instead of a Connection here. Its `send` callback gives the peer the ring's output function.
   */
  xenbusPeer?: (domid: number) => XenbusPeer;
  /** The guest's kernel command line (decides which console's bytes the Machine shows, see consoleRoles). */
  cmdline: string;
  name: string;
  vcpus: number;
  /** Console output sink (the Machine's, shared with the PL011). */
  consoleOut(bytes: Uint8Array): void;
  /** Virtual block devices (blkback), in config order. */
  disks?: readonly BlkDiskConfig[];
  /** Virtual network interfaces (netback), in config order (the guest's eth0, eth1, …). */
  vifs?: readonly VifAttach[];
}

export interface XenPv {
  store: StoreApi;
  xenbus: XenbusRing;
  /** The guest's store connection when the store is in this thread (else null: see xenbusPeer). */
  connection: Connection | null;
  peer: XenbusPeer;
  /** null when the domain has no PV console page. */
  console: ConsoleBack | null;
  /** Console input goes to hvc0 (once the guest has written to it) rather than the UART. */
  hvcInput: boolean;
  blk: BlkBack[];
  net: NetBack[];
}

/**
 * Which of the guest's consoles the Machine's single console stream carries, from its command line as Linux
 * reads it (the last `console=` is /dev/console; arguments after "--" go to init).
 *
 * Linux on Xen/Arm always makes hvc0 a preferred console (arch/arm/xen/enlighten.c xen_early_init runs before
 * `console=` is parsed, so its "!console_set_on_cmdline" test always passes): with `console=ttyAMA0` alone,
 * every kernel line is printed on both the PL011 and hvc0. Real Xen keeps them apart (`xl console -t serial`
 * vs `-t pv`); here they would interleave as duplicates, so hvc0's bytes are shown only when the command line
 * names an hvc console or names none (then hvc0 is the console). Input goes to hvc0 when it is /dev/console.
 */
export function consoleRoles(cmdline: string): { hvcOutput: boolean; hvcInput: boolean } {
  const words = cmdline.split(/\s+/);
  const end = words.indexOf("--");
  const consoles = (end < 0 ? words : words.slice(0, end)).filter((w) => w.startsWith("console=")).map((w) => w.slice(8));
  if (consoles.length === 0) return { hvcOutput: true, hvcInput: true };
  const isHvc = (c: string): boolean => c.startsWith("hvc");
  return { hvcOutput: consoles.some(isHvc), hvcInput: isHvc(consoles[consoles.length - 1]!) };
}

/** The guest's xenbus ring with its store connection (a Connection here, or the peer in another thread). */
function xenbusOf(xen: XenDomain, o: XenPvOptions, store: StoreApi): { xenbus: XenbusRing; connection: Connection | null; peer: XenbusPeer } {
  const mem = xen.mem;
  const xenbus = new XenbusRing({
    u8: mem.u8, i32: mem.i32, pageOffset: mem.frameOffset(xen.storeGfn), log: (line) => xen.trace(line),
    notify: () => { xen.evtchn.hostNotify(xen.storePort); },
  });
  if (o.xenbusPeer !== undefined) return { xenbus, connection: null, peer: o.xenbusPeer(xen.domid) };
  if (!(store instanceof XenStore)) throw new Error("xenbus: a store in another thread needs xenbusPeer");
  const connection = new Connection(store, xen.domid, (b) => xenbus.send(b),
    { onClose: (why) => xenbus.fail(XENSTORE_ERROR_PROTO, why) });
  return { xenbus, connection, peer: connection };
}

/** The PV console back-end on the domain's console page (null without one); its output per consoleRoles. */
function consoleOf(xen: XenDomain, o: XenPvOptions, hvcOutput: boolean): ConsoleBack | null {
  if (xen.consolePort === 0) return null;
  const mem = xen.mem, port = xen.consolePort;
  return new ConsoleBack({
    u8: mem.u8, i32: mem.i32, pageOffset: mem.frameOffset(xen.consoleGfn), log: (line) => xen.trace(line),
    output: hvcOutput ? o.consoleOut : () => {},
    notify: () => { xen.evtchn.hostNotify(port); },
  });
}

export function attachXenPv(xen: XenDomain, o: XenPvOptions): XenPv {
  const store = o.store ?? new XenStore();
  const log = (line: string): void => xen.trace(line);
  const storePort = xen.storePort;
  introduceDomain(store, {
    domid: xen.domid, name: o.name, uuid: xen.uuid, memKiB: xen.layout.ramBytes / 1024, vcpus: o.vcpus,
    storeGfn: xen.storeGfn, storePort, consoleGfn: xen.consolePort !== 0 ? xen.consoleGfn : 0, consolePort: xen.consolePort,
  });
  const { xenbus, connection, peer } = xenbusOf(xen, o, store);
  xenbus.attach(peer);
  const rc = xen.connectStore({ remoteDom: 0, notify: () => xenbus.kick(), closed: () => peer.close("store port closed") });
  if (rc !== 0) throw new Error(`xenbus: cannot bind the store port ${storePort}: ${rc}`);

  const roles = consoleRoles(o.cmdline);
  const console = consoleOf(xen, o, roles.hvcOutput);
  if (console !== null) {
    const crc = xen.evtchn.hostBind(xen.consolePort, { remoteDom: 0, notify: () => console.kick() });
    if (crc !== 0) throw new Error(`console: cannot bind the console port ${xen.consolePort}: ${crc}`);
  }
  const blk: BlkBack[] = [];
  const net: NetBack[] = [];
  try {
    for (const d of o.disks ?? []) blk.push(attachBlkBack(xen, store, d, log));
    for (const v of o.vifs ?? []) net.push(attachNetBack(xen, store, v.config, v.out, log, undefined, v.flow));
  } catch (e) {
    for (const b of [...blk, ...net]) b.close();
    throw e;
  }
  return { store, xenbus, connection, peer, console, hvcInput: roles.hvcInput, blk, net };
}

// ---------------------------------------------------------------------------------------------------------------
// Save/restore (docs/save-restore.md "Order of a domain restore")

/** The dom0 side of a Xen DomU, saved: its xenbus ring, PV console and back-ends (in config order). */
export interface XenPvState {
  version: 1;
  xenbus: XenbusRingState;
  console: ConsoleBackState | null;
  blk: BlkBackState[];
  net: NetBackState[];
}

export function saveXenPv(pv: XenPv): XenPvState {
  return {
    version: 1, xenbus: pv.xenbus.save(), console: pv.console?.save() ?? null,
    blk: pv.blk.map((b) => b.save()), net: pv.net.map((n) => n.save()),
  };
}

/**
 * Restores the Xen domain `xen` (built with `restoring: true` over RAM that holds the saved RAM) from
 * `xenState` together with its dom0 side from `state`: the xenbus ring and console first (their channels are
 * the endpoints XenDomain.restore takes), then each back-end, which re-attaches its own channel. The store
 * already holds the domain (it is introduced once, at creation) and `o.xenbusPeer` (or the in-thread store)
 * gives the guest's connection back. `o.disks`/`o.vifs` must be the devices the state was saved with, in
 * order. Throws StateError when anything is refused; the caller then drops the whole domain.
 */
export function restoreXenPv(xen: XenDomain, xenState: XenDomainState, o: XenPvOptions, state: XenPvState, newDomain = false): XenPv {
  const C = "xen-pv";
  const s = stateVersion(C, state, 1) as unknown as XenPvState;
  const disks = o.disks ?? [], vifs = o.vifs ?? [];
  if (!Array.isArray(s.blk) || s.blk.length !== disks.length) throw new StateError(C, "blk", `not ${disks.length} disk states`);
  if (!Array.isArray(s.net) || s.net.length !== vifs.length) throw new StateError(C, "net", `not ${vifs.length} vif states`);
  if ((s.console === null) !== (xen.consolePort === 0)) throw new StateError(C, "console", "does not match the domain's PV console");
  const store = o.store ?? new XenStore();
  const log = (line: string): void => xen.trace(line);
  const { xenbus, connection, peer } = xenbusOf(xen, o, store);
  const roles = consoleRoles(o.cmdline);
  const console = consoleOf(xen, o, roles.hvcOutput);
  const endpoints = new Map<number, HostEndpoint>();
  endpoints.set(xen.storePort, { remoteDom: 0, notify: () => xenbus.kick(), closed: () => peer.close("store port closed") });
  if (console !== null) endpoints.set(xen.consolePort, { remoteDom: 0, notify: () => console.kick() });
  const blk: BlkBack[] = [];
  const net: NetBack[] = [];
  try {
    xen.restore(xenState, { endpoints });
    if (newDomain) {
      // Xen's suspend protocol: the guest resumes as in a new domain (drivers/xen/manage.c, SHUTDOWN_suspend
      // returned 0). A new domain has no event channels but the two the toolstack makes for it — the store's
      // and the console's, at the same ports (HVM_PARAM_*_EVTCHN) — so every other port is closed: the guest
      // binds its VIRQs again (xen_irq_resume) and its front-ends allocate new ports. Its disks and vifs get
      // new back-ends, as libxl creates them in a new domain (front-end and back-end directories written
      // afresh, the back-end in InitWait); its front-ends reconnect to them (xenbus_dev_resume). Its store
      // output not yet in the ring belonged to the old connection: the guest's new one starts empty.
      for (let p = 1; p < NR_EVTCHN_2L; p++) {
        if (p !== xen.storePort && p !== xen.consolePort && xen.evtchn.state[p] !== ECS_FREE) xen.evtchn.close(p);
      }
      xenbus.restore({ ...s.xenbus, pending: [] });
      console?.restore(s.console!);
      for (const d of disks) blk.push(attachBlkBack(xen, store, d, log));
      for (const v of vifs) net.push(attachNetBack(xen, store, v.config, v.out, log, undefined, v.flow));
    } else {
      xenbus.restore(s.xenbus);
      console?.restore(s.console!);
      disks.forEach((d, i) => blk.push(BlkBack.restore({ xen, store, config: d, log }, s.blk[i]!)));
      vifs.forEach((v, i) => net.push(restoreNetBack({ xen, store, vif: v.config, out: v.out, log, onRxBacklog: v.flow }, s.net[i]!)));
    }
    const detached = xen.evtchn.detachedHostPorts();
    if (detached.length > 0) throw new StateError(C, "(root)", `event channels ${detached.join(", ")} have no back-end after the restore`);
  } catch (e) {
    for (const b of [...blk, ...net]) b.close();
    if (connection !== null) connection.close("restore refused"); // a remote peer is the guest's connection: it stays
    throw e;
  }
  xenbus.attach(peer);
  xenbus.service(); // replies that arrived while the domain moved, and any the guest queued meanwhile
  // Requests the guest queued on the rings before the save are served now: a notification the old back-end
  // had not acted on does not carry over, and the guest will not send another for requests it thinks are seen.
  for (const b of blk) b.poll();
  for (const n of net) n.poll();
  return { store, xenbus, connection, peer, console, hvcInput: roles.hvcInput, blk, net };
}
