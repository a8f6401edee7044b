/**
 * The thread a domain's Machine runs in (worker_threads entry; spawned by DomainRunner in vm-host.ts).
 *
 * The loop never yields to the worker's event loop: it drains the parent's messages synchronously with
 * receiveMessageOnPort (console input, 'destroy'), runs one slice of every runnable vCPU, and posts console
 * output in batches. When every vCPU waits (WFI) it sleeps with Atomics.wait on the shared doorbell until the
 * next timer is due or the host rings (it increments the doorbell and notifies after every post), so an idle
 * guest costs the host ~no CPU (STYLE.md "Idle is free").
 */
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { Machine, MachineError } from "./machine.js";
import type { VifAttach } from "./xen-pv.js";
import { XENSTORE_ERROR_PROTO } from "../xen/xenbus-ring.js";
import type { BlkDiskConfig } from "../backends/blk/index.js";
import type { NetVifConfig } from "../backends/net/index.js";
import { FramePool } from "../hv/frame-pool.js";
import { RemoteStore, RemoteXenbusPeer, type StoreLinkDown, type StoreLinkUp } from "../hv/store-link.js";

/** The stats words (Float64) the worker publishes: run time in seconds (the vCPUs' share of this thread),
 * 1 when every vCPU waits for an event, the domain's current pages, vCPUs online, 1 when paused. */
export const SCHED_PERMIT = 0, SCHED_WANT = 1;
export const STAT_CPU_S = 0, STAT_BLOCKED = 1, STAT_PAGES = 2, STAT_ONLINE = 3, STAT_PAUSED = 4, STAT_WORDS = 8;

/**
 * What the host hands the worker (workerData). Byte arrays over an ArrayBuffer are copied by structured clone;
 * over a SharedArrayBuffer they are shared — the hypervisor passes kernel and ramdisk so (src/hv/image-cache.ts).
 */
export interface VmWorkerData {
  memMiB: number;
  vcpus: number;
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  /** Boot as a Xen DomU (MachineOptions.xen), with this domain name in XenStore. */
  xen: boolean;
  name: string;
  /** Virtual block devices (blkback) for a Xen domain. */
  disks?: BlkDiskConfig[];
  /** Virtual network interfaces (netback); their frames travel as net-tx / net-rx messages. */
  vifs?: NetVifConfig[];
  /** Domain id (default 1) and UUID (16 bytes) of a Xen domain. */
  domid?: number;
  uuid?: Uint8Array;
  /** The hypervisor's frame pool (FramePool's buffer): the domain's frames are claimed from it. */
  pool?: SharedArrayBuffer;
  /** The link to the hypervisor's one XenStore in the main thread (src/hv/store-link.ts); else a private store. */
  storeLink?: SharedArrayBuffer;
  /** Start with the vCPUs paused (until an "unpause" message). */
  paused?: boolean;
  /**
   * The credit scheduler's control words (Int32Array(2)): [SCHED_PERMIT] 1 while the domain may run (set by the
   * hypervisor), [SCHED_WANT] 1 while it has a runnable vCPU (set here). Absent: always permitted.
   */
  sched?: SharedArrayBuffer;
  /** Float64Array(STAT_WORDS) the worker keeps current for the host (see STAT_*). */
  stats?: SharedArrayBuffer;
  /** Int32Array(1) over this buffer: a counter the host bumps (Atomics.add + notify) after each message. */
  doorbell: SharedArrayBuffer;
}

/** Hot-plug requests (xl block-attach/-detach, network-attach/-detach); answered with device-done. */
export type DeviceOp =
  | { type: "attach-disk"; req: number; disk: BlkDiskConfig }
  | { type: "detach-disk"; req: number; devid: number }
  | { type: "attach-vif"; req: number; vif: NetVifConfig }
  | { type: "detach-vif"; req: number; devid: number };

/** How long a hot-unplug waits for the guest to let go before removing the device anyway. */
const UNPLUG_WAIT_MS = 10_000;

export type HostToWorker = { type: "input"; bytes: Uint8Array } | { type: "destroy" } | DeviceOp
  /** xl mem-max: the most pages populate_physmap may bring the domain to. */
  | { type: "mem-max"; pages: number }
  | { type: "pause" } | { type: "unpause" }
  | StoreLinkDown
  /** A frame from the network for vif `vif`. */
  | { type: "net-rx"; vif: number; frame: Uint8Array };

export type WorkerToHost =
  | { type: "started" }
  /** Sent once each time the domain wants a pCPU and has no permit: the hypervisor ticks its scheduler now. */
  | { type: "sched-wake" }
  | StoreLinkUp
  | { type: "output"; bytes: Uint8Array }
  /** A frame the guest sent on vif `vif` (its buffer is transferred). */
  | { type: "net-tx"; vif: number; frame: Uint8Array }
  /** A DeviceOp finished (error: why it could not be done). */
  | { type: "device-done"; req: number; error?: string }
  /** The guest stopped (poweroff/reboot/crashed) or the host destroyed it ("destroyed"). */
  | { type: "stopped"; state: "poweroff" | "reboot" | "crashed" | "destroyed"; reason: string }
  /** Sent (before the thread ends) when the domain's frames stay claimed for the hypervisor to release. */
  | { type: "kept-frames" }
  /** The machine could not be built (bad memory size, vcpus, kernel image): nothing ran. */
  | { type: "failed"; code: string; message: string };

/**
 * Longest sleep without looking at the doorbell. Every host message rings the doorbell and Machine.runSlice
 * reports the next timer deadline (at most 1 s ahead), so this only bounds a lost wake-up; it was 100 ms, which
 * woke every idle domain 10 times a second for nothing (bench/density).
 */
const MAX_SLEEP_MS = 1000;
/** Console output is posted when this many bytes are pending, or this long after the first pending byte. */
const OUT_BATCH_BYTES = 16384;
const OUT_BATCH_MS = 10;

function main(port: NonNullable<typeof parentPort>, d: VmWorkerData): void {
  const post = (m: WorkerToHost): void => port.postMessage(m);
  const doorbell = new Int32Array(d.doorbell);
  // Pending console output: chunks copied out of the Machine's reused buffer.
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let pendingSince = 0;
  const flush = (): void => {
    if (pendingBytes === 0) return;
    const bytes = new Uint8Array(pendingBytes);
    let o = 0;
    for (const c of pending) { bytes.set(c, o); o += c.length; }
    pending = [];
    pendingBytes = 0;
    post({ type: "output", bytes });
  };

  // With a store link, XenStore is the hypervisor's (main thread); else the Machine makes a private one.
  const remote = d.storeLink !== undefined ? new RemoteStore((msg) => port.postMessage(msg), d.storeLink) : null;
  const link: { peer: RemoteXenbusPeer | null } = { peer: null };
  const stats = d.stats !== undefined ? new Float64Array(d.stats) : new Float64Array(STAT_WORDS);
  let paused = d.paused === true;
  const sched = d.sched !== undefined ? new Int32Array(d.sched) : null;
  // A vif's guest frames leave as net-tx messages addressed by the vif's devid.
  const vifAttach = (config: NetVifConfig): VifAttach => ({
    config,
    out: (f: Uint8Array): void => { const frame = f.slice(); port.postMessage({ type: "net-tx", vif: config.devid, frame }, [frame.buffer]); },
  });
  /** Hot-unplugs waiting for the front-end: forced after UNPLUG_WAIT_MS (checked by the loop: no timers here). */
  const unplugs: { deadline: number; force(): void }[] = [];
  const deviceOp = (h: DeviceOp): void => {
    const reply = (error?: string): void => post({ type: "device-done", req: h.req, ...(error !== undefined ? { error } : {}) });
    try {
      switch (h.type) {
        case "attach-disk": m.attachDisk(h.disk); reply(); break;
        case "attach-vif": m.attachVif(vifAttach(h.vif)); reply(); break;
        case "detach-disk": case "detach-vif": {
          const dev = h.type === "detach-disk" ? m.diskDevice(h.devid) : m.vifDevice(h.devid);
          if (dev === null) { reply(`no ${h.type === "detach-disk" ? "disk" : "vif"} with devid ${h.devid}`); break; }
          let done = false;
          const finish = (): void => { if (done) return; done = true; dev.close(); reply(); };
          unplugs.push({ deadline: Date.now() + UNPLUG_WAIT_MS, force: () => { dev.device.forceUnplug(); finish(); } });
          dev.device.unplug(finish);
          break;
        }
      }
    } catch (e) {
      reply(e instanceof Error ? e.message : String(e));
    }
  };
  let m: Machine;
  try {
    m = new Machine({
      memMiB: d.memMiB, vcpus: d.vcpus, kernel: d.kernel, initrd: d.initrd, cmdline: d.cmdline,
      xen: d.xen, name: d.name, disks: d.disks, domid: d.domid, uuid: d.uuid,
      pool: d.pool !== undefined ? new FramePool(d.pool) : undefined,
      xenstore: remote ?? undefined,
      xenbusPeer: remote === null ? undefined : (domid) => (link.peer = new RemoteXenbusPeer((msg) => port.postMessage(msg), domid)),
      vifs: (d.vifs ?? []).map(vifAttach),
      consoleOut: (b) => {
        if (pendingBytes === 0) pendingSince = performance.now();
        pending.push(b.slice());
        pendingBytes += b.length;
      },
    });
  } catch (e) {
    post({ type: "failed", code: e instanceof MachineError ? e.code : "MACHINE_ERROR", message: e instanceof Error ? e.message : String(e) });
    return;
  }
  // The images are in guest RAM now; drop the copies.
  d.kernel = new Uint8Array(0);
  d.initrd = undefined;
  stats[STAT_PAGES] = m.xen !== null ? m.xen.account.pages : d.memMiB * 256;
  stats[STAT_ONLINE] = 1; // the boot vCPU (the others come up by PSCI CPU_ON)
  post({ type: "started" });

  let guestStopped = false;
  /** A sched-wake was posted and no permit came yet. */
  let askedPermit = false;
  try {
    for (;;) {
      // Read the doorbell before draining: a message posted after this read changes it, so the wait below
      // returns at once instead of sleeping through the message.
      const seen = Atomics.load(doorbell, 0);
      for (let msg = receiveMessageOnPort(port); msg !== undefined; msg = receiveMessageOnPort(port)) {
        const h = msg.message as HostToWorker;
        if (h.type === "net-rx") m.netReceive(h.vif, h.frame);
        else if (h.type === "attach-disk" || h.type === "detach-disk" || h.type === "attach-vif" || h.type === "detach-vif") deviceOp(h);
        else if (h.type === "xs-watch") remote?.deliver(h);
        else if (h.type === "xs-bytes") m.xenPv?.xenbus.send(h.bytes);
        else if (h.type === "xs-closed") { link.peer?.remoteClosed(); m.xenPv?.xenbus.fail(XENSTORE_ERROR_PROTO, h.reason); }
        else if (h.type === "mem-max") { if (m.xen !== null) m.xen.account.maxPages = h.pages; }
        else if (h.type === "pause") paused = true;
        else if (h.type === "unpause") paused = false;
        else if (h.type === "input") m.input(h.bytes);
        else if (h.type === "destroy") {
          m.flushOut();
          flush();
          post({ type: "stopped", state: "destroyed", reason: "destroyed by the toolstack" });
          return;
        }
      }
      if (unplugs.length > 0) {
        const now = Date.now();
        for (let i = unplugs.length - 1; i >= 0; i--) if (now >= unplugs[i]!.deadline) unplugs.splice(i, 1)[0]!.force();
      }
      stats[STAT_PAUSED] = paused ? 1 : 0;
      if (paused) {
        flush();
        Atomics.wait(doorbell, 0, seen, MAX_SLEEP_MS);
        continue;
      }
      if (sched !== null) {
        Atomics.store(sched, SCHED_WANT, 1);
        if (Atomics.load(sched, SCHED_PERMIT) === 0) {
          // Not our turn on a pCPU: say so once (the hypervisor's tick may be stopped while every domain is
          // idle, and a woken domain should not wait for the next tick), then wait for the permit (messages
          // are still drained every few ms).
          if (!askedPermit) { askedPermit = true; post({ type: "sched-wake" }); }
          flush();
          Atomics.wait(sched, SCHED_PERMIT, 0, 10);
          continue;
        }
        askedPermit = false;
      }
      const t0 = performance.now();
      const w = m.runSlice();
      if (sched !== null && w > 0) Atomics.store(sched, SCHED_WANT, 0);
      stats[STAT_CPU_S] += (performance.now() - t0) / 1000;
      stats[STAT_BLOCKED] = w > 0 ? 1 : 0;
      stats[STAT_PAGES] = m.xen !== null ? m.xen.account.pages : d.memMiB * 256;
      let online = 0;
      for (const v of m.vcpus) if (v.online) online++;
      stats[STAT_ONLINE] = online;
      if (w < 0) {
        flush();
        guestStopped = true;
        post({ type: "stopped", state: m.state === "running" ? "crashed" : m.state, reason: m.reason });
        return;
      }
      if (pendingBytes >= OUT_BATCH_BYTES || (pendingBytes > 0 && (w > 0 || performance.now() - pendingSince >= OUT_BATCH_MS))) flush();
      if (w > 0) Atomics.wait(doorbell, 0, seen, Math.min(w, MAX_SLEEP_MS));
    }
  } catch (e) {
    // An exception from the CPU or a device ends this domain only (STYLE.md: a fault in one domain's code path
    // ends that domain at worst).
    flush();
    const err = e instanceof Error ? e : new Error(String(e));
    guestStopped = true;
    post({ type: "stopped", state: "crashed", reason: `emulator fault: ${err.message}${err.stack ? `\n${err.stack}` : ""}` });
  } finally {
    // Disk images are closed (their writes are in the files already). Frames go back to the pool now only when
    // the toolstack destroyed the domain: a domain that shut down or crashed keeps its memory until destroyed,
    // as in Xen (the hypervisor then releases what the stats say it held).
    const keep = guestStopped && d.pool !== undefined;
    if (keep) post({ type: "kept-frames" });
    m.dispose(keep);
  }
}

if (parentPort !== null) main(parentPort, workerData as VmWorkerData);
