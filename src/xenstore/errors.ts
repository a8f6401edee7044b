/**
 * XenStore errors: the errno names of xen/include/public/io/xs_wire.h (xsd_errors[]), sent to clients as the
 * payload of an XS_ERROR reply ("EACCES\0"), and one error class with a stable `code` for in-process callers.
 *
 * The store raises errors on ordinary paths (a READ of a missing node is common), so the instances are
 * preallocated, one per errno, and thrown shared: no allocation or stack capture per failed request. Their
 * `stack` is therefore meaningless; never mutate them. Callers switch on `code` or `errno`.
 */

/** The errno names XenStore sends (xs_wire.h xsd_errors[]; EQUOTA is xenstored's own, sent as its name). */
export type XsErrno =
  | "EINVAL"
  | "EACCES"
  | "EEXIST"
  | "EISDIR"
  | "ENOENT"
  | "ENOMEM"
  | "ENOSPC"
  | "EIO"
  | "ENOTEMPTY"
  | "ENOSYS"
  | "EROFS"
  | "EBUSY"
  | "EAGAIN"
  | "EISCONN"
  | "E2BIG"
  | "EPERM"
  | "EQUOTA";

/** Stable codes: `XENSTORE_` + the errno name. */
export type XenStoreErrorCode = `XENSTORE_${XsErrno}`;

const MESSAGES: Record<XsErrno, string> = {
  EINVAL: "invalid argument (malformed path, payload or value)",
  EACCES: "permission denied",
  EEXIST: "already exists",
  EISDIR: "is a directory",
  ENOENT: "no such node, transaction or watch",
  ENOMEM: "out of memory",
  ENOSPC: "quota exceeded (node size, permissions or transactions)",
  EIO: "input/output error",
  ENOTEMPTY: "not empty",
  ENOSYS: "operation not supported",
  EROFS: "read-only",
  EBUSY: "busy",
  EAGAIN: "transaction conflict: retry",
  EISCONN: "already connected",
  E2BIG: "too big (payload or watch quota)",
  EPERM: "operation not permitted",
  EQUOTA: "node quota exceeded",
};

export class XenStoreError extends Error {
  readonly code: XenStoreErrorCode;
  readonly errno: XsErrno;
  constructor(errno: XsErrno, detail?: string) {
    super(detail === undefined ? `xenstore: ${errno}: ${MESSAGES[errno]}` : `xenstore: ${errno}: ${detail}`);
    this.name = "XenStoreError";
    this.errno = errno;
    this.code = `XENSTORE_${errno}`;
  }
}

function make(errno: XsErrno): XenStoreError {
  return new XenStoreError(errno);
}

const SHARED: Readonly<Record<XsErrno, XenStoreError>> = {
  EINVAL: make("EINVAL"),
  EACCES: make("EACCES"),
  EEXIST: make("EEXIST"),
  EISDIR: make("EISDIR"),
  ENOENT: make("ENOENT"),
  ENOMEM: make("ENOMEM"),
  ENOSPC: make("ENOSPC"),
  EIO: make("EIO"),
  ENOTEMPTY: make("ENOTEMPTY"),
  ENOSYS: make("ENOSYS"),
  EROFS: make("EROFS"),
  EBUSY: make("EBUSY"),
  EAGAIN: make("EAGAIN"),
  EISCONN: make("EISCONN"),
  E2BIG: make("E2BIG"),
  EPERM: make("EPERM"),
  EQUOTA: make("EQUOTA"),
};

/**
 * Shared instances thrown by the store (see the module comment). With XENO_XS_ERROR_STACKS=1 in the
 * environment every use makes a fresh error instead, with a stack showing where it was raised (debugging).
 */
export const XS_ERR: Readonly<Record<XsErrno, XenStoreError>> = process.env.XENO_XS_ERROR_STACKS
  ? Object.defineProperties(
      {} as Record<XsErrno, XenStoreError>,
      Object.fromEntries(Object.keys(SHARED).map((k) => [k, { get: () => make(k as XsErrno) }])),
    )
  : SHARED;

export function isXenStoreError(e: unknown): e is XenStoreError {
  return e instanceof XenStoreError;
}
