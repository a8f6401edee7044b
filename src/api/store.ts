/**
 * The API's objects and their change history, as xapi's database keeps them for `event.from`: every object has
 * a class, an opaque ref, a record, and the generation at which it last changed; the store's generation counts
 * changes. A token is a generation written as a decimal string; `changesSince(token)` gives each object
 * changed after it (add/mod) and each removed after it (del, from tombstones). Removals older than the
 * tombstones kept make an old token fail with EVENTS_LOST, as xapi does, so the client reloads.
 */
import { isDeepStrictEqual } from "node:util";
import { XapiDateTime } from "./values.js";

export type XapiRecord = Record<string, unknown>;

interface Entry { cls: string; ref: string; record: XapiRecord; gen: number; created: number; ms: number }
interface Tombstone { cls: string; ref: string; gen: number; ms: number }

export interface XapiEvent {
  id: number;
  timestamp: string;
  /** xapi writes class names in lower case ("vm", "vm_metrics"); clients map them back. */
  class: string;
  operation: "add" | "mod" | "del";
  ref: string;
  snapshot?: XapiRecord;
}

/** Tombstones kept for `event.from`; past this, the oldest go and tokens before them get EVENTS_LOST. */
const MAX_TOMBSTONES = 10_000;

export class ObjectStore {
  private generation = 0;
  private readonly byRef = new Map<string, Entry>();
  private readonly byClass = new Map<string, Map<string, Entry>>();
  private tombstones: Tombstone[] = [];
  /** Generation below which removals were forgotten. */
  private forgottenBelow = 0;
  private waiters = new Set<() => void>();

  get gen(): number { return this.generation; }

  /** Sets an object's record; a record equal to the stored one changes nothing (no event). */
  put(cls: string, ref: string, record: XapiRecord): void {
    const e = this.byRef.get(ref);
    if (e && isDeepStrictEqual(e.record, record)) return;
    const gen = ++this.generation;
    if (e) { e.record = record; e.gen = gen; e.ms = Date.now(); }
    else {
      const n: Entry = { cls, ref, record, gen, created: gen, ms: Date.now() };
      this.byRef.set(ref, n);
      let m = this.byClass.get(cls);
      if (!m) this.byClass.set(cls, (m = new Map()));
      m.set(ref, n);
    }
    this.wake();
  }

  remove(ref: string): void {
    const e = this.byRef.get(ref);
    if (!e) return;
    this.byRef.delete(ref);
    this.byClass.get(e.cls)?.delete(ref);
    this.tombstones.push({ cls: e.cls, ref, gen: ++this.generation, ms: Date.now() });
    if (this.tombstones.length > MAX_TOMBSTONES) {
      const dropped = this.tombstones.splice(0, this.tombstones.length - MAX_TOMBSTONES);
      this.forgottenBelow = dropped[dropped.length - 1]!.gen;
    }
    this.wake();
  }

  /** event.inject: marks the object changed; the token of that change. */
  touch(ref: string): number {
    const e = this.byRef.get(ref);
    if (e) { e.gen = ++this.generation; e.ms = Date.now(); this.wake(); }
    return this.generation;
  }

  get(ref: string): { cls: string; record: XapiRecord } | undefined {
    const e = this.byRef.get(ref);
    return e && { cls: e.cls, record: e.record };
  }

  refs(cls: string): string[] { return [...(this.byClass.get(cls)?.keys() ?? [])]; }

  all(cls: string): [string, XapiRecord][] {
    return [...(this.byClass.get(cls)?.values() ?? [])].map((e) => [e.ref, e.record]);
  }

  count(cls: string): number { return this.byClass.get(cls)?.size ?? 0; }

  /**
   * Changes after generation `since` to objects of `classes` (lower case; "*" for all). Throws "EVENTS_LOST"
   * (a string) when removals after `since` were forgotten.
   */
  changesSince(since: number, classes: Set<string>): XapiEvent[] {
    if (since < this.forgottenBelow) throw "EVENTS_LOST";
    const want = (cls: string): boolean => classes.has("*") || classes.has(cls.toLowerCase());
    const out: XapiEvent[] = [];
    for (const e of this.byRef.values()) {
      if (e.gen <= since || !want(e.cls)) continue;
      out.push({ id: e.gen, timestamp: new XapiDateTime(e.ms).toJSON(), class: e.cls.toLowerCase(), operation: e.created > since ? "add" : "mod", ref: e.ref, snapshot: e.record });
    }
    for (const t of this.tombstones) {
      if (t.gen <= since || !want(t.cls)) continue;
      out.push({ id: t.gen, timestamp: new XapiDateTime(t.ms).toJSON(), class: t.cls.toLowerCase(), operation: "del", ref: t.ref });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** Resolves at the next change or after `ms` (whichever first), or when `signal` aborts. */
  waitForChange(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(t); this.waiters.delete(done); signal?.removeEventListener("abort", done); resolve(); };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener("abort", done);
    });
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}
