/**
 * HYPERVISOR_xen_version(cmd, arg) (xen/common/kernel.c do_xen_version; public/version.h). Which sub-ops a
 * DomU may use follows the XSM dummy policy (xsm/dummy.h xsm_xen_version): commandline and build_id are
 * privileged (-EPERM).
 */
import { EINVAL, ENOSYS, EPERM, XEN_EXTRAVERSION, XEN_FEATURES_SUBMAP0, XEN_MAJOR, XEN_MINOR, XEN_PAGE_SIZE } from "./abi.js";
import type { GuestMemory } from "./guest-memory.js";

export const XENVER_version = 0, XENVER_extraversion = 1, XENVER_compile_info = 2, XENVER_capabilities = 3,
  XENVER_changeset = 4, XENVER_platform_parameters = 5, XENVER_get_features = 6, XENVER_pagesize = 7,
  XENVER_guest_handle = 8, XENVER_commandline = 9, XENVER_build_id = 10;

/** Strings this hypervisor reports (sizes: xen_extraversion_t 16, xen_capabilities_info_t 1024, changeset 64). */
export const CAPABILITIES = "xen-3.0-aarch64 xen-3.0-armv7l ";
export const CHANGESET = "xeno";

const enc = new TextEncoder();

/** Writes `s` NUL-padded into a `size`-byte guest buffer. */
function putString(mem: GuestMemory, lo: number, hi: number, s: string, size: number): number {
  const b = mem.scratch;
  b.fill(0, 0, size);
  b.set(enc.encode(s).subarray(0, size - 1));
  mem.copyOut(lo, hi, size);
  return 0;
}

export function xenVersion(mem: GuestMemory, uuid: Uint8Array, cmd: number, lo: number, hi: number): number {
  switch (cmd) {
    case XENVER_version: return (XEN_MAJOR << 16) | XEN_MINOR;
    case XENVER_extraversion: return putString(mem, lo, hi, XEN_EXTRAVERSION, 16);
    case XENVER_compile_info: {
      // struct xen_compile_info: compiler[64], compile_by[16], compile_domain[32], compile_date[32].
      const b = mem.scratch;
      b.fill(0, 0, 144);
      b.set(enc.encode("TypeScript"), 0);
      b.set(enc.encode("xeno"), 64);
      b.set(enc.encode("xeno"), 80);
      b.set(enc.encode("2025-01-01"), 112);
      mem.copyOut(lo, hi, 144);
      return 0;
    }
    case XENVER_capabilities: return putString(mem, lo, hi, CAPABILITIES, 1024);
    case XENVER_changeset: return putString(mem, lo, hi, CHANGESET, 64);
    case XENVER_platform_parameters: {
      mem.sv.setBigUint64(0, 0n, true); // virt_start: no hypervisor hole in an Arm guest's address space
      mem.copyOut(lo, hi, 8);
      return 0;
    }
    case XENVER_get_features: {
      mem.copyIn(lo, hi, 8);
      if (mem.sv.getUint32(0, true) !== 0) return -EINVAL; // XENFEAT_NR_SUBMAPS = 1
      mem.sv.setUint32(4, XEN_FEATURES_SUBMAP0, true);
      mem.copyOut(lo, hi, 8);
      return 0;
    }
    case XENVER_pagesize: return XEN_PAGE_SIZE;
    case XENVER_guest_handle: mem.scratch.set(uuid.subarray(0, 16)); mem.copyOut(lo, hi, 16); return 0;
    case XENVER_commandline: case XENVER_build_id: return -EPERM;
    default: return -ENOSYS;
  }
}
