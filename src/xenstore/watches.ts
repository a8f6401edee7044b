/**
 * XenStore watches (docs/xenstore.txt "Watches"): registration with an initial event, matching of changes
 * against watched paths, special @introduceDomain/@releaseDomain events, and the queue that holds events
 * until the reply to the request that caused them has gone out.
 *
 * Matching: a change at P fires a watch on W when P is W or below it; the recursive removal of a parent of W
 * reports W itself. A watcher only hears of nodes it may read (the node's permissions at the change; for a
 * removal, those of the removed node). A relative watch (registered by a guest as "device") gets paths
 * relative to its home. Events are queued in two parallel arrays reused across requests: no object per event.
 */

import { XS_ERR } from "./errors.js";
import { domainPath, isChildOf, pathDepth } from "./path.js";
import { PERM_READ, type PermList } from "./perms.js";
import type { XsSession } from "./store.js";

class Watch {
  removed = false;
  constructor(
    readonly session: XsSession,
    /** Absolute path, or a special '@' name. */
    readonly path: string,
    readonly token: string,
    readonly relative: boolean,
    /** Levels below path that match (WATCH's optional <depth>), or -1 for any. */
    readonly depth: number,
  ) {}
}

export class WatchTable {
  private watches: Watch[] = [];
  private readonly pendingWatch: Watch[] = [];
  private readonly pendingPath: string[] = [];
  private flushing = false;

  /** access(session, perms): the session's PERM_* bits on a node with those perms. */
  constructor(private readonly access: (s: XsSession, perms: PermList) => number) {}

  get size(): number {
    return this.watches.length;
  }

  /** Register (EEXIST for the same path and token twice, E2BIG past quota) and queue the initial event. */
  add(s: XsSession, path: string, token: string, relative: boolean, depth: number, quota: number, initialEvent = true): void {
    for (const w of this.watches) {
      if (w.session === s && w.path === path && w.token === token) throw XS_ERR.EEXIST;
    }
    if (s.watchCount >= quota) throw XS_ERR.E2BIG;
    const w = new Watch(s, path, token, relative, depth);
    this.watches.push(w);
    s.watchCount++;
    // "When a watch is first set up it is triggered once straight away, with <path> equal to <wpath>."
    // (Not when a restored domain's watch is put back: its guest set it up and saw that event before the save.)
    if (!initialEvent) return;
    this.pendingWatch.push(w);
    this.pendingPath.push(path);
    s.queuedBytes += eventBytes(path, token);
  }

  /** The watches of session `s`, in registration order (a saved domain's, src/hv/save-store.ts). */
  ofSession(s: XsSession): { path: string; token: string; relative: boolean; depth: number }[] {
    return this.watches.filter((w) => w.session === s).map((w) => ({ path: w.path, token: w.token, relative: w.relative, depth: w.depth }));
  }

  remove(s: XsSession, path: string, token: string): void {
    const i = this.watches.findIndex((w) => w.session === s && w.path === path && w.token === token);
    if (i < 0) throw XS_ERR.ENOENT;
    this.watches[i]!.removed = true;
    this.watches.splice(i, 1);
    s.watchCount--;
  }

  removeSession(s: XsSession): void {
    this.watches = this.watches.filter((w) => {
      if (w.session !== s) return true;
      w.removed = true;
      return false;
    });
    s.watchCount = 0;
  }

  /** Queue the events of a change at path (perms: the node's, deciding who may hear of it). */
  queueChange(path: string, perms: PermList, rm: boolean): void {
    for (const w of this.watches) {
      let epath: string;
      if (isChildOf(path, w.path)) epath = path;
      else if (rm && isChildOf(w.path, path)) epath = w.path;
      else continue;
      if (w.depth >= 0 && pathDepth(epath) - pathDepth(w.path) > w.depth) continue;
      if (!(this.access(w.session, perms) & PERM_READ)) continue;
      if (w.session.deaf !== undefined && w.session.deaf()) continue; // dropped: its client does not read
      this.pendingWatch.push(w);
      this.pendingPath.push(epath);
      w.session.queuedBytes += eventBytes(epath, w.token);
    }
  }

  /** Queue a special event for the watches on exactly that name whose session may read it. */
  queueSpecial(name: string, perms: PermList): void {
    for (const w of this.watches) {
      if (w.path !== name || !(this.access(w.session, perms) & PERM_READ)) continue;
      if (w.session.deaf !== undefined && w.session.deaf()) continue;
      this.pendingWatch.push(w);
      this.pendingPath.push(name);
      w.session.queuedBytes += eventBytes(name, w.token);
    }
  }

  flush(): void {
    // A sink may make further requests (in-process clients) whose events join this queue: walk it by index
    // while it grows, and let a nested flush leave the work to this one.
    if (this.flushing) return;
    this.flushing = true;
    try {
      this.deliver();
    } finally {
      this.flushing = false;
      for (const w of this.pendingWatch) w.session.queuedBytes = 0; // all delivered (or given up on)
      this.pendingWatch.length = 0;
      this.pendingPath.length = 0;
    }
  }

  private deliver(): void {
    for (let i = 0; i < this.pendingWatch.length; i++) {
      const w = this.pendingWatch[i]!;
      let p = this.pendingPath[i]!;
      w.session.queuedBytes = Math.max(0, w.session.queuedBytes - eventBytes(p, w.token));
      if (w.removed) continue;
      if (w.relative) {
        const home = domainPath(w.session.domid);
        if (p.length > home.length && p.startsWith(home) && p.charCodeAt(home.length) === 0x2f) {
          p = p.substring(home.length + 1);
        }
      }
      try {
        w.session.sink(p, w.token);
      } catch {
        // A failing sink is its transport's problem; the other watchers still get their events.
      }
    }
  }
}

/** Size of a WATCH_EVENT message for path and token (xs_wire.h header + "path\0token\0"), as queued. */
function eventBytes(path: string, token: string): number {
  return 16 + path.length + token.length + 2;
}
