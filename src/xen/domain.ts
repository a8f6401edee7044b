/**
 * One Xen domain's guest-ABI state and the hypercall dispatcher (`HVC #0xEA1`: number in x16, arguments
 * x0..x4, result in x0; xen/arch/arm/traps.c do_trap_hypercall). One module per hypercall family does the
 * work; this file owns the state they share and the toolstack-side set-up (HVM params, store/console
 * channels, wallclock) that libxl and xg_dom_arm.c do for a real DomU.
 *
 * Errors: every guest-supplied pointer goes through GuestMemory, whose faults come back here as GuestFault and
 * become -EFAULT; anything else thrown is a hypervisor bug, reported once and answered -EINVAL so the guest
 * (not the host) sees the failure.
 */
import { EFAULT, EINVAL, ENOSYS, EPERM, HC_console_io, HC_dm_op, HC_event_channel_op,
  HC_grant_table_op, HC_hvm_op, HC_memory_op, HC_multicall, HC_physdev_op, HC_platform_op, HC_sched_op,
  HC_vcpu_op, HC_vm_assist, HC_xen_version, XEN_PAGE_SIZE } from "./abi.js";
import { GuestFault, GuestMemory, addVa } from "./guest-memory.js";
import type { Mmu } from "../mmu/mmu.js";
import { SharedInfo, type SharedInfoState } from "./shared-info.js";
import { EventChannels, eventChannelOp, type EventChannelsState, type HostEndpoint } from "./event-channel.js";
import { GrantTable, grantTableOp, type GrantTableState } from "./grant-table.js";
import { memoryOp } from "./memory-op.js";
import { P2m, type FrameAccount } from "./p2m.js";
import { injectStage2Abort } from "./stage2-abort.js";
import type { Cpu } from "../cpu/arm64/cpu.js";
import { xenVersion } from "./xen-version.js";
import { Runstate, vcpuOp, VCPUOP_register_vcpu_info, type RunstateState } from "./vcpu-op.js";
import { schedOp, type SchedHost } from "./sched-op.js";
import { CALLBACK_IRQ_HI, CALLBACK_IRQ_LO, HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN,
  HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN, HVM_NR_PARAMS, HvmParams, hvmOp, type HvmParamsState } from "./hvm-op.js";
import { StateError, stateBytes, stateInt, stateVersion } from "../common/state.js";
import { MAGIC_CONSOLE, MAGIC_XENSTORE, NR_MAGIC_PAGES, xenAreaLayout, type XenAreaLayout } from "./layout.js";

/** The board services the Xen layer uses (narrow: an IRQ line per vCPU, the scheduler, a clock, a log). */
export interface XenHost extends SchedHost {
  /** Drives vCPU v's event-channel upcall PPI (INTID 31) to `level`. */
  setUpcall(vcpu: number, level: boolean): void;
  /** The domain's system counter (the clock its vCPUs' CNTPCT/CNTVCT read), ticks of 62.5 MHz. */
  counter(): number;
  /** The domain's wall clock, ms since the Unix epoch (default: the host's, Date.now()). */
  wallMs?(): number;
  log(line: string): void;
}

export interface XenDomainOptions {
  /** The domain's RAM buffer (the DT memory node plus the Xen area at its top, see layout.ts). */
  ram: ArrayBufferLike;
  /** RAM is the first ramBytes of `ram` from ramOffset (default: all of it). */
  ramBytes?: number;
  /**
   * Where RAM (guest-physical ramBase) starts in `ram` (default 0). A firmware board keeps its flash before RAM
   * in the same buffer (src/machine/firmware.ts); the flash stays outside the Xen view (GuestMemory byteOffset).
   */
  ramOffset?: number;
  ramBase: number;
  vcpus: number;
  host: XenHost;
  domid?: number;
  /**
   * XenStore as the guest finds it: "late" (default) — HVM_PARAM_STORE_PFN = ~0, the dom0less "xenstore comes
   * later" protocol: Linux binds the store port and waits for an event, boot continues; "ready" — the store
   * page is published at boot (a xenstored must serve it, or xenbus blocks); "none" — PFN 0, no xenbus.
   */
  store?: "late" | "ready" | "none";
  /** Offer the PV console (hvc0) page and port (a console backend must drain it). Default false. */
  console?: boolean;
  /** xen_domain_handle_t (XENVER_guest_handle), 16 bytes. */
  uuid?: Uint8Array;
  /**
   * The frame account (the hypervisor's pool, src/hv/frame-pool.ts) the balloon gives frames back to and takes
   * them from. The caller claims the domain's initial frames (the RAM the DT describes) before building it and
   * releases `account.pages` at its end.
   */
  pool?: FrameAccount;
  /**
   * The RAM buffer already holds a saved domain's RAM (the domain is about to be restored): the constructor
   * then leaves guest memory alone — the magic pages (console and XenStore rings) are not zeroed. Without it,
   * load the saved RAM after construction.
   */
  restoring?: boolean;
}

/**
 * Saved guest-ABI state of a domain (the hypervisor side: whatever lives in guest RAM is saved with RAM and
 * must be in place before restore). The domain's shape and identity (domid, vCPUs, uuid, store/console
 * ports) come from its options and must match. Not here: the memory account (tot/max pages, the populated
 * map: memory-op.ts, saved by the ballooning side), the xenbus ring and console back-end (their own states,
 * xenbus-ring.ts and src/backends), hypercall counters and trace state (diagnostics).
 */
export interface XenDomainState {
  version: 1;
  domid: number;
  vcpus: number;
  uuid: Uint8Array;
  storePort: number;
  consolePort: number;
  vmAssist: number;
  sharedInfo: SharedInfoState;
  evtchn: EventChannelsState;
  gnttab: GrantTableState;
  params: HvmParamsState;
  runstate: RunstateState;
}

/** Wiring a restore needs: the host endpoints of host-connected ports (see EventChannels.restore). */
export interface XenDomainRestoreArgs {
  endpoints?: ReadonlyMap<number, HostEndpoint>;
}

/** VMASST_TYPE_runstate_update_flag, the only vm_assist type Arm accepts. */
const VMASST_RUNSTATE_UPDATE_FLAG = 5;

/** Counter ticks to nanoseconds (CNTFRQ 62.5 MHz → 16 ns per tick). */
const NS_PER_TICK = 16;
/** Rate limit of the unknown-hypercall trace: lines per window. */
const TRACE_LINES = 10, TRACE_WINDOW_MS = 10_000;

export class XenDomain {
  readonly domid: number;
  readonly vcpus: number;
  readonly mem: GuestMemory;
  readonly layout: XenAreaLayout;
  readonly sharedInfo: SharedInfo;
  readonly evtchn: EventChannels;
  readonly gnttab: GrantTable;
  readonly params = new HvmParams();
  readonly runstate: Runstate;
  /** The P2M: which RAM frames are the guest's, tot_pages/max_pages; `account.map` is every MMU's stage 2. */
  readonly account: P2m;
  readonly uuid: Uint8Array;
  /** Ports the "toolstack" allocated: XenStore and (if enabled) console; 0 = none. */
  readonly storePort: number;
  readonly consolePort: number;
  /** vm_assist types enabled (bit mask). */
  vmAssist = 0;
  /** Hypercalls served, by number (diagnostics, tests). */
  readonly counts = new Map<number, number>();
  private traceWindow = 0;
  private traceLines = 0;
  private traceDropped = 0;
  private readonly host: XenHost;
  /** Argument scratch: x0..x4 as (lo, hi) pairs; reused per call (no allocation). */
  private readonly args = new Int32Array(10);
  private readonly entry = new Uint8Array(64);
  private readonly entryView = new DataView(this.entry.buffer);
  private inMulticall = false;

  constructor(o: XenDomainOptions) {
    this.host = o.host;
    this.domid = o.domid ?? 1;
    this.vcpus = o.vcpus;
    const ramOffset = o.ramOffset ?? 0;
    const bufferBytes = o.ramBytes ?? o.ram.byteLength - ramOffset;
    this.layout = xenAreaLayout(o.ramBase, bufferBytes);
    this.mem = new GuestMemory(o.ram, o.ramBase, this.layout.ramBytes, bufferBytes, ramOffset);
    this.account = new P2m(this.mem.u8, o.ramBase, this.layout.ramBytes, o.pool ?? null, this.mem.mmuPageOffset);
    this.mem.stage2 = this.account.map;
    this.sharedInfo = new SharedInfo(this.mem, o.vcpus);
    this.evtchn = new EventChannels(this.sharedInfo, o.vcpus, this.domid, (v) => this.host.setUpcall(v, true));
    this.gnttab = new GrantTable(this.mem, this.domid);
    const start = o.host.counter() * NS_PER_TICK;
    this.runstate = new Runstate(o.vcpus, () => this.host.counter() * NS_PER_TICK, start);
    this.uuid = o.uuid ?? defaultUuid(this.domid);

    this.updateWallclock();

    // What libxl/xg_dom_arm.c set up: zeroed magic pages, store then console channels, HVM params.
    const magicOff = this.mem.frameOffset(this.layout.magicGfn);
    if (o.restoring !== true) this.mem.u8.fill(0, magicOff, magicOff + NR_MAGIC_PAGES * XEN_PAGE_SIZE);
    this.params.set(HVM_PARAM_CALLBACK_IRQ, CALLBACK_IRQ_LO, CALLBACK_IRQ_HI);
    const store = o.store ?? "late";
    this.storePort = store === "none" ? 0 : this.evtchn.allocUnbound(0);
    this.params.setNumber(HVM_PARAM_STORE_EVTCHN, this.storePort);
    this.params.setNumber(HVM_PARAM_STORE_PFN, store === "none" ? 0 : store === "late" ? -1 : this.storeGfn);
    this.consolePort = o.console ? this.evtchn.allocUnbound(0) : 0;
    this.params.setNumber(HVM_PARAM_CONSOLE_EVTCHN, this.consolePort);
    this.params.setNumber(HVM_PARAM_CONSOLE_PFN, o.console ? this.layout.magicGfn + MAGIC_CONSOLE : 0);
  }

  /**
   * Sets shared_info's wallclock: wall time when the virtual counter read 0. At creation, and after a restore
   * if the caller wants the guest's wallclock to follow host time (Xen updates it on resume); it writes the
   * shared_info page, so a restore alone does not call it.
   */
  /** Wallclock: wall time when the virtual counter read 0 (the domain clock's wall time, else the host's). */
  updateWallclock(): void {
    const wallNs = (this.host.wallMs?.() ?? Date.now()) * 1e6 - this.host.counter() * NS_PER_TICK;
    this.sharedInfo.setWallclock(Math.floor(wallNs / 1e9), Math.floor(wallNs % 1e9));
  }

  /**
   * Buffer pages Xen and the back-ends write in place, without marking the dirty log (GuestMemory.dirty):
   * the Xen area (grant window, console and store rings), shared_info and every vcpu_info page, and the pages
   * granted writable to dom0 (rings, persistent grants, rx buffers). A live migration sends these again in its
   * last, paused round. Page numbers are buffer page numbers (pfns of the save stream).
   */
  hostPages(): number[] {
    const pages = new Set<number>();
    for (let p = this.layout.ramBytes >>> 12; p < this.mem.bufferBytes >>> 12; p++) pages.add(p);
    if (this.sharedInfo.gfn >= 0) { const o = this.mem.frameOffset(this.sharedInfo.gfn); if (o >= 0) pages.add(o >>> 12); }
    for (const gpa of this.sharedInfo.viGpa) {
      const o = gpa >= 0 ? this.mem.physOffset(gpa, 1) : -1;
      if (o >= 0) pages.add(o >>> 12);
    }
    this.gnttab.writableGrantedPages(0, pages);
    return [...pages].sort((a, b) => a - b);
  }

  save(): XenDomainState {
    return {
      version: 1, domid: this.domid, vcpus: this.vcpus, uuid: this.uuid.slice(), storePort: this.storePort,
      consolePort: this.consolePort, vmAssist: this.vmAssist, sharedInfo: this.sharedInfo.save(),
      evtchn: this.evtchn.save(), gnttab: this.gnttab.save(), params: this.params.save(), runstate: this.runstate.save(),
    };
  }

  /**
   * Loads a saved state into this domain, built with the same options and with its RAM already holding the
   * saved RAM. Every part is checked (its own restore checks what a guest could have asked for; the HVM params
   * must name this domain's store/console ports and pages); on any error the parts already loaded are put
   * back and StateError is thrown: never a half-restored domain. Afterwards each vCPU whose vcpu_info has
   * evtchn_upcall_pending set has its upcall line raised (the others keep the level the GIC's state has).
   */
  restore(state: XenDomainState, args: XenDomainRestoreArgs = {}): void {
    const C = "xen-domain";
    const s = stateVersion(C, state, 1);
    stateInt(C, "domid", s.domid, this.domid, this.domid);
    stateInt(C, "vcpus", s.vcpus, this.vcpus, this.vcpus);
    const uuid = stateBytes(C, "uuid", s.uuid, 16);
    if (uuid.some((b, i) => b !== this.uuid[i])) throw new StateError(C, "uuid", "state of another domain");
    stateInt(C, "storePort", s.storePort, this.storePort, this.storePort);
    stateInt(C, "consolePort", s.consolePort, this.consolePort, this.consolePort);
    const vmAssist = stateInt(C, "vmAssist", s.vmAssist, 0, 1 << VMASST_RUNSTATE_UPDATE_FLAG);
    if (vmAssist !== 0 && vmAssist !== 1 << VMASST_RUNSTATE_UPDATE_FLAG) throw new StateError(C, "vmAssist", `${vmAssist}`);

    // Each part checks all of its state before it changes anything; if a later part (or the cross-check of
    // the params) refuses, every part is put back from what it held before (its own save always loads).
    const before = { si: this.sharedInfo.save(), ev: this.evtchn.save(), eps: this.evtchn.hostEndpoints(),
      gt: this.gnttab.save(), hp: this.params.save(), rs: this.runstate.save() };
    try {
      this.sharedInfo.restore(s.sharedInfo as SharedInfoState);
      this.evtchn.restore(s.evtchn as EventChannelsState, args.endpoints);
      this.gnttab.restore(s.gnttab as GrantTableState);
      this.params.restore(s.params as HvmParamsState);
      this.runstate.restore(s.runstate as RunstateState);
      this.checkParams(C);
    } catch (e) {
      this.sharedInfo.restore(before.si);
      this.evtchn.restore(before.ev, before.eps);
      this.gnttab.restore(before.gt);
      this.params.restore(before.hp);
      this.runstate.restore(before.rs);
      throw e;
    }
    this.vmAssist = vmAssist;
    // Raised where evtchn_upcall_pending is set, never lowered: a running domain lowers the line only when the
    // guest ends the interrupt (resampleUpcall at EOI), so between the handler clearing the flag and its EOI
    // the line is legitimately high with the flag clear. The GIC's own restored state holds that level;
    // lowering it here made save → restore → save differ in PPI 31's level when a save fell in that window
    // (seen with vCPUs on threads of their own, whose handlers run while the home saves).
    for (let v = 0; v < this.vcpus; v++) if (this.sharedInfo.upcallPending(v)) this.host.setUpcall(v, true);
  }

  /** The HVM params a restored domain has must be the ones its toolstack set (only STORE_PFN changes, once). */
  private checkParams(C: string): void {
    const p = this.params;
    const want = (i: number, lo: number, hi: number, alt?: [number, number]): void => {
      if ((p.lo(i) === lo >>> 0 && p.hi(i) === hi >>> 0) || (alt !== undefined && p.lo(i) === alt[0] >>> 0 && p.hi(i) === alt[1] >>> 0)) return;
      throw new StateError(C, `params.values[${2 * i}]`, `HVM param ${i} = ${p.hi(i)}:${p.lo(i)} is not what this domain was given`);
    };
    const num = (x: number): [number, number] => x < 0 ? [-1, -1] : [x >>> 0, Math.floor(x / 4294967296)];
    want(HVM_PARAM_CALLBACK_IRQ, CALLBACK_IRQ_LO, CALLBACK_IRQ_HI);
    want(HVM_PARAM_STORE_EVTCHN, ...num(this.storePort));
    want(HVM_PARAM_CONSOLE_EVTCHN, ...num(this.consolePort));
    if (this.storePort === 0) want(HVM_PARAM_STORE_PFN, 0, 0);
    else want(HVM_PARAM_STORE_PFN, ...num(-1), num(this.storeGfn));
    want(HVM_PARAM_CONSOLE_PFN, ...num(this.consolePort !== 0 ? this.consoleGfn : 0));
    const known = [HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_STORE_PFN, HVM_PARAM_CONSOLE_PFN];
    for (let i = 0; i < HVM_NR_PARAMS; i++) if (!known.includes(i)) want(i, 0, 0);
  }

  /** Guest frame of the XenStore ring page. */
  get storeGfn(): number { return this.layout.magicGfn + MAGIC_XENSTORE; }
  /** Guest frame of the PV console ring page. */
  get consoleGfn(): number { return this.layout.magicGfn + MAGIC_CONSOLE; }

  /**
   * For XenStore (dom0): publishes the store page (late init: sets HVM_PARAM_STORE_PFN) and connects to the
   * guest's store port; the connection marks the port pending, which wakes Linux's xenbus_late_init.
   */
  connectStore(ep: HostEndpoint): number {
    if (this.storePort === 0) return -EINVAL;
    this.params.setNumber(HVM_PARAM_STORE_PFN, this.storeGfn);
    return this.evtchn.hostBind(this.storePort, ep);
  }

  /** Stage-2 aborts injected (accesses to frames the balloon gave back), for diagnostics and tests. */
  stage2Aborts = 0;

  /**
   * A stage-2 fault of vCPU `c` (its MMU's fault record: a frame not in the P2M): injected into the guest as
   * Xen does (stage2-abort.ts), and traced rate-limited.
   */
  stage2Abort(c: Cpu): void {
    const m = c.mmu;
    this.stage2Aborts++;
    this.trace(`stage-2 abort: ${m.faultFetch ? "fetch" : m.faultWrite ? "write" : "read"} at gpa ${m.faultIpa.toString(16)}` +
      `${m.faultS1ptw ? " (stage-1 walk)" : ""} from EL${c.el}, va ${(m.faultVaHi >>> 0).toString(16)}:${(m.faultVaLo >>> 0).toString(16).padStart(8, "0")}: abort injected`);
    injectStage2Abort(c);
  }

  /** Current level of vCPU v's upcall line (evtchn_upcall_pending of its vcpu_info). */
  upcallLevel(v: number): boolean { return this.sharedInfo.upcallPending(v); }

  /** Re-drives vCPU v's upcall PPI from evtchn_upcall_pending (at EOI, so a cleared flag lowers the line). */
  resampleUpcall(v: number): void { this.host.setUpcall(v, this.sharedInfo.upcallPending(v)); }

  // ---------------------------------------------------------------------------------------------------------
  // Dispatch

  /** Serves `HVC #0xEA1` from vCPU `vcpu`: reads x16 and x0..x4 from `r`, writes the result to x0. */
  hypercall(vcpu: number, r: Int32Array, mmu: Mmu): void {
    const a = this.args;
    for (let i = 0; i < 10; i++) a[i] = r[i];
    const nr = r[32] >>> 0, nrHi = r[33];
    this.mem.mmu = mmu;
    const rc = nrHi !== 0 ? -ENOSYS : this.call(vcpu, nr, a);
    r[0] = rc | 0;
    r[1] = rc < 0 ? -1 : Math.floor(rc / 4294967296) | 0;
  }

  /** Runs hypercall `nr` with arguments `a` (lo, hi pairs); returns its result. Never throws. */
  call(vcpu: number, nr: number, a: Int32Array): number {
    this.counts.set(nr, (this.counts.get(nr) ?? 0) + 1);
    try {
      return this.dispatch(vcpu, nr, a);
    } catch (e) {
      if (e instanceof GuestFault) return -e.errno;
      this.trace(`hypercall ${nr} (x0=${(a[0] >>> 0).toString(16)}) failed inside the hypervisor: ${(e as Error)?.stack ?? e}`);
      return -EINVAL;
    }
  }

  private dispatch(vcpu: number, nr: number, a: Int32Array): number {
    const m = this.mem;
    const x0 = a[0] >>> 0, x0hi = a[1];
    switch (nr) {
      case HC_xen_version: return xenVersion(m, this.uuid, x0hi === 0 ? x0 : -1, a[2], a[3]);
      case HC_memory_op: return memoryOp(m, this.sharedInfo, this.gnttab, this.account, this.domid, x0, a[2], a[3]);
      case HC_grant_table_op:
        return grantTableOp(this.gnttab, m, x0hi === 0 ? x0 : -1, a[2], a[3], a[5] !== 0 ? -1 : a[4] >>> 0);
      case HC_vcpu_op: {
        const id = a[3] !== 0 ? -1 : a[2] >>> 0;
        const rc = vcpuOp(m, this.sharedInfo, this.runstate, x0hi === 0 ? x0 : -1, id, a[4], a[5]);
        if (rc === 0 && x0 === VCPUOP_register_vcpu_info) this.host.setUpcall(id, true); // the spurious upcall
        return rc;
      }
      case HC_sched_op: return schedOp(m, this.sharedInfo, this.host, vcpu, x0hi === 0 ? x0 : -1, a[2], a[3]);
      case HC_event_channel_op: return eventChannelOp(this.evtchn, m, x0hi === 0 ? x0 : -1, a[2], a[3]);
      case HC_hvm_op: return hvmOp(m, this.params, this.domid, x0hi === 0 ? x0 : -1, a[2], a[3]);
      case HC_vm_assist: {
        // VMASST_CMD_enable 0 / disable 1; Arm accepts only VMASST_TYPE_runstate_update_flag (5).
        const type = a[2] >>> 0;
        if (type !== 5 || a[3] !== 0 || x0hi !== 0 || x0 > 1) return -EINVAL;
        this.vmAssist = x0 === 0 ? this.vmAssist | (1 << type) : this.vmAssist & ~(1 << type);
        return 0;
      }
      case HC_multicall: return this.multicall(vcpu, a[0], a[1], a[3] !== 0 ? -1 : a[2] >>> 0);
      case HC_physdev_op: return -ENOSYS; // xen/arch/arm/physdev.c: no physdev ops for a DomU
      case HC_console_io: case HC_platform_op: case HC_dm_op: return -EPERM; // XSM dummy policy: privileged
      default:
        this.trace(`unknown hypercall ${nr} (x0=${x0.toString(16)}) from vCPU ${vcpu}: -ENOSYS`);
        return -ENOSYS;
    }
  }

  /**
   * HYPERVISOR_multicall(call_list, nr_calls): struct multicall_entry (arm64, 64 bytes) = op u64 @0,
   * result i64 @8, args[6] u64 @16. Each entry runs as its own hypercall; its result is written back.
   * Nested multicalls are refused per entry (-EINVAL), as Xen does.
   */
  private multicall(vcpu: number, lo: number, hi: number, n: number): number {
    if (this.inMulticall) return -EINVAL;
    if (n < 0 || n > 4096) return -EINVAL;
    const args = new Int32Array(10);
    const ev = this.entryView;
    this.inMulticall = true;
    try {
      for (let i = 0; i < n; i++) {
        const off = i * 64;
        const [elo, ehi] = addVa(lo, hi, off);
        this.mem.copyIn(elo, ehi, 64, this.entry);
        for (let k = 0; k < 10; k++) args[k] = ev.getInt32(16 + k * 4, true);
        const op = ev.getUint32(0, true), opHi = ev.getUint32(4, true);
        const rc = opHi !== 0 || op === HC_multicall ? -EINVAL : this.call(vcpu, op, args);
        ev.setInt32(8, rc | 0, true);
        ev.setInt32(12, rc < 0 ? -1 : Math.floor(rc / 4294967296), true);
        const [rlo, rhi] = addVa(elo, ehi, 8);
        this.mem.copyOut(rlo, rhi, 8, this.entry.subarray(8, 16));
      }
    } catch (e) {
      if (e instanceof GuestFault) return -EFAULT;
      throw e;
    } finally {
      this.inMulticall = false;
    }
    return 0;
  }

  /** One-line trace, at most TRACE_LINES per TRACE_WINDOW_MS (the count of dropped lines follows). */
  trace(line: string): void {
    const now = Date.now();
    if (now - this.traceWindow > TRACE_WINDOW_MS) {
      if (this.traceDropped > 0) this.host.log(`xen: (${this.traceDropped} trace lines suppressed)`);
      this.traceWindow = now; this.traceLines = 0; this.traceDropped = 0;
    }
    if (this.traceLines++ < TRACE_LINES) this.host.log(`xen: ${line}`);
    else this.traceDropped++;
  }
}

function defaultUuid(domid: number): Uint8Array {
  const u = new Uint8Array(16);
  u.set([0x78, 0x65, 0x6e, 0x6f]); // "xeno"
  u[15] = domid & 0xff;
  return u;
}

