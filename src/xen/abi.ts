/**
 * Numbers of the Xen guest ABI on arm64 that Xeno's hypercall modules share: hypercall numbers, errno values,
 * reserved domain ids, feature bits, version strings. Struct layouts live next to the module that parses them.
 *
 * Sources: xen/include/public/xen.h (hypercall numbers, DOMID_*), errno.h, features.h, version.h, arch-arm.h
 * (XEN_HYPERCALL_TAG); values cross-checked in /work/shared/xen-reference/ARM-DOMU-ABI.md sections 1 and 4.3.
 */

/** `HVC #0xEA1`: the immediate that marks a Xen hypercall (arch-arm.h "Hypercall Calling Convention"). */
export const XEN_HYPERCALL_TAG = 0xea1;

/** Hypercall numbers (xen.h `__HYPERVISOR_*`); number in x16, arguments x0..x4, result x0. */
export const HC_platform_op = 7, HC_memory_op = 12, HC_multicall = 13, HC_xen_version = 17, HC_console_io = 18,
  HC_grant_table_op = 20, HC_vm_assist = 21, HC_vcpu_op = 24, HC_sched_op = 29, HC_event_channel_op = 32,
  HC_physdev_op = 33, HC_hvm_op = 34, HC_dm_op = 41;
/** Deprecated compat numbers: -ENOSYS on Arm (sched_op_compat, event_channel_op_compat, physdev_op_compat). */
export const HC_sched_op_compat = 6, HC_event_channel_op_compat = 16, HC_physdev_op_compat = 19;

/** Xen errno values (public/errno.h; identical to Linux's). Hypercalls return their negation. */
export const EPERM = 1, ENOENT = 2, ESRCH = 3, EINVAL = 22, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENOMEM = 12,
  ENOSPC = 28, ENOSYS = 38, EOPNOTSUPP = 95, E2BIG = 7, ENXIO = 6, EACCES = 13, EILSEQ = 84, EDOM = 33;

/** domid_t values (xen.h). A DomU names itself DOMID_SELF. */
export const DOMID_SELF = 0x7ff0, DOMID_IO = 0x7ff1, DOMID_XEN = 0x7ff2, DOMID_INVALID = 0x7ff4;

/** Xen version this hypervisor claims (DT compatible "xen,xen-4.17", XENVER_version). */
export const XEN_MAJOR = 4, XEN_MINOR = 17;
export const XEN_EXTRAVERSION = ".0-xeno";

/**
 * XENVER_get_features submap 0 for an Arm DomU (features.h; xen/common/kernel.c): writable_page_tables (0),
 * auto_translated_physmap (2), memory_op_vnode_supported (13), ARM_SMCCC_supported (14),
 * not_direct_mapped (16). Bit 18 (runstate_phys_area) is not advertised: VCPUOP 14 is not implemented.
 */
export const XENFEAT_writable_page_tables = 0, XENFEAT_auto_translated_physmap = 2, XENFEAT_dom0 = 11,
  XENFEAT_memory_op_vnode_supported = 13, XENFEAT_ARM_SMCCC_supported = 14, XENFEAT_not_direct_mapped = 16;
export const XEN_FEATURES_SUBMAP0 = (1 << XENFEAT_writable_page_tables) | (1 << XENFEAT_auto_translated_physmap) |
  (1 << XENFEAT_memory_op_vnode_supported) | (1 << XENFEAT_ARM_SMCCC_supported) | (1 << XENFEAT_not_direct_mapped);

/** Xen pages are 4 KiB on Arm (XEN_PAGE_SHIFT). */
export const XEN_PAGE_SHIFT = 12, XEN_PAGE_SIZE = 4096;

/** The event-channel upcall PPI (arch-arm.h GUEST_EVTCHN_PPI): INTID 31. */
export const GUEST_EVTCHN_PPI = 31;

/** `struct vcpu_info` (48 bytes): evtchn_upcall_pending u8 @0, evtchn_pending_sel u64 @8, time @16. */
export const VCPU_INFO_SIZE = 48, VI_UPCALL_PENDING = 0, VI_PENDING_SEL = 8;
/** `struct shared_info`: vcpu_info[1] @0, evtchn_pending[64] @48, evtchn_mask[64] @560, wc_* @1072. */
export const SI_EVTCHN_PENDING = 48, SI_EVTCHN_MASK = 560, SI_WC_VERSION = 1072, SI_WC_SEC = 1076,
  SI_WC_NSEC = 1080, SI_WC_SEC_HI = 1084;

/** Negative errno as the hypercall's return value. */
export const err = (e: number): number => -e;
