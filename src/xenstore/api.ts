/**
 * The slice of the XenStore API that dom0 code inside a domain's thread uses (back-ends, the domain's
 * introduction): implemented by the store itself (XenStore, same thread) and by RemoteStore (src/hv/store-link.ts,
 * a synchronous proxy to the hypervisor's one store in another thread). Sessions and transactions are opaque
 * handles; errors are XenStoreError, as from the store.
 */
import type { WatchEventSink } from "./store.js";

/** A client session (XsSession, or a remote handle). */
export type StoreSessionRef = object;
/** A transaction (Transaction, or a remote handle); null = outside any transaction. */
export type StoreTxRef = object | null;

export interface StoreApi {
  connect(domid: number, sink: WatchEventSink): StoreSessionRef;
  disconnect(s: StoreSessionRef): void;
  read(s: StoreSessionRef, tx: StoreTxRef, path: string): Uint8Array;
  directory(s: StoreSessionRef, tx: StoreTxRef, path: string): string[];
  write(s: StoreSessionRef, tx: StoreTxRef, path: string, value: Uint8Array): void;
  mkdir(s: StoreSessionRef, tx: StoreTxRef, path: string): void;
  rm(s: StoreSessionRef, tx: StoreTxRef, path: string): void;
  getPerms(s: StoreSessionRef, tx: StoreTxRef, path: string): string[];
  setPerms(s: StoreSessionRef, tx: StoreTxRef, path: string, perms: readonly string[]): void;
  watch(s: StoreSessionRef, path: string, token: string): void;
  unwatch(s: StoreSessionRef, path: string, token: string): void;
  transactionStart(s: StoreSessionRef): number;
  transaction(s: StoreSessionRef, id: number): object;
  transactionEnd(s: StoreSessionRef, id: number, commit: boolean): void;
  introduce(s: StoreSessionRef, domid: number, gfn: number, evtchn: number): void;
}
