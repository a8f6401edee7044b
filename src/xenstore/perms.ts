/**
 * XenStore node permissions (docs/xenstore.txt "Permissions"; xenstored perm_for_conn).
 *
 * A node's permission list is a readonly array of packed entries `domid * 4 + bits`, bits PERM_READ|PERM_WRITE;
 * the first entry names the owner and gives the access of every domain without an entry of its own. Lists are
 * immutable and shared between nodes (inheritance copies the reference), so they cost nothing per node.
 * Text form on the wire: one letter n/r/w/b followed by the decimal domid ("b0", "r5").
 */

import { XS_ERR } from "./errors.js";
import { DOMID_FIRST_RESERVED } from "./wire.js";

export const PERM_NONE = 0;
export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_BOTH = 3;
/** Not stored: the caller owns the node (may SET_PERMS). Returned by permFor. */
export const PERM_OWNER = 4;

export type PermList = readonly number[];

export function perm(domid: number, bits: number): number {
  return domid * 4 + bits;
}
export function permDomid(p: number): number {
  return Math.floor(p / 4);
}
export function permBits(p: number): number {
  return p & 3;
}
export function ownerOf(perms: PermList): number {
  return permDomid(perms[0]!);
}

/** The default list of xenstored's root: owned by dom0, no access for others. */
export const DOM0_ONLY: PermList = Object.freeze([perm(0, PERM_NONE)]);

const LETTERS = "nrwb";

export function formatPerm(p: number): string {
  return LETTERS[permBits(p)]! + String(permDomid(p));
}

/** Parse "b5" etc.; EINVAL for anything else (domid must be decimal below DOMID_FIRST_RESERVED). */
export function parsePerm(s: string): number {
  if (s.length < 2 || s.length > 6) throw XS_ERR.EINVAL;
  const bits = LETTERS.indexOf(s[0]!);
  if (bits < 0) throw XS_ERR.EINVAL;
  let id = 0;
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) throw XS_ERR.EINVAL;
    id = id * 10 + c;
  }
  if (id >= DOMID_FIRST_RESERVED) throw XS_ERR.EINVAL;
  return perm(id, bits);
}

/**
 * Access of a caller to a node (xenstored perm_for_conn): dom0 has everything; the owner (or a domain
 * targeting the owner through SET_TARGET) has read, write and ownership; otherwise the caller's own entry,
 * else the target's entry, else the first entry's bits.
 */
export function permFor(perms: PermList, domid: number, target: number): number {
  if (domid === 0) return PERM_BOTH | PERM_OWNER;
  const owner = permDomid(perms[0]!);
  if (owner === domid || (target >= 0 && owner === target)) return PERM_BOTH | PERM_OWNER;
  let targetBits = -1;
  for (let i = 1; i < perms.length; i++) {
    const id = permDomid(perms[i]!);
    if (id === domid) return permBits(perms[i]!);
    if (target >= 0 && id === target) targetBits = permBits(perms[i]!);
  }
  return targetBits >= 0 ? targetBits : permBits(perms[0]!);
}

/** The permissions a node created by `creator` inherits from its parent (xenstored construct_node). */
export function inheritPerms(parent: PermList, creator: number): PermList {
  // Privileged creators keep the parent's owner (so dom0 writing under a guest's home creates guest-owned
  // nodes, which toolstacks rely on); an unprivileged creator owns what it creates.
  if (creator === 0 || permDomid(parent[0]!) === creator) return parent;
  const out = parent.slice();
  out[0] = perm(creator, permBits(parent[0]!));
  return Object.freeze(out);
}
