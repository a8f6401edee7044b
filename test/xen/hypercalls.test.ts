/**
 * Unit tests of the Xen hypercall families with crafted guest memory. The test MMU has stage 1 off, so guest
 * "virtual" pointers equal guest-physical addresses; RAM is 8 MiB at 0x4000_0000 (the top 1 MiB is the Xen
 * area). Each family is checked with valid arguments and with bad pointers, indexes and sizes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Mmu } from "../../src/mmu/mmu.js";
import { FramePool } from "../../src/hv/frame-pool.js";
import { XenDomain, type XenHost } from "../../src/xen/domain.js";
import { withUpcallResample } from "../../src/xen/upcall.js";
import { hypervisorDtNode, xenAreaLayout, MAX_GRANT_FRAMES } from "../../src/xen/layout.js";
import { boardDtb } from "../../src/machine/board-fdt.js";
import { readFdt, findNode, getProp } from "../../src/machine/fdt.js";
import { DOMID_SELF, EACCES, EDOM, EFAULT, EILSEQ, EINVAL, EOPNOTSUPP, ENOENT, ENOSYS, EPERM, ESRCH, EEXIST, HC_event_channel_op, HC_grant_table_op,
  HC_hvm_op, HC_memory_op, HC_multicall, HC_physdev_op, HC_sched_op, HC_vcpu_op, HC_vm_assist, HC_xen_version,
  XEN_FEATURES_SUBMAP0 } from "../../src/xen/abi.js";

const BASE = 0x40000000, RAM = 8 << 20;
/** Scratch struct area and a second page for arrays (guest-physical = guest-virtual here). */
const ARG = BASE + 0x100000, ARR = BASE + 0x101000;
const SI_GFN = (BASE + 0x200000) / 4096, VI_GFN = (BASE + 0x201000) / 4096;
/** An address that is not RAM (below RAM_BASE). */
const BAD = 0x1000;

interface Harness { d: XenDomain; mmu: Mmu; dv: DataView; u8: Uint8Array; host: FakeHost }

class FakeHost implements XenHost {
  lines = new Map<number, boolean>();
  raised: number[] = [];
  shutdowns: number[] = [];
  blocked: number[] = [];
  logs: string[] = [];
  setUpcall(v: number, level: boolean): void { this.lines.set(v, level); if (level) this.raised.push(v); }
  counter(): number { return 62_500_000; } // 1 s after counter 0
  log(line: string): void { this.logs.push(line); }
  shutdown(reason: number): void { this.shutdowns.push(reason); }
  block(v: number): void { this.blocked.push(v); }
  yield(): void {}
}

function setup(opts: { vcpus?: number; store?: "late" | "ready" | "none"; console?: boolean; pool?: FramePool } = {}): Harness {
  const ram = new SharedArrayBuffer(RAM);
  const host = new FakeHost();
  const d = new XenDomain({ ram, ramBase: BASE, vcpus: opts.vcpus ?? 2, host, store: opts.store, console: opts.console, pool: opts.pool });
  const mmu = new Mmu(ram, BASE); // SCTLR_EL1.M = 0: VA = PA
  return { d, mmu, dv: new DataView(ram), u8: new Uint8Array(ram), host };
}

const TWO32 = 4294967296;
/** Issues hypercall `nr` from vCPU `vcpu` with numeric arguments; returns x0 as a signed number. */
function hc(h: Harness, nr: number, args: number[], vcpu = 0): number {
  const r = new Int32Array(80);
  args.forEach((a, i) => { r[2 * i] = a >>> 0; r[2 * i + 1] = Math.floor(a / TWO32) | 0; });
  r[32] = nr;
  h.d.hypercall(vcpu, r, h.mmu);
  return r[1] === -1 ? r[0] : (r[1] >>> 0) * TWO32 + (r[0] >>> 0);
}
const off = (gpa: number): number => gpa - BASE;

test("xen_version: version, features, strings, privileged and bad pointers", () => {
  const h = setup();
  assert.equal(hc(h, HC_xen_version, [0, 0]), (4 << 16) | 17);
  h.dv.setUint32(off(ARG), 0, true);
  assert.equal(hc(h, HC_xen_version, [6, ARG]), 0);
  assert.equal(h.dv.getUint32(off(ARG) + 4, true), XEN_FEATURES_SUBMAP0);
  assert.equal(XEN_FEATURES_SUBMAP0, 0x16005);
  h.dv.setUint32(off(ARG), 1, true);
  assert.equal(hc(h, HC_xen_version, [6, ARG]), -EINVAL);
  assert.equal(hc(h, HC_xen_version, [1, ARG]), 0);
  assert.equal(Buffer.from(h.u8.subarray(off(ARG), off(ARG) + 7)).toString(), ".0-xeno");
  assert.equal(hc(h, HC_xen_version, [3, ARG]), 0);
  assert.match(Buffer.from(h.u8.subarray(off(ARG), off(ARG) + 32)).toString(), /^xen-3\.0-aarch64 /);
  assert.equal(hc(h, HC_xen_version, [7, 0]), 4096);
  assert.equal(hc(h, HC_xen_version, [8, ARG]), 0);
  assert.equal(hc(h, HC_xen_version, [9, ARG]), -EPERM);
  assert.equal(hc(h, HC_xen_version, [6, BAD]), -EFAULT);
  assert.equal(hc(h, HC_xen_version, [3, BASE + RAM - 100]), -EFAULT); // runs off the end of RAM
  assert.equal(hc(h, HC_xen_version, [77, ARG]), -ENOSYS);
});

test("unknown hypercalls: -ENOSYS with a rate-limited trace; physdev -ENOSYS; vm_assist type 5 only", () => {
  const h = setup();
  for (let i = 0; i < 50; i++) assert.equal(hc(h, 99, [1]), -ENOSYS);
  assert.equal(h.host.logs.length, 10);
  assert.match(h.host.logs[0], /unknown hypercall 99/);
  assert.equal(hc(h, HC_physdev_op, [0, ARG]), -ENOSYS);
  assert.equal(hc(h, HC_vm_assist, [0, 5]), 0);
  assert.equal(hc(h, HC_vm_assist, [0, 2]), -EINVAL);
});

test("memory_op add_to_physmap: shared_info and grant frames, validated", () => {
  const h = setup();
  const xatp = (dom: number, space: number, idx: number, gpfn: number): number => {
    h.dv.setUint16(off(ARG), dom, true); h.dv.setUint16(off(ARG) + 2, 0, true);
    h.dv.setUint32(off(ARG) + 4, space, true);
    h.dv.setBigUint64(off(ARG) + 8, BigInt(idx), true); h.dv.setBigUint64(off(ARG) + 16, BigInt(gpfn), true);
    return hc(h, HC_memory_op, [7, ARG]);
  };
  h.u8.fill(0xaa, off(SI_GFN * 4096), off(SI_GFN * 4096) + 4096);
  assert.equal(xatp(DOMID_SELF, 0, 0, SI_GFN), 0);
  const si = off(SI_GFN * 4096);
  assert.equal(h.u8[si + 100], 0, "the frame now holds the hypervisor's shared_info");
  assert.equal(h.dv.getUint32(si + 1072, true) % 2, 0, "wc_version even");
  const wcSec = h.dv.getUint32(si + 1076, true);
  assert.ok(Math.abs(wcSec - (Date.now() / 1000 - 1)) < 5, `wallclock ${wcSec}`);
  assert.equal(xatp(DOMID_SELF, 0, 1, SI_GFN), -EINVAL);
  assert.equal(xatp(DOMID_SELF, 0, 0, 0x10), -EINVAL, "not RAM");
  assert.equal(xatp(DOMID_SELF, 0, 0, (BASE + RAM - 4096) / 4096), -EINVAL, "the Xen area is not RAM");
  assert.equal(xatp(5, 0, 0, SI_GFN), -ESRCH);
  const win = h.d.layout.gnttabBase / 4096;
  assert.equal(xatp(DOMID_SELF, 1, 0, win), 0);
  assert.equal(xatp(DOMID_SELF, 1, MAX_GRANT_FRAMES - 1, win + MAX_GRANT_FRAMES - 1), 0);
  assert.equal(h.d.gnttab.nrFrames, MAX_GRANT_FRAMES);
  assert.equal(xatp(DOMID_SELF, 1, MAX_GRANT_FRAMES, win), -EINVAL);
  assert.equal(xatp(DOMID_SELF, 1, 0x80000000, win), -EINVAL, "v2 status frames");
  assert.equal(xatp(DOMID_SELF, 1, 0, 2 ** 40), -EINVAL);
  assert.equal(xatp(DOMID_SELF, 9, 0, win), -EINVAL);
  assert.equal(hc(h, HC_memory_op, [7, BAD]), -EFAULT);
  // A grant entry written by the guest is visible to a backend through the table.
  h.dv.setUint16(off(win * 4096) + 8 * 5, 1, true);
  h.dv.setUint32(off(win * 4096) + 8 * 5 + 4, 0x41234, true);
  const e = h.d.gnttab.entryOffset(5);
  assert.equal(h.dv.getUint32(e + 4, true), 0x41234);
  assert.equal(h.d.gnttab.entryOffset(MAX_GRANT_FRAMES * 512), -1);
});

test("memory_op add_to_physmap_batch: a result per entry, 0 returned; foreign frames refused; Xen's whole-call refusals", () => {
  const pool = new FramePool(0);
  const h = setup({ pool });
  const IDX = ARR, GPFN = ARR + 0x400, ERRS = ARR + 0x800;
  const batch = (o: { dom?: number; space: number; foreign?: number; entries: [number, number][]; start?: number;
    idxs?: number; gpfns?: number; errs?: number; size?: number }): number => {
    h.dv.setUint16(off(ARG), o.dom ?? DOMID_SELF, true);
    h.dv.setUint16(off(ARG) + 2, o.space, true);
    h.dv.setUint16(off(ARG) + 4, o.size ?? o.entries.length, true);
    h.dv.setUint16(off(ARG) + 6, o.foreign ?? 0, true);
    h.dv.setBigUint64(off(ARG) + 8, BigInt(o.idxs ?? IDX), true);
    h.dv.setBigUint64(off(ARG) + 16, BigInt(o.gpfns ?? GPFN), true);
    h.dv.setBigUint64(off(ARG) + 24, BigInt(o.errs ?? ERRS), true);
    o.entries.forEach(([idx, gpfn], i) => {
      h.dv.setBigUint64(off(IDX) + 8 * i, BigInt(idx), true);
      h.dv.setBigUint64(off(GPFN) + 8 * i, BigInt(gpfn), true);
      h.dv.setInt32(off(ERRS) + 4 * i, 0x5555, true);
    });
    return hc(h, HC_memory_op, [23 + ((o.start ?? 0) << 6), ARG]);
  };
  const errs = (n: number): number[] => Array.from({ length: n }, (_, i) => h.dv.getInt32(off(ERRS) + 4 * i, true));
  // A frame the balloon gave back: where Linux's privcmd asks for a foreign frame to appear.
  const g = (BASE + 0x300000) / 4096;
  h.u8.fill(0xaa, off(g * 4096), off(g * 4096) + 4096);
  h.dv.setBigUint64(off(ARR + 0xc00), BigInt(g), true);
  h.dv.setBigUint64(off(ARG), BigInt(ARR + 0xc00), true); h.dv.setBigUint64(off(ARG) + 8, 1n, true);
  h.dv.setUint32(off(ARG) + 16, 0, true); h.dv.setUint32(off(ARG) + 20, 0, true); h.dv.setUint16(off(ARG) + 24, DOMID_SELF, true);
  assert.equal(hc(h, HC_memory_op, [1, ARG]), 1, "decrease_reservation of one frame");
  const pages = h.d.account.pages, free = pool.freeFrames;
  // Foreign frames (XENMAPSPACE_gmfn_foreign = 4): every entry refused, the call itself returns 0.
  assert.equal(batch({ space: 4, foreign: 0, entries: [[1, g], [2, g + 1]] }), 0);
  assert.deepEqual(errs(2), [-EPERM, -EPERM], "Domain-0's frames: a DomU has no rights over them");
  assert.equal(batch({ space: 4, foreign: DOMID_SELF, entries: [[1, g]] }), 0);
  assert.deepEqual(errs(1), [-EINVAL], "oneself by DOMID_SELF");
  assert.equal(batch({ space: 4, foreign: 0, dom: 1 /* the test domain's own id */, entries: [[1, g]] }), 0);
  assert.deepEqual(errs(1), [-EPERM]);
  assert.equal(batch({ space: 4, foreign: 1, entries: [[1, g]] }), 0);
  assert.deepEqual(errs(1), [-ESRCH], "oneself by number (Xen's get_pg_owner)");
  assert.equal(h.d.account.isMapped(g), false, "the given-back frame stays unmapped");
  assert.equal(h.u8[off(g * 4096) + 9], 0, "and zero");
  assert.equal(h.d.account.pages, pages);
  assert.equal(pool.freeFrames, free, "and in the pool");
  // Other spaces, entry by entry as add_to_physmap: shared_info, a grant frame, a bad index, a given-back frame.
  const win = h.d.layout.gnttabBase / 4096;
  assert.equal(batch({ space: 0, entries: [[0, SI_GFN]] }), 0);
  assert.deepEqual(errs(1), [0]);
  assert.equal(h.d.sharedInfo.gfn, SI_GFN);
  assert.equal(batch({ space: 1, entries: [[0, win], [MAX_GRANT_FRAMES, win], [1, g], [1, win + 1]] }), 0);
  assert.deepEqual(errs(4), [0, -EINVAL, -EINVAL, 0]);
  assert.equal(batch({ space: 2, entries: [[0, SI_GFN]] }), 0);
  assert.deepEqual(errs(1), [-EOPNOTSUPP], "XENMAPSPACE_gmfn");
  // Whole-call refusals: gmfn_range, another domain, dev_mmio (not the hardware domain), bad start extents.
  assert.equal(batch({ space: 3, entries: [[0, g]] }), -EOPNOTSUPP);
  assert.equal(batch({ space: 4, dom: 5, entries: [[0, g]] }), -ESRCH);
  assert.equal(batch({ space: 5, entries: [[0, g]] }), -EACCES);
  assert.equal(batch({ space: 4, entries: [[0, g]], start: 2 }), -EILSEQ);
  assert.equal(batch({ space: 4, entries: [[0, g]], start: 1 }), -EILSEQ);
  assert.equal(batch({ space: 4, entries: [] }), 0, "size 0");
  assert.equal(batch({ space: 4, entries: [[0, g], [0, g]], start: 1 }), 0, "a continuation's start extent is honoured");
  assert.deepEqual(errs(2), [0x5555, -EPERM]);
  assert.equal(hc(h, HC_memory_op, [23 + (0x10000 << 6), ARG]), -EDOM, "a start extent past u16");
  // Unreadable or unwritable arrays: -EFAULT, entries before it done.
  assert.equal(batch({ space: 4, entries: [[0, g]], idxs: BAD }), -EFAULT);
  assert.equal(batch({ space: 4, entries: [[0, g]], gpfns: BAD }), -EFAULT);
  assert.equal(batch({ space: 4, entries: [[0, g]], errs: BAD }), -EFAULT);
  assert.equal(batch({ space: 4, entries: [[0, g], [0, g]], idxs: BASE + RAM - 8 }), -EFAULT, "idxs[1] past the buffer");
  assert.deepEqual(errs(2), [-EPERM, 0x5555], "entry 0 was done");
  assert.equal(hc(h, HC_memory_op, [23, BAD]), -EFAULT);
  // The single add_to_physmap does not map foreign frames (Xen: only the batch may).
  h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint32(off(ARG) + 4, 4, true);
  h.dv.setBigUint64(off(ARG) + 8, 1n, true); h.dv.setBigUint64(off(ARG) + 16, BigInt(g), true);
  assert.equal(hc(h, HC_memory_op, [7, ARG]), -ENOSYS);
  assert.equal(pool.freeFrames, free);
});

test("memory_op reservations: decrease/populate count frames, stop at a bad one", () => {
  const h = setup();
  const gfns = [(BASE + 0x300000) / 4096, (BASE + 0x301000) / 4096, 0x5];
  gfns.forEach((g, i) => h.dv.setBigUint64(off(ARR) + i * 8, BigInt(g), true));
  const resv = (cmd: number, n: number, list = ARR): number => {
    h.dv.setBigUint64(off(ARG), BigInt(list), true);
    h.dv.setBigUint64(off(ARG) + 8, BigInt(n), true);
    h.dv.setUint32(off(ARG) + 16, 0, true); h.dv.setUint32(off(ARG) + 20, 0, true);
    h.dv.setUint16(off(ARG) + 24, DOMID_SELF, true);
    return hc(h, HC_memory_op, [cmd, ARG]);
  };
  const before = h.d.account.pages;
  assert.equal(resv(1, 3), 2, "the third gfn is not RAM");
  assert.equal(h.d.account.pages, before - 2);
  assert.equal(resv(6, 2), 2);
  assert.equal(h.d.account.pages, before);
  assert.equal(resv(6, 1, BAD), 0, "an unreadable extent list stops the batch (Xen: nr_done, not -EFAULT)");
  assert.equal(hc(h, HC_memory_op, [1, BAD]), 0, "an unreadable reservation struct: the start extent");
  h.dv.setUint16(off(ARG), DOMID_SELF, true);
  assert.equal(hc(h, HC_memory_op, [3, ARG]), before, "current_reservation");
});

test("memory_op reservations against the frame pool: no double give-back, no populate past the pool or max", () => {
  const pool = new FramePool(0);
  const h = setup({ pool });
  const g0 = (BASE + 0x300000) / 4096;
  const resv = (cmd: number, list: number[], order = 0): number => {
    list.forEach((g, i) => h.dv.setBigUint64(off(ARR) + i * 8, BigInt(g), true));
    h.dv.setBigUint64(off(ARG), BigInt(ARR), true);
    h.dv.setBigUint64(off(ARG) + 8, BigInt(list.length), true);
    h.dv.setUint32(off(ARG) + 16, order, true); h.dv.setUint32(off(ARG) + 20, 0, true);
    h.dv.setUint16(off(ARG) + 24, DOMID_SELF, true);
    return hc(h, HC_memory_op, [cmd, ARG]);
  };
  const before = h.d.account.pages;
  h.u8.fill(0xaa, off(g0 * 4096), off(g0 * 4096) + 4096);
  assert.equal(resv(1, [g0, g0 + 1]), 2);
  assert.equal(h.u8[off(g0 * 4096) + 17], 0, "a frame given back is scrubbed");
  assert.equal(pool.freeFrames, 2);
  assert.equal(resv(1, [g0 + 1, g0 + 2]), 0, "a frame already given back stops the batch");
  assert.equal(pool.freeFrames, 2);
  assert.equal(resv(1, [g0], 1), 0, "an order-1 extent with a missing frame is refused whole");
  assert.equal(resv(6, [g0, g0 + 1, g0 + 1]), 2, "populating a mapped frame stops the batch");
  assert.equal(pool.freeFrames, 0);
  assert.equal(h.d.account.pages, before);
  assert.equal(resv(6, [g0 + 8]), 0, "already populated: refused, nothing claimed");
  assert.equal(resv(1, [g0 + 8]), 1);
  assert.equal(pool.freeFrames, 1);
  // Another domain takes the free frame: populate finds the pool empty.
  assert.ok(pool.claim(1));
  assert.equal(resv(6, [g0 + 8]), 0, "the pool is empty");
  pool.release(1);
  assert.equal(resv(6, [g0 + 8]), 1);
  assert.equal(h.d.account.pages, before);
  assert.equal(pool.freeFrames + pool.claimedFrames, pool.totalFrames);
});

test("grant_table_op: query_size, set/get_version, setup_table, bad counts and pointers", () => {
  const h = setup();
  h.dv.setUint16(off(ARG), DOMID_SELF, true);
  assert.equal(hc(h, HC_grant_table_op, [6, ARG, 1]), 0);
  assert.equal(h.dv.getUint32(off(ARG) + 4, true), 1);
  assert.equal(h.dv.getUint32(off(ARG) + 8, true), MAX_GRANT_FRAMES);
  assert.equal(h.dv.getInt16(off(ARG) + 12, true), 0);
  h.dv.setUint16(off(ARG), 3, true);
  assert.equal(hc(h, HC_grant_table_op, [6, ARG, 1]), 0);
  assert.equal(h.dv.getInt16(off(ARG) + 12, true), -2, "GNTST_bad_domain");
  assert.equal(hc(h, HC_grant_table_op, [6, ARG, 2]), -EINVAL);
  assert.equal(hc(h, HC_grant_table_op, [6, BAD, 1]), -EFAULT);
  h.dv.setUint32(off(ARG), 1, true);
  assert.equal(hc(h, HC_grant_table_op, [8, ARG, 1]), 0);
  h.dv.setUint32(off(ARG), 2, true);
  assert.equal(hc(h, HC_grant_table_op, [8, ARG, 1]), -EINVAL);
  assert.equal(h.dv.getUint32(off(ARG), true), 1, "current version written back");
  h.dv.setUint16(off(ARG), DOMID_SELF, true);
  assert.equal(hc(h, HC_grant_table_op, [10, ARG, 1]), 0);
  assert.equal(h.dv.getUint32(off(ARG) + 4, true), 1);
  // setup_table: 2 frames, list at ARR; frame 0 mapped in the window, frame 1 not (INVALID_GFN).
  const win = h.d.layout.gnttabBase / 4096;
  h.d.gnttab.mapFrame(0, win);
  h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint32(off(ARG) + 4, 2, true);
  h.dv.setBigUint64(off(ARG) + 16, BigInt(ARR), true);
  assert.equal(hc(h, HC_grant_table_op, [2, ARG, 1]), 0);
  assert.equal(h.dv.getInt16(off(ARG) + 8, true), 0);
  assert.equal(Number(h.dv.getBigUint64(off(ARR), true)), win);
  assert.equal(h.dv.getBigUint64(off(ARR) + 8, true), 0xffffffffffffffffn);
  h.dv.setUint32(off(ARG) + 4, 1000, true);
  assert.equal(hc(h, HC_grant_table_op, [2, ARG, 1]), 0);
  assert.equal(h.dv.getInt16(off(ARG) + 8, true), -1);
  assert.equal(hc(h, HC_grant_table_op, [0, ARG, 1]), -ENOSYS, "map_grant_ref is for backends");
});

/** Maps shared_info and registers vcpu_info for vCPUs 0 and 1 (as Linux's xen_guest_init + starting_cpu). */
function bootEvents(h: Harness): { si: number; vi: number[] } {
  h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint32(off(ARG) + 4, 0, true);
  h.dv.setBigUint64(off(ARG) + 8, 0n, true); h.dv.setBigUint64(off(ARG) + 16, BigInt(SI_GFN), true);
  assert.equal(hc(h, HC_memory_op, [7, ARG]), 0);
  const vi: number[] = [];
  for (let v = 0; v < 2; v++) {
    h.dv.setBigUint64(off(ARG), BigInt(VI_GFN), true); h.dv.setUint32(off(ARG) + 8, v * 64, true);
    assert.equal(hc(h, HC_vcpu_op, [10, v, ARG]), 0);
    vi.push(off(VI_GFN * 4096) + v * 64);
  }
  return { si: off(SI_GFN * 4096), vi };
}

test("vcpu_op: register_vcpu_info (spurious upcall, once, validated), runstate, others -EINVAL", () => {
  const h = setup();
  const { vi } = bootEvents(h);
  assert.equal(h.u8[vi[0]], 1, "upcall pending after registration");
  assert.equal(h.dv.getInt32(vi[0] + 8, true), -1, "selector all ones");
  assert.deepEqual(h.host.raised, [0, 1]);
  h.dv.setBigUint64(off(ARG), BigInt(VI_GFN), true); h.dv.setUint32(off(ARG) + 8, 128, true);
  assert.equal(hc(h, HC_vcpu_op, [10, 0, ARG]), -EINVAL, "only once");
  const h2 = setup();
  h2.dv.setBigUint64(off(ARG), BigInt(VI_GFN), true);
  h2.dv.setUint32(off(ARG) + 8, 4, true);
  assert.equal(hc(h2, HC_vcpu_op, [10, 0, ARG]), -EINVAL, "misaligned");
  h2.dv.setUint32(off(ARG) + 8, 4056, true);
  assert.equal(hc(h2, HC_vcpu_op, [10, 0, ARG]), -EINVAL, "crosses the page");
  h2.dv.setBigUint64(off(ARG), 0x10n, true); h2.dv.setUint32(off(ARG) + 8, 0, true);
  assert.equal(hc(h2, HC_vcpu_op, [10, 0, ARG]), -EINVAL, "not RAM");
  assert.equal(hc(h2, HC_vcpu_op, [10, 7, ARG]), -ENOENT);
  assert.equal(hc(h2, HC_vcpu_op, [10, 0, BAD]), -EFAULT);
  assert.equal(hc(h2, HC_vcpu_op, [1, 0, 0]), -EINVAL, "VCPUOP_up is not an Arm op");
  // Runstate area: written at once (state running, time[0] >= 0); a VA that does not translate → -EFAULT.
  h2.dv.setBigUint64(off(ARG), BigInt(ARR), true);
  h2.u8.fill(0xff, off(ARR), off(ARR) + 48);
  assert.equal(hc(h2, HC_vcpu_op, [5, 1, ARG]), 0);
  assert.equal(h2.dv.getInt32(off(ARR), true), 0);
  h2.dv.setBigUint64(off(ARG), BigInt(BAD), true);
  assert.equal(hc(h2, HC_vcpu_op, [5, 1, ARG]), -EFAULT);
});

test("event channels: loopback, delivery bits and PPI, masks, VIRQ, IPI, bind_vcpu, status, close", () => {
  const h = setup();
  const { si, vi } = bootEvents(h);
  // Clear the registration's spurious upcall state, as the guest's handler would.
  for (const o of vi) { h.u8[o] = 0; h.dv.setBigUint64(o + 8, 0n, true); }
  h.host.raised = [];
  const pending = (p: number): boolean => (h.u8[si + 48 + (p >> 3)] & (1 << (p & 7))) !== 0;
  const op = (cmd: number): number => hc(h, HC_event_channel_op, [cmd, ARG]);

  assert.equal(op(11), -ENOSYS, "FIFO init_control → 2-level");
  h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint16(off(ARG) + 2, DOMID_SELF, true);
  assert.equal(op(6), 0);
  const a = h.dv.getUint32(off(ARG) + 4, true);
  assert.equal(a, 2, "port 1 is the toolstack's store port");
  h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint32(off(ARG) + 4, a, true);
  assert.equal(op(0), 0);
  const b = h.dv.getUint32(off(ARG) + 8, true);
  assert.ok(pending(b), "bind_interdomain marks the new port pending");
  assert.deepEqual(h.host.raised, [0]);
  assert.equal(h.u8[vi[0]], 1);
  // Guest acknowledges: clears upcall, selector, pending.
  h.u8[vi[0]] = 0; h.dv.setBigUint64(vi[0] + 8, 0n, true); h.u8[si + 48 + (b >> 3)] &= ~(1 << (b & 7));
  h.host.raised = [];
  h.dv.setUint32(off(ARG), b, true);
  assert.equal(op(4), 0, "send on b notifies a");
  assert.ok(pending(a));
  assert.equal(h.dv.getUint32(vi[0] + 8, true), 1 << (a >> 6));
  assert.deepEqual(h.host.raised, [0]);
  // Masked port: pending only; unmask delivers.
  h.u8[vi[0]] = 0; h.dv.setBigUint64(vi[0] + 8, 0n, true); h.u8[si + 48 + (a >> 3)] = 0; h.host.raised = [];
  h.u8[si + 560 + (a >> 3)] |= 1 << (a & 7);
  assert.equal(op(4), 0);
  assert.ok(pending(a));
  assert.equal(h.u8[vi[0]], 0);
  h.dv.setUint32(off(ARG), a, true);
  assert.equal(op(9), 0);
  assert.equal(h.u8[vi[0]], 1);
  assert.deepEqual(h.host.raised, [0]);
  // Status.
  h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint32(off(ARG) + 4, b, true);
  assert.equal(op(5), 0);
  assert.equal(h.dv.getUint32(off(ARG) + 8, true), 2, "interdomain");
  assert.equal(h.dv.getUint32(off(ARG) + 20, true), a);
  h.dv.setUint16(off(ARG), 9, true);
  assert.equal(op(5), -EPERM);
  // VIRQ_TIMER on vCPU 1, twice → -EEXIST; global VIRQ on vCPU 1 → -EINVAL.
  h.dv.setUint32(off(ARG), 0, true); h.dv.setUint32(off(ARG) + 4, 1, true);
  assert.equal(op(1), 0);
  const t = h.dv.getUint32(off(ARG) + 8, true);
  assert.equal(op(1), -EEXIST);
  h.dv.setUint32(off(ARG), 3, true);
  assert.equal(op(1), -EINVAL);
  h.dv.setUint32(off(ARG), 0, true); h.dv.setUint32(off(ARG) + 4, 9, true);
  assert.equal(op(1), -ENOENT);
  h.host.raised = [];
  assert.ok(h.d.evtchn.raiseVirq(0, 1));
  assert.ok(pending(t));
  assert.deepEqual(h.host.raised, [1], "VIRQ delivered to vCPU 1");
  // IPI to vCPU 1.
  h.dv.setUint32(off(ARG), 1, true);
  assert.equal(op(7), 0);
  const ipi = h.dv.getUint32(off(ARG) + 4, true);
  h.dv.setUint32(off(ARG), ipi, true);
  assert.equal(op(4), 0);
  assert.ok(pending(ipi));
  // bind_vcpu: a → vCPU 1; IPI ports cannot move; bad vCPU → -ENOENT.
  h.dv.setUint32(off(ARG), a, true); h.dv.setUint32(off(ARG) + 4, 1, true);
  assert.equal(op(8), 0);
  assert.equal(h.d.evtchn.notifyVcpu[a], 1);
  h.dv.setUint32(off(ARG), ipi, true);
  assert.equal(op(8), -EINVAL);
  h.dv.setUint32(off(ARG), a, true); h.dv.setUint32(off(ARG) + 4, 5, true);
  assert.equal(op(8), -ENOENT);
  // Close b: a goes back to unbound; sending on a is then dropped (0); closing twice → -EINVAL.
  h.dv.setUint32(off(ARG), b, true);
  assert.equal(op(3), 0);
  assert.equal(op(3), -EINVAL);
  assert.equal(h.d.evtchn.state[a], 1);
  h.dv.setUint32(off(ARG), a, true);
  assert.equal(op(4), 0);
  // Bad ports and pointers.
  for (const p of [0, 4096, 0xffffffff]) { h.dv.setUint32(off(ARG), p, true); assert.equal(op(4), -EINVAL); assert.equal(op(9), -EINVAL); }
  assert.equal(hc(h, HC_event_channel_op, [4, BAD]), -EFAULT);
  assert.equal(hc(h, HC_event_channel_op, [2, ARG]), -EPERM, "no pirqs");
});

test("event channels: host endpoints (XenStore late init) and events before shared_info is mapped", () => {
  const h = setup({ vcpus: 1 });
  const notes: number[] = [];
  const port = h.d.storePort;
  assert.equal(port, 1);
  // Guest not up yet: the event lands in the hypervisor's shadow and appears once shared_info is mapped.
  assert.equal(h.d.connectStore({ remoteDom: 0, notify: () => notes.push(1) }), 0);
  h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint32(off(ARG) + 4, 0, true);
  h.dv.setBigUint64(off(ARG) + 8, 0n, true); h.dv.setBigUint64(off(ARG) + 16, BigInt(SI_GFN), true);
  assert.equal(hc(h, HC_memory_op, [7, ARG]), 0);
  const si = off(SI_GFN * 4096);
  assert.equal(h.u8[si + 48] & 2, 2, "store port pending in the mapped page");
  assert.equal(h.u8[si], 1, "vCPU 0's legacy vcpu_info slot has the upcall");
  h.dv.setUint32(off(ARG), port, true);
  assert.equal(hc(h, HC_event_channel_op, [4, ARG]), 0);
  assert.deepEqual(notes, [1], "guest send reaches the host endpoint");
  assert.equal(h.d.evtchn.hostNotify(port), 0);
  assert.equal(h.d.evtchn.hostNotify(7), -EINVAL);
});

test("hvm_op: params the toolstack set; guest set_param refused; validation", () => {
  const h = setup({ console: true });
  const get = (index: number, dom = DOMID_SELF): [number, number, number] => {
    h.dv.setUint16(off(ARG), dom, true); h.dv.setUint32(off(ARG) + 4, index, true);
    const rc = hc(h, HC_hvm_op, [1, ARG]);
    return [rc, h.dv.getUint32(off(ARG) + 8, true), h.dv.getUint32(off(ARG) + 12, true)];
  };
  assert.deepEqual(get(1), [0, 0xffffffff, 0xffffffff], "STORE_PFN = ~0: xenstore comes later");
  assert.deepEqual(get(2), [0, 1, 0]);
  assert.deepEqual(get(18), [0, 2, 0]);
  assert.deepEqual(get(17), [0, h.d.consoleGfn, 0]);
  assert.deepEqual(get(0), [0, 0x21f, 0x02000000]);
  assert.equal(get(5)[0], -EINVAL);
  assert.equal(get(99)[0], -EINVAL);
  assert.equal(get(1, 4)[0], -ESRCH);
  h.dv.setUint16(off(ARG), DOMID_SELF, true); h.dv.setUint32(off(ARG) + 4, 30, true);
  assert.equal(hc(h, HC_hvm_op, [0, ARG]), -EINVAL, "set_param of a param the guest cannot read");
  h.dv.setUint32(off(ARG) + 4, 1, true);
  assert.equal(hc(h, HC_hvm_op, [0, ARG]), -EPERM);
  assert.equal(hc(h, HC_hvm_op, [1, BAD]), -EFAULT);
  assert.equal(hc(h, HC_hvm_op, [7, ARG]), -ENOSYS);
  const n = setup({ store: "none" });
  n.dv.setUint16(off(ARG), DOMID_SELF, true); n.dv.setUint32(off(ARG) + 4, 1, true);
  assert.equal(hc(n, HC_hvm_op, [1, ARG]), 0);
  assert.equal(n.dv.getBigUint64(off(ARG) + 8, true), 0n);
});

test("sched_op: shutdown reasons, block, yield, poll; bad arguments", () => {
  const h = setup();
  h.dv.setUint32(off(ARG), 0, true);
  assert.equal(hc(h, HC_sched_op, [2, ARG]), 0);
  h.dv.setUint32(off(ARG), 1, true);
  assert.equal(hc(h, HC_sched_op, [2, ARG]), 0);
  h.dv.setUint32(off(ARG), 3, true);
  assert.equal(hc(h, HC_sched_op, [2, ARG]), 0);
  assert.deepEqual(h.host.shutdowns, [0, 1, 3]);
  h.dv.setUint32(off(ARG), 9, true);
  assert.equal(hc(h, HC_sched_op, [2, ARG]), -EINVAL);
  assert.equal(hc(h, HC_sched_op, [2, BAD]), -EFAULT);
  assert.equal(hc(h, HC_sched_op, [0, 0]), 0);
  assert.equal(hc(h, HC_sched_op, [1, 0], 1), 0);
  assert.deepEqual(h.host.blocked, [1]);
  // poll: 2 ports, none pending → block; 200 ports → -EINVAL; a bad port → -EINVAL.
  h.dv.setUint32(off(ARR), 3, true); h.dv.setUint32(off(ARR) + 4, 4, true);
  h.dv.setBigUint64(off(ARG), BigInt(ARR), true); h.dv.setUint32(off(ARG) + 8, 2, true);
  assert.equal(hc(h, HC_sched_op, [3, ARG]), 0);
  assert.deepEqual(h.host.blocked, [1, 0]);
  h.dv.setUint32(off(ARG) + 8, 200, true);
  assert.equal(hc(h, HC_sched_op, [3, ARG]), -EINVAL);
  h.dv.setUint32(off(ARR), 5000, true); h.dv.setUint32(off(ARG) + 8, 1, true);
  assert.equal(hc(h, HC_sched_op, [3, ARG]), -EINVAL);
  h.dv.setUint32(off(ARG), 4, true);
  assert.equal(hc(h, HC_sched_op, [4, ARG]), -EPERM);
});

test("multicall: runs each entry, writes results; nested and bad lists refused", () => {
  const h = setup();
  const entry = (i: number, op: number, ...args: number[]): void => {
    const o = off(ARR) + i * 64;
    h.u8.fill(0, o, o + 64);
    h.dv.setBigUint64(o, BigInt(op), true);
    args.forEach((a, k) => h.dv.setBigUint64(o + 16 + k * 8, BigInt(a), true));
  };
  entry(0, HC_xen_version, 0, 0);
  entry(1, 99);
  entry(2, HC_multicall, ARR, 1);
  assert.equal(hc(h, HC_multicall, [ARR, 3]), 0);
  const res = (i: number): bigint => h.dv.getBigInt64(off(ARR) + i * 64 + 8, true);
  assert.equal(res(0), BigInt((4 << 16) | 17));
  assert.equal(res(1), BigInt(-ENOSYS));
  assert.equal(res(2), BigInt(-EINVAL));
  assert.equal(hc(h, HC_multicall, [BAD, 1]), -EFAULT);
  assert.equal(hc(h, HC_multicall, [ARR, 100000]), -EINVAL);
});

test("upcall line follows evtchn_upcall_pending at EOI of INTID 31", () => {
  const h = setup({ vcpus: 1 });
  const writes: number[] = [];
  const gicc = { size: 0x2000, read: () => 0, write: (o: number, _s: number, v: number) => { writes.push(o, v); } };
  const w = withUpcallResample(gicc, () => h.d.resampleUpcall(0));
  h.d.evtchn.markPending(0);
  assert.equal(h.host.lines.get(0), true);
  w.write(0x10, 4, 31, 0);
  assert.equal(h.host.lines.get(0), true, "still pending: line stays high");
  h.d.sharedInfo["viU8"][0][0] = 0; // the guest clears the flag (here: in the not-yet-mapped shadow slot)
  w.write(0x10, 4, 31, 0);
  assert.equal(h.host.lines.get(0), false);
  w.write(0x10, 4, 30, 0);
  assert.deepEqual(writes, [0x10, 31, 0x10, 31, 0x10, 30]);
});

test("/hypervisor DT node as Xen writes it, and the memory node excludes the Xen area", () => {
  const layout = xenAreaLayout(BASE, 256 << 20);
  const dtb = boardDtb({ ramBytes: layout.ramBytes, vcpus: 2, bootargs: "", extraNodes: (ph) => [hypervisorDtNode(layout, ph)] });
  const root = readFdt(dtb).root;
  const hv = findNode(root, "/hypervisor")!;
  assert.ok(hv);
  assert.equal(Buffer.from(getProp(hv, "compatible")!).toString(), "xen,xen-4.17\0xen,xen\0");
  const irq = getProp(hv, "interrupts")!;
  const cells = [0, 4, 8].map((o) => new DataView(irq.buffer, irq.byteOffset).getUint32(o));
  assert.deepEqual(cells, [1, 15, 0xf08]);
  const reg = new DataView(getProp(hv, "reg")!.buffer, getProp(hv, "reg")!.byteOffset);
  assert.equal(reg.getUint32(4), BASE + (255 << 20));
  assert.equal(reg.getUint32(12), MAX_GRANT_FRAMES * 4096);
  const mem = findNode(root, "/memory@40000000")!;
  const mreg = new DataView(getProp(mem, "reg")!.buffer, getProp(mem, "reg")!.byteOffset);
  assert.equal(mreg.getUint32(12), 255 << 20);
});
