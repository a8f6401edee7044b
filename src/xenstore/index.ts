/** XenStore: store (tree, permissions, watches, transactions, quotas), wire protocol connection, socket server. */
export { XenStore, XsSession, Transaction, DEFAULT_QUOTAS, parseDomid } from "./store.js";
export type { XsQuotas, XenStoreOptions, WatchEventSink, IntroduceEvent } from "./store.js";
export { Connection } from "./connection.js";
export type { ConnectionOptions, ConnectionStats } from "./connection.js";
export { XenStoreSocketServer, XenStoreServerError, defaultSocketPath, DEFAULT_RUNDIR } from "./socket-server.js";
export { XenStoreError, XS_ERR, isXenStoreError } from "./errors.js";
export type { XsErrno, XenStoreErrorCode } from "./errors.js";
export { XsType, XS_HEADER_SIZE, XENSTORE_PAYLOAD_MAX, XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX, encodeMessage } from "./wire.js";
export { INTRODUCE_DOMAIN, RELEASE_DOMAIN, domainPath, resolvePath } from "./path.js";
export type { StoreApi, StoreSessionRef, StoreTxRef } from "./api.js";
