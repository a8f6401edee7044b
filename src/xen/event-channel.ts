/**
 * Event channels with the 2-level ABI (xen/common/event_channel.c, event_2l.c; public/event_channel.h).
 *
 * Ports 1..4095 (port 0 is reserved, as Xen's evtchn_init reserves it). A port is closed, unbound (waiting for
 * `remoteDom`), interdomain, virq or ipi. This single-domain hypervisor supports interdomain connections in
 * two forms: loopback (the guest binds to one of its own unbound ports) and host endpoints — Xeno's backends
 * and XenStore play dom0 and attach to a guest port with hostBind (their "send" is a callback).
 *
 * Delivery (evtchn_2l_set_pending + Arm vcpu_mark_events_pending): set the pending bit; if it was clear and the
 * port is unmasked, set the selector bit in the notify vCPU's vcpu_info; if that was clear, set
 * evtchn_upcall_pending; on its 0→1 transition assert the upcall PPI of that vCPU (EventChannels.raise).
 * FIFO (EVTCHNOP_init_control) answers -ENOSYS, so Linux prints "Using 2-level ABI".
 */
import { DOMID_SELF, EEXIST, EINVAL, ENOENT, ENOSPC, ENOSYS, EPERM, ESRCH } from "./abi.js";
import type { GuestMemory } from "./guest-memory.js";
import type { SharedInfo } from "./shared-info.js";
import { StateError, stateBytes, stateInt, stateInt32s, stateVersion } from "../common/state.js";

/** EVTCHNOP_* sub-ops (event_channel.h). */
export const EVTCHNOP_bind_interdomain = 0, EVTCHNOP_bind_virq = 1, EVTCHNOP_bind_pirq = 2, EVTCHNOP_close = 3,
  EVTCHNOP_send = 4, EVTCHNOP_status = 5, EVTCHNOP_alloc_unbound = 6, EVTCHNOP_bind_ipi = 7, EVTCHNOP_bind_vcpu = 8,
  EVTCHNOP_unmask = 9, EVTCHNOP_reset = 10, EVTCHNOP_init_control = 11, EVTCHNOP_expand_array = 12,
  EVTCHNOP_set_priority = 13;

/** Port states = EVTCHNSTAT_* values (closed 0 … ipi 5), plus the reserved port 0. */
export const ECS_FREE = 0, ECS_UNBOUND = 1, ECS_INTERDOMAIN = 2, ECS_PIRQ = 3, ECS_VIRQ = 4, ECS_IPI = 5,
  ECS_RESERVED = 6;

/** 2-level ABI on 64-bit guests: 64 words of 64 bits (EVTCHN_2L_NR_CHANNELS). */
export const NR_EVTCHN_2L = 4096;
/** NR_VIRQS (xen.h); per-vCPU VIRQs (virq_is_global false): TIMER 0, DEBUG 1, XENOPROF 7, XENPMU 13. */
export const NR_VIRQS = 24;
export const VIRQ_TIMER = 0, VIRQ_DEBUG = 1, VIRQ_CONSOLE = 2, VIRQ_DOM_EXC = 3;
const PER_VCPU_VIRQS = (1 << 0) | (1 << 1) | (1 << 7) | (1 << 13);

/** The host side of an interdomain channel (a backend or XenStore acting as `remoteDom`). */
export interface HostEndpoint {
  remoteDom: number;
  /** The guest sent on its port (EVTCHNOP_send). */
  notify(): void;
  /** The guest closed its port (the channel is gone; the backend should tear down). */
  closed?(): void;
}

/**
 * Saved hypervisor-side event-channel state: per port (0..4095) its state and binding. The pending and mask
 * bits and the selectors live in shared_info/vcpu_info (guest RAM or the shared_info shadow) and are saved
 * there. An interdomain port with remotePort -1 is connected to a host endpoint (a back-end or XenStore):
 * the endpoint object is wiring, given back to restore (or re-attached with hostAttach).
 */
export interface EventChannelsState {
  version: 1;
  vcpus: number;
  /** ECS_* per port (port 0 is ECS_RESERVED). */
  state: Uint8Array;
  notifyVcpu: Int32Array;
  remoteDom: Int32Array;
  /** Loopback peer port, or -1 for a host endpoint (values of closed ports are left-overs, kept as they are). */
  remotePort: Int32Array;
  virqOf: Int32Array;
}

export class EventChannels {
  readonly state = new Uint8Array(NR_EVTCHN_2L);
  readonly notifyVcpu = new Int32Array(NR_EVTCHN_2L);
  readonly remoteDom = new Int32Array(NR_EVTCHN_2L);
  readonly remotePort = new Int32Array(NR_EVTCHN_2L);
  readonly virqOf = new Int32Array(NR_EVTCHN_2L);
  /** virqPort[v * NR_VIRQS + virq] = bound port or 0. */
  private readonly virqPort: Int32Array;
  private readonly host = new Map<number, HostEndpoint>();

  /**
   * `raise(v)`: vCPU v's evtchn_upcall_pending went 0→1 — assert its upcall PPI. `domid`: this domain's id
   * (DOMID_SELF is translated to it).
   */
  constructor(private readonly si: SharedInfo, readonly vcpus: number, readonly domid: number,
    private readonly raise: (vcpu: number) => void) {
    this.state[0] = ECS_RESERVED;
    this.virqPort = new Int32Array(vcpus * NR_VIRQS);
  }

  save(): EventChannelsState {
    return {
      version: 1, vcpus: this.vcpus, state: this.state.slice(), notifyVcpu: this.notifyVcpu.slice(),
      remoteDom: this.remoteDom.slice(), remotePort: this.remotePort.slice(), virqOf: this.virqOf.slice(),
    };
  }

  /**
   * Loads a saved state after checking every port as the EVTCHNOP_* handlers would have left it: a known state,
   * notify vCPU and VIRQ in range, each (vCPU, VIRQ) bound once, loopback pairs pointing at each other.
   * `endpoints` gives the host endpoint of host-connected ports (port → endpoint, remoteDom must match); ports
   * left out stay detached until hostAttach (a guest's send on one is dropped, as to an absent back-end).
   * Rebuilds the VIRQ table. A bad state throws StateError and changes nothing.
   */
  restore(state: EventChannelsState, endpoints: ReadonlyMap<number, HostEndpoint> = new Map()): void {
    const C = "evtchn";
    const s = stateVersion(C, state, 1);
    stateInt(C, "vcpus", s.vcpus, this.vcpus, this.vcpus);
    const N = NR_EVTCHN_2L;
    const st = stateBytes(C, "state", s.state, N);
    const nv = stateInt32s(C, "notifyVcpu", s.notifyVcpu, N);
    const rd = stateInt32s(C, "remoteDom", s.remoteDom, N);
    const rp = stateInt32s(C, "remotePort", s.remotePort, N);
    const vq = stateInt32s(C, "virqOf", s.virqOf, N);
    if (st[0] !== ECS_RESERVED) throw new StateError(C, "state[0]", "port 0 must be reserved");
    const virqPort = new Int32Array(this.vcpus * NR_VIRQS);
    for (let p = 0; p < N; p++) {
      const k = st[p];
      if (p > 0 && k !== ECS_FREE && k !== ECS_UNBOUND && k !== ECS_INTERDOMAIN && k !== ECS_VIRQ && k !== ECS_IPI) {
        throw new StateError(C, `state[${p}]`, `${k} is not a port state`);
      }
      // Int32Array elements are integers: a range test per field, the field's name built only for the error
      // (4 × 4,096 template strings cost a restore ~10 ms in a fresh worker thread: docs/benchmarks.md).
      if (nv[p]! < 0 || nv[p]! >= this.vcpus) stateInt(C, `notifyVcpu[${p}]`, nv[p], 0, this.vcpus - 1);
      if (rd[p]! < 0 || rd[p]! > 0xffff) stateInt(C, `remoteDom[${p}]`, rd[p], 0, 0xffff);
      if (rp[p]! < -1 || rp[p]! >= N) stateInt(C, `remotePort[${p}]`, rp[p], -1, N - 1);
      if (vq[p]! < 0 || vq[p]! >= NR_VIRQS) stateInt(C, `virqOf[${p}]`, vq[p], 0, NR_VIRQS - 1);
      if (k === ECS_VIRQ) {
        const slot = nv[p] * NR_VIRQS + vq[p];
        if (virqPort[slot] !== 0) throw new StateError(C, `virqOf[${p}]`, `VIRQ ${vq[p]} of vCPU ${nv[p]} bound twice`);
        virqPort[slot] = p;
      } else if (k === ECS_INTERDOMAIN && rp[p] >= 0) {
        const q = rp[p];
        if (q === 0 || q === p || rd[p] !== this.domid || st[q] !== ECS_INTERDOMAIN || rp[q] !== p) {
          throw new StateError(C, `remotePort[${p}]`, `loopback peer ${q} does not point back`);
        }
      }
    }
    for (const [p, ep] of endpoints) {
      if (!this.validPort(p) || st[p] !== ECS_INTERDOMAIN || rp[p] !== -1) throw new StateError(C, `endpoints[${p}]`, "not a host-connected port");
      if (ep.remoteDom !== rd[p]) throw new StateError(C, `endpoints[${p}]`, `endpoint of dom ${ep.remoteDom}, port accepts ${rd[p]}`);
    }

    this.state.set(st); this.notifyVcpu.set(nv); this.remoteDom.set(rd); this.remotePort.set(rp); this.virqOf.set(vq);
    this.virqPort.set(virqPort);
    this.host.clear();
    for (const [p, ep] of endpoints) this.host.set(p, ep);
  }

  /**
   * Re-attaches a host endpoint to a host-connected port that has none (after restore): no event is raised
   * (the connection existed all along). Returns 0 or -EINVAL.
   */
  hostAttach(p: number, ep: HostEndpoint): number {
    if (!this.validPort(p) || this.state[p] !== ECS_INTERDOMAIN || this.remotePort[p] !== -1 || this.host.has(p)) return -EINVAL;
    if (ep.remoteDom !== this.remoteDom[p]) return -EINVAL;
    this.host.set(p, ep);
    return 0;
  }

  /** The host endpoints attached now, by port (for a caller that must put them back, e.g. a failed restore). */
  hostEndpoints(): Map<number, HostEndpoint> {
    return new Map(this.host);
  }

  /** Host-connected ports without an endpoint (restored, not re-attached yet): the domain must not run so. */
  detachedHostPorts(): number[] {
    const out: number[] = [];
    for (let p = 1; p < NR_EVTCHN_2L; p++) {
      if (this.state[p] === ECS_INTERDOMAIN && this.remotePort[p] === -1 && !this.host.has(p)) out.push(p);
    }
    return out;
  }

  private self(dom: number): number { return dom === DOMID_SELF ? this.domid : dom; }

  private validPort(p: number): boolean { return p > 0 && p < NR_EVTCHN_2L; }

  private alloc(): number {
    for (let p = 1; p < NR_EVTCHN_2L; p++) if (this.state[p] === ECS_FREE) return p;
    return -1;
  }

  // -------------------------------------------------------------------------------------------------------
  // Delivery

  /** evtchn_2l_set_pending for port p on its notify vCPU. */
  setPending(p: number): void {
    if (this.si.testAndSetPending(p)) return;
    if (!this.si.isMasked(p)) this.deliver(p);
  }

  /** Step 2-3 of 2-level delivery: selector bit, then the upcall flag and the PPI on a 0→1 edge. */
  private deliver(p: number): void {
    const v = this.notifyVcpu[p];
    if (this.si.testAndSetSel(v, p >>> 6)) return;
    this.markPending(v);
  }

  /** vcpu_mark_events_pending: set evtchn_upcall_pending; inject on its 0→1 transition. */
  markPending(v: number): void {
    if (!this.si.testAndSetUpcall(v)) this.raise(v);
  }

  /** evtchn_2l_unmask: clear the mask; if it was set and the port is pending, deliver. */
  unmask(p: number): void {
    if (this.si.testAndClearMask(p) && this.si.isPending(p)) this.deliver(p);
  }

  /** Raises VIRQ `virq` on vCPU v (global VIRQs: v = 0). Returns false when nothing is bound. */
  raiseVirq(virq: number, v = 0): boolean {
    if (virq < 0 || virq >= NR_VIRQS || v < 0 || v >= this.vcpus) return false;
    const p = this.virqPort[v * NR_VIRQS + virq];
    if (p === 0) return false;
    this.setPending(p);
    return true;
  }

  // -------------------------------------------------------------------------------------------------------
  // Host (dom0-side) API for backends and XenStore

  /**
   * Allocates an unbound port accepting `remoteDom` (what the toolstack does for the store and console
   * channels before the guest starts). Returns the port or -errno.
   */
  allocUnbound(remoteDom: number): number {
    const p = this.alloc();
    if (p < 0) return -ENOSPC;
    this.state[p] = ECS_UNBOUND;
    this.remoteDom[p] = this.self(remoteDom);
    this.notifyVcpu[p] = 0;
    return p;
  }

  /** A backend in domain ep.remoteDom connects to the guest's unbound port p (its bind_interdomain). */
  hostBind(p: number, ep: HostEndpoint): number {
    if (!this.validPort(p) || this.state[p] !== ECS_UNBOUND) return -EINVAL;
    if (this.remoteDom[p] !== ep.remoteDom) return -EINVAL;
    this.state[p] = ECS_INTERDOMAIN;
    this.remotePort[p] = -1;
    this.host.set(p, ep);
    this.setPending(p); // as evtchn_bind_interdomain: the new connection starts pending
    return 0;
  }

  /**
   * The backend closes its end (evtchn_close of the remote side): the guest's port p goes back to unbound,
   * waiting for dom `ep.remoteDom` again, as in Xen. Only the endpoint bound there may do it.
   */
  hostUnbind(p: number, ep: HostEndpoint): number {
    if (!this.validPort(p) || this.host.get(p) !== ep) return -EINVAL;
    this.host.delete(p);
    this.state[p] = ECS_UNBOUND;
    this.remoteDom[p] = ep.remoteDom;
    this.remotePort[p] = -1;
    return 0;
  }

  /** The backend notifies the guest on port p (its EVTCHNOP_send). */
  hostNotify(p: number): number {
    if (!this.validPort(p) || !this.host.has(p)) return -EINVAL;
    this.setPending(p);
    return 0;
  }

  // -------------------------------------------------------------------------------------------------------
  // EVTCHNOP_* from the guest (argument structs already copied into `dv`); return value, results in dv.

  allocUnboundOp(dv: DataView): number {
    const dom = this.self(dv.getUint16(0, true)), remote = dv.getUint16(2, true);
    if (dom !== this.domid) return -EPERM; // a DomU may only allocate its own ports (XSM dummy policy)
    const p = this.allocUnbound(remote);
    if (p < 0) return p;
    dv.setUint32(4, p, true);
    return 0;
  }

  bindInterdomainOp(dv: DataView): number {
    const rdom = this.self(dv.getUint16(0, true)), rport = dv.getUint32(4, true);
    // Only loopback: the remote domain is this one (backends connect from the host side with hostBind).
    if (rdom !== this.domid) return -ESRCH;
    if (!this.validPort(rport) || this.state[rport] !== ECS_UNBOUND || this.remoteDom[rport] !== this.domid) return -EINVAL;
    const p = this.alloc();
    if (p < 0) return -ENOSPC;
    this.state[p] = ECS_INTERDOMAIN; this.remoteDom[p] = this.domid; this.remotePort[p] = rport; this.notifyVcpu[p] = 0;
    this.state[rport] = ECS_INTERDOMAIN; this.remotePort[rport] = p;
    dv.setUint32(8, p, true);
    this.setPending(p); // evtchn_bind_interdomain always marks the new local port pending
    return 0;
  }

  bindVirqOp(dv: DataView): number {
    const virq = dv.getUint32(0, true), v = dv.getUint32(4, true);
    if (virq >= NR_VIRQS) return -EINVAL;
    if (v >= this.vcpus) return -ENOENT;
    if ((PER_VCPU_VIRQS & (1 << virq)) === 0 && v !== 0) return -EINVAL; // global VIRQs bind on vCPU 0
    const k = v * NR_VIRQS + virq;
    if (this.virqPort[k] !== 0) return -EEXIST;
    const p = this.alloc();
    if (p < 0) return -ENOSPC;
    this.state[p] = ECS_VIRQ; this.virqOf[p] = virq; this.notifyVcpu[p] = v; this.virqPort[k] = p;
    dv.setUint32(8, p, true);
    return 0;
  }

  bindIpiOp(dv: DataView): number {
    const v = dv.getUint32(0, true);
    if (v >= this.vcpus) return -ENOENT;
    const p = this.alloc();
    if (p < 0) return -ENOSPC;
    this.state[p] = ECS_IPI; this.notifyVcpu[p] = v;
    dv.setUint32(4, p, true);
    return 0;
  }

  close(p: number): number {
    if (!this.validPort(p)) return -EINVAL;
    switch (this.state[p]) {
      case ECS_FREE: return -EINVAL;
      case ECS_VIRQ: this.virqPort[this.notifyVcpu[p] * NR_VIRQS + this.virqOf[p]] = 0; break;
      case ECS_INTERDOMAIN: {
        const ep = this.host.get(p);
        if (ep !== undefined) { this.host.delete(p); ep.closed?.(); break; }
        const peer = this.remotePort[p];
        if (peer < 0) break; // a detached host end (restored, not re-attached)
        // The loopback peer goes back to unbound, accepting this domain again (evtchn_close).
        if (peer !== p && this.state[peer] === ECS_INTERDOMAIN) { this.state[peer] = ECS_UNBOUND; this.remoteDom[peer] = this.domid; }
        break;
      }
      default: break;
    }
    this.state[p] = ECS_FREE;
    this.notifyVcpu[p] = 0;
    this.si.clearPending(p);
    return 0;
  }

  send(p: number): number {
    if (!this.validPort(p)) return -EINVAL;
    switch (this.state[p]) {
      case ECS_INTERDOMAIN: {
        const ep = this.host.get(p);
        if (ep !== undefined) { ep.notify(); return 0; }
        if (this.remotePort[p] < 0) return 0; // a host end not re-attached after a restore: dropped
        this.setPending(this.remotePort[p]);
        return 0;
      }
      case ECS_IPI: this.setPending(p); return 0;
      case ECS_UNBOUND: return 0; // silently dropped
      default: return -EINVAL;
    }
  }

  statusOp(dv: DataView): number {
    const dom = this.self(dv.getUint16(0, true)), p = dv.getUint32(4, true);
    if (dom !== this.domid) return -EPERM;
    if (p >= NR_EVTCHN_2L) return -EINVAL;
    const s = this.state[p];
    dv.setUint32(8, s === ECS_RESERVED ? ECS_FREE : s, true);
    dv.setUint32(12, this.notifyVcpu[p], true);
    dv.setBigUint64(16, 0n, true);
    if (s === ECS_UNBOUND) dv.setUint16(16, this.remoteDom[p], true);
    else if (s === ECS_INTERDOMAIN) {
      const ep = this.host.get(p);
      const hostEnd = ep !== undefined || this.remotePort[p] < 0;
      dv.setUint16(16, ep !== undefined ? ep.remoteDom : hostEnd ? this.remoteDom[p] : this.domid, true);
      dv.setUint32(20, hostEnd ? 0 : this.remotePort[p], true);
    } else if (s === ECS_VIRQ) dv.setUint32(16, this.virqOf[p], true);
    return 0;
  }

  bindVcpu(p: number, v: number): number {
    if (!this.validPort(p)) return -EINVAL;
    if (v >= this.vcpus) return -ENOENT;
    const s = this.state[p];
    if (s === ECS_VIRQ && (PER_VCPU_VIRQS & (1 << this.virqOf[p])) !== 0) return -EINVAL;
    if (s !== ECS_UNBOUND && s !== ECS_INTERDOMAIN && s !== ECS_VIRQ) return -EINVAL;
    if (s === ECS_VIRQ) {
      this.virqPort[this.notifyVcpu[p] * NR_VIRQS + this.virqOf[p]] = 0;
      this.virqPort[v * NR_VIRQS + this.virqOf[p]] = p;
    }
    this.notifyVcpu[p] = v;
    // A pending, unmasked event follows the port to its new vCPU (the new CPU scans it on its next upcall).
    if (this.si.isPending(p) && !this.si.isMasked(p)) this.deliver(p);
    return 0;
  }

  unmaskOp(p: number): number {
    if (!this.validPort(p)) return -EINVAL;
    this.unmask(p);
    return 0;
  }

  /** EVTCHNOP_reset (dom = self): closes every port. */
  reset(dom: number): number {
    if (this.self(dom) !== this.domid) return -EPERM;
    for (let p = 1; p < NR_EVTCHN_2L; p++) if (this.state[p] !== ECS_FREE) this.close(p);
    return 0;
  }
}

/** Sizes of the argument structs (event_channel.h, arm64 layout). */
const ARG_SIZE = [12, 12, 12, 4, 4, 24, 8, 8, 8, 4, 2, 24];

/** HYPERVISOR_event_channel_op(cmd, arg): copies the struct in, runs the op, copies results back. */
export function eventChannelOp(ev: EventChannels, mem: GuestMemory, cmd: number, lo: number, hi: number): number {
  if (cmd === EVTCHNOP_init_control || cmd === EVTCHNOP_expand_array || cmd === EVTCHNOP_set_priority) return -ENOSYS;
  if (cmd >= ARG_SIZE.length) return -ENOSYS;
  const size = ARG_SIZE[cmd];
  mem.copyIn(lo, hi, size);
  const dv = mem.sv;
  let rc: number;
  let out = false;
  switch (cmd) {
    case EVTCHNOP_bind_interdomain: rc = ev.bindInterdomainOp(dv); out = true; break;
    case EVTCHNOP_bind_virq: rc = ev.bindVirqOp(dv); out = true; break;
    case EVTCHNOP_bind_pirq: return -EPERM; // no physical IRQs are routed to a DomU
    case EVTCHNOP_close: return ev.close(dv.getUint32(0, true));
    case EVTCHNOP_send: return ev.send(dv.getUint32(0, true));
    case EVTCHNOP_status: rc = ev.statusOp(dv); out = true; break;
    case EVTCHNOP_alloc_unbound: rc = ev.allocUnboundOp(dv); out = true; break;
    case EVTCHNOP_bind_ipi: rc = ev.bindIpiOp(dv); out = true; break;
    case EVTCHNOP_bind_vcpu: return ev.bindVcpu(dv.getUint32(0, true), dv.getUint32(4, true));
    case EVTCHNOP_unmask: return ev.unmaskOp(dv.getUint32(0, true));
    case EVTCHNOP_reset: return ev.reset(dv.getUint16(0, true));
    default: return -ENOSYS;
  }
  if (out && rc === 0) mem.copyOut(lo, hi, size);
  return rc;
}
