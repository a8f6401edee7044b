/**
 * Seeded mutation of saved states for restore fuzz tests: picks one leaf (a number, boolean, string, null, an
 * element of a typed array, or a whole array) of a structured-cloned state and replaces it with an awkward
 * value. A restore given the result must either accept it or throw StateError and change nothing.
 */
import assert from "node:assert/strict";
import { StateError } from "../src/common/state.js";

type Leaf = { get(): unknown; set(v: unknown): void; path: string };

function leaves(x: unknown, path: string, out: Leaf[]): void {
  if (x instanceof Uint8Array || x instanceof Int32Array) {
    const a = x;
    for (let i = 0; i < a.length; i += Math.max(1, a.length >> 6)) {
      out.push({ path: `${path}[${i}]`, get: () => a[i], set: (v) => { a[i] = Number(v); } });
    }
    return;
  }
  if (Array.isArray(x)) {
    x.forEach((v, i) => {
      if (v !== null && typeof v === "object") leaves(v, `${path}[${i}]`, out);
      else out.push({ path: `${path}[${i}]`, get: () => x[i], set: (nv) => { x[i] = nv; } });
    });
    return;
  }
  if (x !== null && typeof x === "object") {
    const o = x as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const v = o[k];
      out.push({ path: `${path}.${k}`, get: () => o[k], set: (nv) => { o[k] = nv; } }); // the field itself
      if (v !== null && typeof v === "object") leaves(v, `${path}.${k}`, out);
    }
  }
}

const AWKWARD: unknown[] = [-1, 0, 1, 2, 3, 7, 31, 32, 255, 256, 4095, 4096, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff,
  2 ** 32, 2 ** 53, 0.5, -0.5, NaN, Infinity, "1", "", null, true, [], {}, new Uint8Array(3), new Int32Array(2)];

/** A small deterministic PRNG (xorshift32). */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}

/** A mutated copy of `state` and the path of what changed. */
export function mutateOne<T>(state: T, rnd: () => number): { state: T; path: string } {
  const c = structuredClone(state);
  const ls: Leaf[] = [];
  leaves(c, "", ls);
  const leaf = ls[Math.floor(rnd() * ls.length)]!;
  const cur = leaf.get();
  let v = AWKWARD[Math.floor(rnd() * AWKWARD.length)];
  // Half the time a near miss of the current number (off by one), which range checks must catch.
  if (typeof cur === "number" && rnd() < 0.5) v = cur + (rnd() < 0.5 ? 1 : -1);
  leaf.set(v);
  return { state: c, path: leaf.path };
}

/**
 * Runs `rounds` mutations of `good` against `restore`; `snapshot` reads the target's observable state. Each
 * restore must succeed or throw StateError with the target unchanged; after a success `reset` puts it back.
 * Returns [accepted, refused] counts.
 */
export function fuzzRestore<T>(good: T, rounds: number, seed: number, restore: (s: T) => void, snapshot: () => unknown,
  reset: () => void): [number, number] {
  const rnd = prng(seed);
  let ok = 0, refused = 0;
  for (let r = 0; r < rounds; r++) {
    const { state, path } = mutateOne(good, rnd);
    const before = snapshot();
    try {
      restore(state);
      ok++;
      reset();
    } catch (e) {
      assert.ok(e instanceof StateError, `round ${r} (${path}): ${String((e as Error)?.stack ?? e)}`);
      refused++;
      assert.deepEqual(snapshot(), before, `round ${r} (${path}): a refused restore changed the target`);
    }
  }
  return [ok, refused];
}
