/**
 * A domain's part of the XenStore in a save file (docs/save-format.md "store"): the nodes of its subtrees
 * with their values and permissions, and its guest's connection (watches, undelivered replies: store-link.ts
 * SavedGuestLink). The store itself lives in the hypervisor's main thread and is not part of DomainSnapshot.
 *
 * Subtrees saved, as libxl writes them for a DomU (src/xen/xenstore-domain.ts, the back-ends):
 *   /local/domain/D, /vm/UUID, and /local/domain/0/backend/TYPE/D for every back-end type.
 * A restore writes them back for the same domid (the guest's front-ends hold absolute back-end paths that
 * name it, so the domid cannot change under a running guest) after checking that every path is inside those
 * subtrees, every value and permission is well-formed, and the counts are bounded.
 */
import type { XenStore, XsSession } from "../xenstore/index.js";
import type { SavedGuestLink } from "./store-link.js";

export interface SavedStoreNode {
  path: string;
  value: Uint8Array;
  /** Wire form, owner first ("n0", "r7"). */
  perms: string[];
}

export interface SavedStore {
  version: 1;
  nodes: SavedStoreNode[];
  guest: SavedGuestLink;
}

/** Most nodes and watches a restored domain may bring (xenstored's default per-domain quota is 1,000 nodes). */
const MAX_NODES = 8192, MAX_WATCHES = 1024, MAX_REPLIES = 4096;
const MAX_VALUE = 4096, MAX_PATH = 3072, MAX_TOKEN = 4096;

function subtrees(store: XenStore, s: XsSession, domid: number, uuid: string): string[] {
  const roots = [`/local/domain/${domid}`, `/vm/${uuid}`];
  let types: string[] = [];
  try { types = store.directory(s, null, "/local/domain/0/backend"); } catch { /* none */ }
  for (const t of types) roots.push(`/local/domain/0/backend/${t}/${domid}`);
  return roots;
}

/** The domain's nodes, parents before children (as a restore writes them). */
export function dumpStore(store: XenStore, domid: number, uuid: string): SavedStoreNode[] {
  const s = store.connect(0, () => {});
  const out: SavedStoreNode[] = [];
  const walk = (path: string): void => {
    let value: Uint8Array;
    try { value = store.read(s, null, path); } catch { return; } // absent
    out.push({ path, value: Uint8Array.from(value), perms: store.getPerms(s, null, path) });
    for (const c of store.directory(s, null, path)) walk(`${path}/${c}`);
  };
  try {
    for (const root of subtrees(store, s, domid, uuid)) walk(root);
  } finally {
    store.disconnect(s);
  }
  return out;
}

/** Checks a SavedStore from a file for domain `domid` (Error with what is wrong). */
export function checkSavedStore(v: unknown, domid: number, uuid: string): SavedStore {
  const fail = (what: string): never => { throw new Error(`saved XenStore: ${what}`); };
  if (v === null || typeof v !== "object") fail("not an object");
  const st = v as Record<string, unknown>;
  if (st.version !== 1) fail(`version ${String(st.version)} (this build reads 1)`);
  if (!Array.isArray(st.nodes) || st.nodes.length > MAX_NODES) fail(`nodes: an array of at most ${MAX_NODES}`);
  const roots = [`/local/domain/${domid}`, `/vm/${uuid}`];
  const inside = (p: string): boolean => roots.some((r) => p === r || p.startsWith(`${r}/`)) ||
    /^\/local\/domain\/0\/backend\/[A-Za-z0-9_-]+\/(\d+)(\/|$)/.exec(p)?.[1] === String(domid);
  const nodes = st.nodes as unknown[];
  nodes.forEach((n, i) => {
    const x = n as Record<string, unknown> | null;
    if (x === null || typeof x !== "object") fail(`nodes[${i}]: not an object`);
    const { path, value, perms } = x as Record<string, unknown>;
    // "." and ".." are refused though the store never resolves them (a node may not be named so by a file).
    if (typeof path !== "string" || path.length > MAX_PATH || !/^(\/[A-Za-z0-9_@.:-]+)+$/.test(path) || /\/\.\.?(\/|$)/.test(path)) {
      fail(`nodes[${i}].path: not a XenStore path`);
    }
    if (!inside(path as string)) fail(`nodes[${i}].path ${String(path)} is outside domain ${domid}'s subtrees`);
    if (!(value instanceof Uint8Array) || value.length > MAX_VALUE) fail(`nodes[${i}].value: bytes, at most ${MAX_VALUE}`);
    if (!Array.isArray(perms) || perms.length < 1 || perms.length > 16 || perms.some((p) => typeof p !== "string" || !/^[nrwb]\d{1,5}$/.test(p))) {
      fail(`nodes[${i}].perms: 1..16 permissions like "n0", "r${domid}"`);
    }
  });
  const g = st.guest as Record<string, unknown> | null;
  if (g === null || typeof g !== "object") fail("guest: not an object");
  const { watches, replies } = g as Record<string, unknown>;
  if (!Array.isArray(watches) || watches.length > MAX_WATCHES) fail(`guest.watches: an array of at most ${MAX_WATCHES}`);
  (watches as unknown[]).forEach((w, i) => {
    const x = w as Record<string, unknown> | null;
    if (x === null || typeof x !== "object") fail(`guest.watches[${i}]: not an object`);
    const { path, token, relative, depth } = x as Record<string, unknown>;
    if (typeof path !== "string" || path.length > MAX_PATH || !/^[/@]/.test(path)) fail(`guest.watches[${i}].path: an absolute path or @name`);
    if (typeof token !== "string" || token.length > MAX_TOKEN || token.includes("\0")) fail(`guest.watches[${i}].token: a string without NUL`);
    if (typeof relative !== "boolean") fail(`guest.watches[${i}].relative: a boolean`);
    if (typeof depth !== "number" || !Number.isInteger(depth) || depth < -1 || depth > 1024) fail(`guest.watches[${i}].depth: -1..1024`);
    if (relative === true && !(path as string).startsWith(`/local/domain/${domid}/`)) fail(`guest.watches[${i}]: a relative watch outside the domain's home`);
  });
  if (!Array.isArray(replies) || replies.length > MAX_REPLIES || replies.some((b) => !(b instanceof Uint8Array) || b.length > 4096 + 16)) {
    fail(`guest.replies: at most ${MAX_REPLIES} byte arrays of at most one XenStore message each`);
  }
  return st as unknown as SavedStore;
}

/**
 * Writes the saved nodes (parents first, each with its permissions) for a restored domain, replacing whatever
 * its subtrees held. Throws (after removing what it wrote) when the store refuses one.
 */
export function loadStore(store: XenStore, saved: SavedStore, domid: number, uuid: string): void {
  const s = store.connect(0, () => {});
  const clear = (): void => {
    for (const root of subtrees(store, s, domid, uuid)) { try { store.rm(s, null, root); } catch { /* absent */ } }
  };
  try {
    clear();
    for (const n of saved.nodes) {
      store.write(s, null, n.path, n.value);
      store.setPerms(s, null, n.path, n.perms);
    }
  } catch (e) {
    clear();
    throw new Error(`saved XenStore: the store refused a node: ${(e as Error).message}`);
  } finally {
    store.disconnect(s);
  }
}
