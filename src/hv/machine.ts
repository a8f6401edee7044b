/**
 * A domain's machine: the board (src/machine/board.ts: RAM, vCPUs, GIC, timers, PL011, PL031, PSCI) with, for
 * a Xen DomU, the Xen guest ABI (src/xen) plugged in as its platform and the dom0 services the guest talks to
 * (XenStore on its xenbus ring, the PV console, blkback and netback: xen-pv.ts). Its frames are claimed from
 * the hypervisor's pool. The worker thread (vm-worker.ts) drives it with runSlice().
 */
import { LazyRam, attachLazyRam, finishLazyRam, type LazyRamMessage } from "./lazy-ram.js";
import { Board, MachineError, type BoardPlatform, type MachineState } from "../machine/board.js";
import { formatLogLine } from "../common/log.js";
import { RAM_BASE } from "../machine/layout.js";
import type { Cpu } from "../cpu/arm64/cpu.js";
import { STOP_HALT, STOP_WFI } from "../cpu/arm64/cpu.js";
import { XenDomain } from "../xen/domain.js";
import { XEN_HYPERCALL_TAG, GUEST_EVTCHN_PPI } from "../xen/abi.js";
import { hypervisorDtNode, XEN_AREA_BYTES, xenAreaLayout } from "../xen/layout.js";
import { withUpcallResample } from "../xen/upcall.js";
import { SHUTDOWN_poweroff, SHUTDOWN_reboot } from "../xen/sched-op.js";
import type { XenbusPeer } from "../xen/xenbus-ring.js";
import { XenStore, type StoreApi } from "../xenstore/index.js";
import { BlkError, attachBlkBack, type BlkDiskConfig } from "../backends/blk/index.js";
import { attachNetBack } from "../backends/net/index.js";
import { publishIo } from "./io-stats.js";
import type { BackendDevice } from "../backends/xenbus-backend.js";
import { attachXenPv, restoreXenPv, saveXenPv, type VifAttach, type XenPv, type XenPvState } from "./xen-pv.js";
import { restoreBoard, saveBoard, type BoardState } from "../machine/board-state.js";
import type { XenDomainState } from "../xen/domain.js";
import type { P2mState } from "../xen/p2m.js";
import { StateError, stateVersion } from "../common/state.js";
import type { FramePool } from "./frame-pool.js";
import { DomainClock } from "../common/domain-clock.js";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { bootFirmware, FLASH_BYTES } from "../machine/firmware.js";
import { RawImage, StorageError, type BlockImage } from "../storage/block-image.js";
import { Qcow2Image } from "../storage/qcow2.js";
import type { VirtioNet } from "../devices/virtio/virtio-net.js";

export { MachineError, type MachineState } from "../machine/board.js";

/**
 * A domain's machine, saved between slices (docs/save-restore.md): the board (vCPUs, devices, clock), and for
 * a Xen DomU its P2M, guest-ABI state and dom0 side (xenbus ring, console, back-ends). Guest RAM is not in it:
 * it is the domain memory, adopted by the restore (a move between threads) or carried beside this.
 */
export interface DomainSnapshot {
  version: 1;
  board: BoardState;
  p2m: P2mState | null;
  xen: XenDomainState | null;
  pv: XenPvState | null;
}

export interface MachineOptions {
  /** RAM in MiB; a Xen DomU's memory buffer is 1 MiB larger (the Xen area above its RAM). */
  memMiB: number;
  vcpus: number;
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  /** Console bytes from the guest (the buffer is reused after the call returns: copy to keep). */
  consoleOut: (bytes: Uint8Array) => void;
  /**
   * Run the guest as a Xen DomU (src/xen): `/hypervisor` DT node, `hvc #0xEA1` hypercalls, event-channel
   * upcall PPI 31, and the top 1 MiB of RAM reserved for grant frames and magic pages. Default false.
   */
  xen?: boolean;
  /**
   * With xen: the XenStore serving the guest's xenbus (default: a fresh one). The domain's nodes are written
   * and the domain introduced at construction (src/xen/xenstore-domain.ts).
   */
  xenstore?: StoreApi;
  /** With xen and a store in another thread: the guest's xenbus peer (see XenPvOptions.xenbusPeer). */
  xenbusPeer?: (domid: number) => XenbusPeer;
  /** With xen: domain id (default 1) and name (default "domU"), and UUID (16 bytes). */
  domid?: number;
  uuid?: Uint8Array;
  name?: string;
  /**
   * With xen: offer the PV console (hvc0; default true). Its output goes to consoleOut like the PL011's when
   * the cmdline makes hvc0 a console (`console=hvc0`, or no `console=`); input goes to hvc0 when it is the
   * last console named, once the guest has written to it (src/hv/xen-pv.ts consoleRoles).
   */
  pvConsole?: boolean;
  /**
   * The hypervisor's frame pool (src/hv/frame-pool.ts): the machine claims its RAM's frames from it at
   * construction (MACHINE_MEMORY when too few are free) and gives back what it holds on dispose(); with Xen
   * the balloon moves frames between the domain and the pool while it runs.
   */
  pool?: FramePool;
  /** With xen: virtual block devices served by blkback (src/backends/blk), e.g. xvda. */
  disks?: readonly BlkDiskConfig[];
  /** With xen: virtual network interfaces served by netback (src/backends/net), the guest's eth0, eth1, … */
  vifs?: readonly VifAttach[];
  /**
   * Continue a saved machine instead of booting one (kernel and initrd are then unused): its snapshot and the
   * domain memory holding its RAM. The options must describe the same domain (memory, vCPUs, domid, uuid,
   * disks and vifs in order). Its frames are still claimed (a domain moving between threads keeps its claim).
   * A state that does not fit is refused with MachineError MACHINE_STATE, and nothing is left running.
   */
  from?: {
    snapshot: DomainSnapshot; memory: WebAssembly.Memory;
    /**
     * The guest suspended itself (Xen's suspend protocol, SHUTDOWN_suspend taken) before the save and resumes
     * now as in a new domain (the hypercall returns 0): its event channels are closed but the store's and
     * console's (which the toolstack sets up again for a new domain: the same ports), and its disks and vifs
     * get new back-ends in XenbusState InitWait, which its front-ends reconnect to (restoreXenPv newDomain).
     */
    newDomain?: boolean;
    /** A lazy restore (lazy-ram.ts): the pages of `memory` not loaded yet, loaded on first touch. */
    lazy?: LazyRamMessage;
  };
  /** The domain's clock (default: a new DomainClock, reading 0 now); bench/overcommit gives one on a warped host clock. */
  clock?: DomainClock;
  /**
   * An HVM domain (type = "hvm"): `kernel` is then the UEFI firmware (AAVMF_CODE.fd) booted from flash on QEMU
   * virt's map (src/machine/firmware.ts), and this the path of the domain's variable store (a copy of
   * AAVMF_VARS.fd), read at start and written back as the guest changes it. Without the Xen platform for now.
   */
  firmwareVars?: string;
  /**
   * With firmwareVars: xl's boot= (default "cd"): the firmware tries the disks (c), the cdroms (d, disks with
   * `cdrom`) and the NICs (n) in this order (fw_cfg's bootorder file, src/machine/firmware.ts).
   */
  firmwareBoot?: string;
  /** With firmwareVars: a virtio-rng device on the PCIe bus after the NICs (default true; config key virtio_rng). */
  firmwareRng?: boolean;
}

export class Machine {
  readonly board: Board;
  /** The domain's one clock: its vCPUs' counters, the RTC, and Xen's runstate and wallclock (save/restore). */
  readonly clock: DomainClock;
  /** The Xen guest ABI when MachineOptions.xen is set. */
  readonly xen: XenDomain | null = null;
  /** With xen: XenStore, the guest's xenbus ring and the PV console back-end. */
  readonly xenPv: XenPv | null = null;
  private pool: FramePool | null = null;
  /** A lazy restore's loader until every page is in (finishLazy), else null. */
  private lazy: LazyRam | null = null;
  /** Frames claimed from the pool when there is no Xen account to say (bare board). */
  private poolFrames = 0;
  /** An HVM domain's variable store file (open while it runs), or -1. */
  private varsFd = -1;
  /** An HVM domain's disk images (the device model's virtio-blk devices serve them); closed on dispose. */
  private readonly hvmDisks: BlockImage[] = [];
  /** An HVM domain's NICs (virtio-net) by vif devid. */
  private readonly hvmNics = new Map<number, VirtioNet>();

  constructor(o: MachineOptions) {
    this.clock = o.clock ?? new DomainClock();
    // A Xen DomU gets memMiB of RAM, as xl's memory= means; the Xen area (grant table, magic pages: 1 MiB,
    // src/xen/layout.ts) is the top of the domain's memory, above that RAM, so the buffer is 1 MiB larger.
    const boardMiB = o.xen ? o.memMiB + XEN_AREA_BYTES / (1024 * 1024) : o.memMiB;
    const ramBytes = boardMiB * 1024 * 1024;
    if (o.xen && o.domid !== undefined && (!Number.isInteger(o.domid) || o.domid < 1 || o.domid >= 0x7ff0)) {
      throw new MachineError("MACHINE_DOMID", `domid=${o.domid}: a DomU's id is 1..32751`);
    }
    // An HVM domain's disks are the device model's (virtio-blk on PCIe), not blkback's.
    if (!o.xen && o.firmwareVars === undefined && o.disks !== undefined && o.disks.length > 0) {
      throw new MachineError("MACHINE_DISK", "disks need the Xen platform (blkfront/blkback); this domain has xen_platform=0");
    }
    if (!o.xen && o.firmwareVars === undefined && o.vifs !== undefined && o.vifs.length > 0) {
      throw new MachineError("MACHINE_VIF", "vifs need the Xen platform (netfront/netback); this domain has xen_platform=0");
    }
    const platform: BoardPlatform | undefined = o.xen ? {
      hvc: (k, cpu, imm) => this.hypercall(k, cpu, imm),
      gicc: (k, gicc) => withUpcallResample(gicc, () => this.xen!.resampleUpcall(k)),
      eoiWatch: GUEST_EVTCHN_PPI, // vCPUs on other threads send their EOIs of it here, through the wrapper above
      poll: () => this.poll(),
      stage2Abort: (_k, cpu) => this.xen!.stage2Abort(cpu),
      stopped: (state) => this.stopped(state),
    } : undefined;
    const from = o.from;
    const snap = from === undefined ? null : this.checkSnapshot(o, from.snapshot);
    // A lazy restore: the Xen area (rings, grant frames: written in place from its layout, not through a
    // frame number) is loaded before anything is built over the memory; the rest on first touch.
    const lazy = from?.lazy !== undefined && snap !== null ? new LazyRam(from.lazy) : null;
    if (lazy !== null) {
      if (o.xen) { const guest = xenAreaLayout(RAM_BASE, ramBytes).ramBytes; lazy.ensureRange(guest, ramBytes - guest); } else lazy.loadAll();
    }
    if (o.firmwareVars !== undefined && o.from !== undefined) {
      throw new MachineError("MACHINE_FIRMWARE", "an HVM domain cannot be restored yet");
    }
    const boardOpts = { memMiB: boardMiB, vcpus: o.vcpus, consoleOut: o.consoleOut, platform, clock: this.clock,
      ...(o.firmwareVars !== undefined ? { romBytes: FLASH_BYTES } : {}) };
    this.board = snap === null ? new Board(boardOpts) : stateOrMachineError(() => restoreBoard({ ...boardOpts, memory: from!.memory }, snap.board));
    const frames = (o.xen ? xenAreaLayout(RAM_BASE, ramBytes).ramBytes : ramBytes) / 4096;
    if (o.pool !== undefined && snap === null) {
      if (!o.pool.claim(frames)) {
        throw new MachineError("MACHINE_MEMORY", `memory=${o.memMiB} MiB: only ${Math.floor(o.pool.freeFrames / 256)} MiB ` +
          `of the hypervisor's ${Math.floor(o.pool.totalFrames / 256)} MiB are free (xeno info; balloon or destroy a domain)`);
      }
    }
    if (o.pool !== undefined) { this.pool = o.pool; this.poolFrames = frames; }
    if (o.xen) {
      const xen = this.xen = this.createXen(o, snap !== null);
      try {
        // PV on HVM: the guest finds XenStore and the PV console as a DomU does, while its disks and vifs are the
        // device model's (virtio, below), not blkback's and netback's: one image behind two front-ends would be
        // two caches of one disk. Its console is the PL011, which gets the input; what the guest writes to hvc0
        // (the PV console: no kernel console or getty of an HVM guest is there unless it says so) is shown with
        // it (consoleRoles of a kernel command line naming hvc0, then ttyAMA0 last).
        const hvm = o.firmwareVars !== undefined;
        const pvOpts = { store: o.xenstore, cmdline: hvm ? "console=hvc0 console=ttyAMA0" : o.cmdline, name: o.name ?? "domU", vcpus: o.vcpus,
          consoleOut: (b: Uint8Array) => this.board.console(b), disks: hvm ? [] : o.disks, vifs: hvm ? [] : o.vifs,
          xenbusPeer: o.xenbusPeer };
        if (snap === null) this.xenPv = attachXenPv(xen, pvOpts);
        else {
          stateOrMachineError(() => xen.account.restore(snap.p2m!));
          if (lazy !== null) { attachLazyRam(lazy, xen, this.board); this.lazy = lazy; }
          this.xenPv = stateOrMachineError(() => restoreXenPv(xen, snap.xen!, pvOpts, snap.pv!, from!.newDomain === true));
        }
      } catch (e) {
        if (snap === null) this.dispose(); else this.release();
        if (e instanceof BlkError) throw new MachineError("MACHINE_DISK", e.message);
        if (e instanceof RangeError && /^vif/.test(e.message)) throw new MachineError("MACHINE_VIF", e.message);
        throw e;
      }
      this.board.setStage2(xen.account.stage2Map); // the domain's P2M is every vCPU's stage 2 (src/xen/p2m.ts)
    }
    if (snap !== null) return;
    if (o.firmwareVars !== undefined) {
      const path = o.firmwareVars;
      try {
        this.varsFd = openSync(path, "r+");
        const fd = this.varsFd;
        // The disks: virtio-blk (NVMe for vdev nvmeN) on the emulated PCIe bus, each over its image opened here (raw or qcow2).
        for (const d of o.disks ?? []) {
          this.hvmDisks.push(d.format === "qcow2" ? Qcow2Image.open(d.path, d.readOnly) : RawImage.open(d.path, d.readOnly));
        }
        const xen = this.xen;
        const fwDevices = bootFirmware(this.board, { code: o.kernel, vars: readFileSync(fd), uuid: o.uuid,
          // PV on HVM: the device tree the firmware hands the OS has Xen's /hypervisor node, and its memory node
          // leaves out the Xen area at the top of RAM (grant window, magic pages), as for a DomU.
          ...(xen === null ? {} : { ramBytes: xen.layout.ramBytes, extraDtNodes: (gicPh: number) => [hypervisorDtNode(xen.layout, gicPh)] }),
          disks: this.hvmDisks.map((disk, i) => ({ disk, readOnly: o.disks![i]!.readOnly, serial: o.disks![i]!.vdev, cdrom: o.disks![i]!.cdrom === true, nvme: o.disks![i]!.nvme === true })),
          bootOrder: o.firmwareBoot ?? "cd",
          rng: o.firmwareRng !== false,
          // The vifs: virtio-net on the same bus, sending to the vif's bridge as netback does (VifAttach.out).
          nics: (o.vifs ?? []).map((v) => ({ mac: v.config.mac, mtu: v.config.mtu, send: (f: Uint8Array) => v.out(f) })),
          // The guest's variable writes reach the file as they happen (a few per boot; the flash does them one by one).
          onVarsChange: (off, bytes) => { writeSync(fd, bytes, 0, bytes.length, off); } });
        (o.vifs ?? []).forEach((v, i) => this.hvmNics.set(v.config.devid, fwDevices.nics[i]!));
      } catch (e) {
        this.dispose();
        if (e instanceof StorageError) throw new MachineError("MACHINE_DISK", e.message);
        throw e instanceof MachineError ? e : new MachineError("MACHINE_FIRMWARE", `variable store ${path}: ${(e as Error).message}`);
      }
      return;
    }
    try {
      const xen = this.xen;
      this.board.boot({ kernel: o.kernel, initrd: o.initrd, cmdline: o.cmdline,
        // With Xen, the top of RAM is the Xen area (src/xen/layout.ts), outside the DT memory node.
        memBytes: xen === null ? ramBytes : xen.layout.ramBytes,
        extraDtNodes: xen === null ? undefined : (gicPh) => [hypervisorDtNode(xen.layout, gicPh)] });
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** The snapshot's shape against the options (each part checks its own contents when it is restored). */
  private checkSnapshot(o: MachineOptions, snapshot: unknown): DomainSnapshot {
    return stateOrMachineError(() => {
      const s = stateVersion("domain", snapshot, 1) as unknown as DomainSnapshot;
      const xenParts = [s.p2m, s.xen, s.pv].filter((x) => x !== null && x !== undefined).length;
      if (xenParts !== (o.xen ? 3 : 0)) throw new StateError("domain", "xen", o.xen ? "a Xen domain's state lacks its Xen parts" : "Xen state for a bare board");
      return s;
    });
  }

  /**
   * The machine's state now (between slices: no vCPU is inside run()). Throws StateError when a part cannot be
   * saved now (a back-end serving requests, a hot-unplug in progress): try again after the next slice.
   */
  save(): DomainSnapshot {
    if (this.varsFd >= 0) throw new StateError("domain", "firmware", "an HVM domain (firmware boot) cannot be saved, moved or migrated yet");
    // vCPUs on other threads stop at an instruction boundary first, and stay stopped: call resumeVcpus() to go
    // on here (a checkpoint, a failed move); release() ends them (the domain continues elsewhere).
    this.board.parkRemotes();
    this.finishLazy(); // the host reads RAM whole next, and the P2M saved must say 0/1
    // The back-ends first: blkback drains its requests in flight (their grants are pinned until they complete),
    // so the Xen state saved after it holds no pin.
    const pv = this.xenPv === null ? null : saveXenPv(this.xenPv);
    return {
      version: 1,
      board: saveBoard(this.board),
      p2m: this.xen?.account.save() ?? null,
      xen: this.xen?.save() ?? null,
      pv,
    };
  }

  /**
   * Lets go of this copy of a domain that lives on elsewhere (it was saved and is restored in another thread):
   * disk files are closed, nothing is written to the store, the frames stay claimed. Never run it again.
   */
  release(): void {
    this.board.quitRemotes(true); // gone before the memory is another thread's
    for (const b of this.xenPv?.blk ?? []) b.release();
    this.pool = null;
  }

  // ------------------------------------------------------------------------------------------ dirty logging
  /** The live migration's dirty log (a byte per RAM page of the board), or null. */
  private dirty: Uint8Array | null = null;

  /**
   * Starts logging writes to RAM (a live migration's pre-copy, src/hv/save-live.ts): the vCPUs' MMUs
   * (Board.setDirtyLog: those on threads of their own too) and the Xen layer's host-side writes
   * (GuestMemory.dirty) mark pages in one log.
   */
  startDirtyLog(): void {
    this.finishLazy(); // a page loaded later would be a host write the log does not see
    const log = this.board.newDirtyLog();
    this.board.setDirtyLog(log);
    if (this.xen !== null) this.xen.mem.dirty = log;
    this.dirty = log;
  }

  /**
   * A pre-copy round: the pages written since the last round (or since the log started), in order; the log
   * is cleared and every TLB entry loses write permission, so the next write to any page marks it again.
   * With `final` (the domain is paused and saved) it also gives the pages Xen and the back-ends write in place
   * (XenDomain.hostPages) and stops logging.
   */
  dirtyRound(final: boolean): Int32Array {
    const log = this.dirty;
    if (log === null) throw new MachineError("MACHINE_STATE", "no dirty log is running");
    const set = final && this.xen !== null ? new Set(this.xen.hostPages()) : null;
    let n = 0;
    for (let p = 0; p < log.length; p++) if (log[p] !== 0 || set?.has(p) === true) n++;
    const pages = new Int32Array(n);
    n = 0;
    for (let p = 0; p < log.length; p++) if (log[p] !== 0 || set?.has(p) === true) pages[n++] = p;
    log.fill(0);
    if (final) this.stopDirtyLog(); else this.board.dirtyRound();
    return pages;
  }

  /** Stops logging (a migration that ended or failed); TLB entries keep their reduced permissions until refilled. */
  stopDirtyLog(): void {
    if (this.dirty === null) return;
    this.board.setDirtyLog(null);
    if (this.xen !== null) this.xen.mem.dirty = null;
    this.dirty = null;
  }

  get dirtyLogging(): boolean { return this.dirty !== null; }

  // ------------------------------------------------------------------------------------- Xen's suspend protocol
  /** The toolstack asked the guest to suspend (armSuspend): its SHUTDOWN_suspend is taken, not cancelled. */
  private suspendArmed = false;
  /** The vCPU whose SCHEDOP_shutdown(SHUTDOWN_suspend) was taken (it returned 0 and the slice ended), or null. */
  suspendedBy: number | null = null;

  /**
   * A suspend asked of the guest (control/shutdown = "suspend") is pending: its next SHUTDOWN_suspend is taken
   * (suspendedBy set, the vCPU stopped after the call; the worker pauses the domain). Off: the call answers 1
   * (cancelled), as it does for a guest that suspends unasked.
   */
  armSuspend(on: boolean): void { this.suspendArmed = on; }

  /**
   * The suspended guest goes on in this same domain (a checkpoint, or a save that failed): its hypercall returns
   * 1, "cancelled" — Linux then thaws its devices on the same back-ends (xs_suspend_cancel, PMSG_THAW), as
   * xc_domain_resume's fast path makes it on Xen (modify_returncode).
   */
  cancelSuspend(): void {
    const k = this.suspendedBy;
    if (k === null) return;
    const r = this.board.vcpus[k]!.cpu.r; // x0 as (lo, hi); the vCPU is stopped after its hvc
    r[0] = 1; r[1] = 0;
    this.suspendedBy = null;
  }

  private takeSuspend(k: number): number {
    // Linux suspends from CPU 0 (stop_machine on cpumask_of(0)), which stays in this thread.
    if (!this.suspendArmed || this.board.vcpus[k]?.remote !== false) return 1;
    this.suspendArmed = false;
    this.suspendedBy = k;
    this.board.vcpus[k]!.cpu.stop = STOP_HALT; // ends its slice at the call; the worker pauses the domain
    return 0;
  }

  /** A lazy restore's pages all loaded now, and its loader taken off (lazy-ram.ts finishLazyRam). */
  finishLazy(): void {
    if (this.lazy === null || this.xen === null) return;
    finishLazyRam(this.lazy, this.xen);
    this.lazy = null;
  }

  /** A lazy restore's loader while pages are still absent (tests, the worker's report), else null. */
  get lazyRam(): LazyRam | null { return this.lazy; }

  /** After save(): lets the vCPUs on other threads run again (the domain goes on here). */
  resumeVcpus(): void { this.board.unparkRemotes(); }

  // The board's face, for the worker loop and tests.
  get ram(): SharedArrayBuffer { return this.board.ram; }
  get vcpus(): Board["vcpus"] { return this.board.vcpus; }
  get gic(): Board["gic"] { return this.board.gic; }
  get uart(): Board["uart"] { return this.board.uart; }
  get state(): MachineState { return this.board.state; }
  get reason(): string { return this.board.reason; }
  get retired(): number { return this.board.retired; }
  get codePages(): number { return this.board.codePages; }
  runSlice(): number { return this.board.runSlice(); }
  flushOut(): void { this.board.flushOut(); }

  /**
   * Queues console input for the guest: its PV console when hvc0 is /dev/console and the guest has written to
   * it, else the UART. Never both: a shell on each would run every command twice.
   */
  input(bytes: Uint8Array): void {
    const pv = this.xenPv?.console;
    if (pv?.active && this.xenPv!.hvcInput) { pv.input(bytes); return; }
    this.board.input(bytes);
  }

  /**
   * The machine is finished with (stopped or destroyed): its frames go back to the pool (the domain's current
   * reservation, after any ballooning). Idempotent.
   */
  dispose(keepFrames = false): void {
    this.board.quitRemotes();
    if (this.varsFd >= 0) { closeSync(this.varsFd); this.varsFd = -1; }
    for (const d of this.hvmDisks.splice(0)) d.close();
    for (const b of this.xenPv?.blk ?? []) b.close();
    for (const n of this.xenPv?.net ?? []) n.close();
    const pool = this.pool;
    if (pool === null || keepFrames) return;
    this.pool = null;
    pool.release(this.xen !== null ? this.xen.account.pages : this.poolFrames);
  }

  /**
   * A frame from the network for the vif with devid `devid` (copied into the guest's rx buffers, queued, or
   * dropped). `more`: further frames of the same batch follow; netFlush() ends the batch (NetBack.receive).
   */
  netReceive(devid: number, frame: Uint8Array, more = false): boolean {
    const nic = this.hvmNics.get(devid);
    if (nic !== undefined) return nic.receive(frame);
    const net = this.xenPv?.net;
    if (net === undefined) return false;
    for (const n of net) if (n.device.devid === devid) return n.receive(frame, more);
    return false;
  }

  /** The end of a batch of frames: every vif delivers what it held back to join. */
  netFlush(): void {
    for (const n of this.xenPv?.net ?? []) n.flushRx();
  }

  /** Hot-plug a disk (xl block-attach): its XenStore device appears and the guest's blkfront probes it. */
  attachDisk(disk: BlkDiskConfig): void {
    const pv = this.xenPv;
    if (this.varsFd >= 0) throw new MachineError("MACHINE_DISK", "an HVM domain's disks (virtio-blk on PCIe) cannot be hot-plugged yet");
    if (pv === null || this.xen === null) throw new MachineError("MACHINE_DISK", "disks need the Xen platform");
    if (pv.blk.some((b) => b.config.devid === disk.devid)) throw new MachineError("MACHINE_DISK", `a disk ${disk.vdev} (${disk.devid}) is attached already`);
    const xen = this.xen;
    pv.blk.push(attachBlkBack(xen, pv.store, disk, (l) => xen.trace(l)));
  }

  /** Hot-plug a vif (xl network-attach). */
  attachVif(v: VifAttach): void {
    const pv = this.xenPv;
    // An HVM domain's vifs are the device model's virtio-net NICs; PV vifs beside them (netfront in a PV-on-HVM
    // guest) are not offered yet (docs/hvm.md), as its disks.
    if (this.varsFd >= 0) throw new MachineError("MACHINE_VIF", "an HVM domain's vifs (virtio-net on PCIe) cannot be hot-plugged yet");
    if (pv === null || this.xen === null) throw new MachineError("MACHINE_VIF", "vifs need the Xen platform");
    if (pv.net.some((n) => n.device.devid === v.config.devid)) throw new MachineError("MACHINE_VIF", `vif ${v.config.devid} exists already`);
    const xen = this.xen;
    pv.net.push(attachNetBack(xen, pv.store, v.config, v.out, (l) => xen.trace(l), undefined, v.flow));
  }

  /** The disk with `devid` (for unplugging; its close() removes it from this machine), or null. */
  diskDevice(devid: number): { device: BackendDevice; close(): void } | null {
    const pv = this.xenPv;
    const b = pv?.blk.find((x) => x.config.devid === devid);
    if (pv === null || b === undefined) return null;
    return { device: b.device, close: () => { b.close(); pv.blk.splice(pv.blk.indexOf(b), 1); } };
  }

  vifDevice(devid: number): { device: BackendDevice; close(): void } | null {
    const pv = this.xenPv;
    const n = pv?.net.find((x) => x.device.devid === devid);
    if (pv === null || n === undefined) return null;
    return { device: n.device, close: () => { n.close(); pv.net.splice(pv.net.indexOf(n), 1); } };
  }

  // ---------------------------------------------------------------------------------------------------------
  // The Xen platform

  /** The Xen layer with this board as its host: upcall PPI lines, shutdown, WFI-like blocking. */
  private createXen(o: MachineOptions, restoring: boolean): XenDomain {
    const board = this.board;
    return new XenDomain({ restoring,
      // A firmware board's flash is before RAM in the domain memory (romBytes): the Xen view starts after it.
      ram: board.ram, ramBytes: board.ramBytes - board.romBytes, ramOffset: board.romBytes, ramBase: RAM_BASE, vcpus: o.vcpus, domid: o.domid, store: "ready", console: o.pvConsole ?? true,
      pool: o.pool, uuid: o.uuid,
      host: {
        setUpcall: (k, level) => board.gic.setPpi(k, GUEST_EVTCHN_PPI, level),
        counter: this.clock.now,
        wallMs: () => this.clock.wallMs(),
        // This runs in the domain's worker thread: its lines carry time, level, component and domain as the
        // main thread's (src/common/log.ts).
        log: (line) => { process.stderr.write(formatLogLine("info", "xen", line.replace(/^xen: /, ""), o.domid)); },
        shutdown: (reason) => {
          if (reason === SHUTDOWN_poweroff) board.stop("poweroff", "SCHEDOP_shutdown poweroff");
          else if (reason === SHUTDOWN_reboot) board.stop("reboot", "SCHEDOP_shutdown reboot");
          else board.stop("crashed", `SCHEDOP_shutdown reason ${reason}`);
        },
        block: (k) => { const t = board.vcpus[k]; if (t) t.cpu.stop = STOP_WFI; },
        suspend: (k) => this.takeSuspend(k),
        yield: () => { this.xenPv?.console?.poll(); }, // hvc_xen yields while its output ring is full
      },
    });
  }

  /** `hvc #0xEA1` is a Xen hypercall (xen/arch/arm/traps.c do_trap_hvc); any other immediate is UNDEFINED. */
  private hypercall(k: number, cpu: Cpu, imm: number): boolean {
    if (imm !== XEN_HYPERCALL_TAG || this.xen === null) return false;
    const p2m = this.xen.account, flushes = p2m.tlbFlushes;
    this.xen.hypercall(k, cpu.r, cpu.mmu);
    // Frames left the guest's address space (balloon): vCPUs on other threads drop them too before it returns.
    if (p2m.tlbFlushes !== flushes) this.board.stage2Changed();
    return true;
  }

  /** xentop's I/O counters of this domain's back-ends into out[at ..] (src/hv/io-stats.ts). */
  publishIo(out: Float64Array, at: number): void {
    const pv = this.xenPv;
    if (pv !== null) publishIo(pv.blk, pv.net, out, at);
  }

  /** blkback's I/O threads completed requests that poll() would answer (the worker loop wakes the domain for them). */
  ioCompleted(): boolean {
    const blk = this.xenPv?.blk;
    if (blk !== undefined) for (let i = 0; i < blk.length; i++) if (blk[i]!.completions) return true;
    return false;
  }

  private poll(): number {
    this.xenPv?.console?.poll();
    const blk = this.xenPv?.blk;
    if (blk !== undefined) for (let i = 0; i < blk.length; i++) blk[i]!.service();
    // Rate-limited vifs resume when their window ends; the soonest one bounds the sleep.
    let next = Infinity;
    const nets = this.xenPv?.net;
    if (nets !== undefined) for (let i = 0; i < nets.length; i++) next = Math.min(next, nets[i]!.service());
    return next;
  }

  private stopped(_state: MachineState): void {
    // @releaseDomain for watchers (a store in another thread hears of the stop from the worker's host).
    const store = this.xenPv?.store;
    if (this.xen !== null && store instanceof XenStore) store.domainShutdown(this.xen.domid);
  }
}

/** Runs a restore step, turning a refused state into MachineError MACHINE_STATE (the toolstack's error). */
function stateOrMachineError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof StateError) throw new MachineError("MACHINE_STATE", e.message);
    throw e;
  }
}
