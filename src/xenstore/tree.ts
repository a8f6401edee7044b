/**
 * The XenStore tree: nodes with a value (bytes), a permission list, ordered children and a generation
 * counter, stored as a copy-on-write tree so a transaction's snapshot costs O(1).
 *
 * Every node carries the `epoch` of the tree version that may mutate it in place. Starting a transaction
 * gives the main tree a fresh epoch (freezing every existing node) and the transaction another one over the
 * same root; whichever then writes copies the nodes on the path it changes (and their children maps) once,
 * and mutates its copies in place afterwards. With no transaction open the main tree never copies anything.
 * Values are immutable once stored (callers hand over their own copies), so copies share them.
 */

import type { PermList } from "./perms.js";

const EMPTY = new Uint8Array(0);

export class XsNode {
  value: Uint8Array;
  perms: PermList;
  /** Children by leaf name, in creation order (xenstored keeps insertion order too); null when none yet. */
  children: Map<string, XsNode> | null;
  /** Changes whenever value, perms or the set of children change (store-wide counter, never reused). */
  gen: number;
  epoch: number;

  constructor(value: Uint8Array, perms: PermList, gen: number, epoch: number, children: Map<string, XsNode> | null) {
    this.value = value;
    this.perms = perms;
    this.gen = gen;
    this.epoch = epoch;
    this.children = children;
  }

  childCount(): number {
    return this.children === null ? 0 : this.children.size;
  }
}

export function emptyValue(): Uint8Array {
  return EMPTY;
}

/** One version of the tree: the main store or a transaction's snapshot. */
export class Tree {
  root: XsNode;
  epoch: number;

  constructor(root: XsNode, epoch: number) {
    this.root = root;
    this.epoch = epoch;
  }

  /** The node at an absolute path, or undefined. No allocation beyond the segment substrings. */
  get(path: string): XsNode | undefined {
    let node = this.root;
    if (path === "/") return node;
    let i = 1;
    const n = path.length;
    while (i <= n) {
      let j = path.indexOf("/", i);
      if (j < 0) j = n;
      const next = node.children?.get(path.substring(i, j));
      if (next === undefined) return undefined;
      node = next;
      i = j + 1;
    }
    return node;
  }

  /** The deepest existing node on the path (the root at worst) and how many characters of path it covers. */
  deepestExisting(path: string): { node: XsNode; end: number } {
    let node = this.root;
    let end = 1; // covers "/"
    if (path === "/") return { node, end };
    let i = 1;
    const n = path.length;
    while (i <= n) {
      let j = path.indexOf("/", i);
      if (j < 0) j = n;
      const next = node.children?.get(path.substring(i, j));
      if (next === undefined) break;
      node = next;
      end = j;
      i = j + 1;
    }
    return { node, end };
  }

  /** A node this version may mutate: copies it (sharing value, perms and child nodes) if it belongs to another. */
  private own(node: XsNode): XsNode {
    if (node.epoch === this.epoch) return node;
    return new XsNode(node.value, node.perms, node.gen, this.epoch, node.children === null ? null : new Map(node.children));
  }

  /** The node at path made mutable along with its ancestors, or undefined if it does not exist. */
  mutable(path: string): XsNode | undefined {
    let node = this.own(this.root);
    this.root = node;
    if (path === "/") return node;
    let i = 1;
    const n = path.length;
    while (i <= n) {
      let j = path.indexOf("/", i);
      if (j < 0) j = n;
      const name = path.substring(i, j);
      const child = node.children?.get(name);
      if (child === undefined) return undefined;
      const owned = this.own(child);
      if (owned !== child) node.children!.set(name, owned);
      node = owned;
      i = j + 1;
    }
    return node;
  }

  /** Add a new leaf under a mutable parent. */
  addChild(parent: XsNode, name: string, value: Uint8Array, perms: PermList, gen: number): XsNode {
    const child = new XsNode(value, perms, gen, this.epoch, null);
    if (parent.children === null) parent.children = new Map();
    parent.children.set(name, child);
    return child;
  }
}

/** Visit every node of a subtree (root first). */
export function walk(node: XsNode, visit: (n: XsNode) => void): void {
  visit(node);
  if (node.children !== null) for (const c of node.children.values()) walk(c, visit);
}
