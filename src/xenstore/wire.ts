/**
 * XenStore wire constants (xen/include/public/io/xs_wire.h): message types, the 16-byte header
 * `struct xsd_sockmsg { uint32_t type, req_id, tx_id, len; }` (little-endian on every Xen architecture we
 * run), payload and path limits.
 */

/** enum xsd_sockmsg_type (xs_wire.h; docs/xenstore.txt "Defined Xenstore message types"). */
export const XsType = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  /** RESTRICT (20) was removed; the value is invalid. */
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  GET_FEATURE: 23,
  SET_FEATURE: 24,
  GET_QUOTA: 25,
  SET_QUOTA: 26,
  INVALID: 65535,
} as const;
export type XsTypeValue = (typeof XsType)[keyof typeof XsType];

/** sizeof(struct xsd_sockmsg). */
export const XS_HEADER_SIZE = 16;
/** XENSTORE_PAYLOAD_MAX: the largest payload in either direction. */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** XENSTORE_ABS_PATH_MAX: the longest absolute path. */
export const XENSTORE_ABS_PATH_MAX = 3072;
/** XENSTORE_REL_PATH_MAX: the longest path below a domain's home (/local/domain/<domid>/). */
export const XENSTORE_REL_PATH_MAX = 2048;
/** DOMID_FIRST_RESERVED (xen.h): domids from here up are special (DOMID_SELF, DOMID_IO, …). */
export const DOMID_FIRST_RESERVED = 0x7ff0;

/** Encode one message (header + payload) into a fresh buffer the caller may keep. */
export function encodeMessage(type: number, reqId: number, txId: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(XS_HEADER_SIZE + payload.length);
  out.writeUInt32LE(type >>> 0, 0);
  out.writeUInt32LE(reqId >>> 0, 4);
  out.writeUInt32LE(txId >>> 0, 8);
  out.writeUInt32LE(payload.length, 12);
  out.set(payload, XS_HEADER_SIZE);
  return out;
}
