/**
 * The dom0 services a Xen DomU on this board talks to, wired at machine creation: XenStore on the guest's
 * xenbus ring (the domain's nodes written and the domain introduced first, as libxl does before unpausing) and
 * the PV console back-end on hvc0's page. Both attach to the guest's pre-allocated unbound ports as host
 * endpoints of domain 0 (src/xen/event-channel.ts hostBind).
 */
import type { XenDomain } from "../xen/domain.js";
import { XenStore, Connection, type StoreApi } from "../xenstore/index.js";
import { XenbusRing, XENSTORE_ERROR_PROTO, type XenbusPeer } from "../xen/xenbus-ring.js";
import { introduceDomain } from "../xen/xenstore-domain.js";
import { ConsoleBack } from "../backends/console/index.js";
import { attachBlkBack, type BlkBack, type BlkDiskConfig } from "../backends/blk/index.js";
import { attachNetBack, type NetBack, type NetVifConfig } from "../backends/net/index.js";

/** A vif and where its guest's transmitted frames go (a view valid during the call only). */
export interface VifAttach {
  config: NetVifConfig;
  out(frame: Uint8Array): void;
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

export function attachXenPv(xen: XenDomain, o: XenPvOptions): XenPv {
  const store = o.store ?? new XenStore();
  const mem = xen.mem;
  const log = (line: string): void => xen.trace(line);
  const storePort = xen.storePort;
  introduceDomain(store, {
    domid: xen.domid, name: o.name, uuid: xen.uuid, memKiB: xen.layout.ramBytes / 1024, vcpus: o.vcpus,
    storeGfn: xen.storeGfn, storePort, consoleGfn: xen.consolePort !== 0 ? xen.consoleGfn : 0, consolePort: xen.consolePort,
  });
  const xenbus = new XenbusRing({
    u8: mem.u8, i32: mem.i32, pageOffset: mem.frameOffset(xen.storeGfn), log,
    notify: () => { xen.evtchn.hostNotify(storePort); },
  });
  let connection: Connection | null = null;
  let peer: XenbusPeer;
  if (o.xenbusPeer !== undefined) peer = o.xenbusPeer(xen.domid);
  else {
    if (!(store instanceof XenStore)) throw new Error("xenbus: a store in another thread needs xenbusPeer");
    peer = connection = new Connection(store, xen.domid, (b) => xenbus.send(b),
      { onClose: (why) => xenbus.fail(XENSTORE_ERROR_PROTO, why) });
  }
  xenbus.attach(peer);
  const rc = xen.connectStore({ remoteDom: 0, notify: () => xenbus.kick(), closed: () => peer.close("store port closed") });
  if (rc !== 0) throw new Error(`xenbus: cannot bind the store port ${storePort}: ${rc}`);

  const roles = consoleRoles(o.cmdline);
  let console: ConsoleBack | null = null;
  if (xen.consolePort !== 0) {
    const port = xen.consolePort;
    const back = new ConsoleBack({
      u8: mem.u8, i32: mem.i32, pageOffset: mem.frameOffset(xen.consoleGfn), log,
      output: roles.hvcOutput ? o.consoleOut : () => {},
      notify: () => { xen.evtchn.hostNotify(port); },
    });
    const crc = xen.evtchn.hostBind(port, { remoteDom: 0, notify: () => back.kick() });
    if (crc !== 0) throw new Error(`console: cannot bind the console port ${port}: ${crc}`);
    console = back;
  }
  const blk: BlkBack[] = [];
  const net: NetBack[] = [];
  try {
    for (const d of o.disks ?? []) blk.push(attachBlkBack(xen, store, d, log));
    for (const v of o.vifs ?? []) net.push(attachNetBack(xen, store, v.config, v.out, log));
  } catch (e) {
    for (const b of [...blk, ...net]) b.close();
    throw e;
  }
  return { store, xenbus, connection, peer, console, hvcInput: roles.hvcInput, blk, net };
}
