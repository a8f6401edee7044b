/**
 * Saved component state (the Firecracker `Persist` / QEMU VMState pattern): each stateful part of a domain has
 * `save(): XState`, plain versioned data that structuredClone and postMessage carry (numbers, strings,
 * booleans, arrays, plain objects, Uint8Array/Int32Array), and a restore that takes that data plus the
 * non-serialisable wiring (files, ports, store sessions) as arguments and rebuilds derived state.
 *
 * A restore checks everything it is given (version, sizes, every index and address) before changing
 * anything, and refuses bad state with a StateError naming the component and field: never a half-built part.
 */
export class StateError extends Error {
  readonly code = "STATE_INVALID";
  /** `component`: e.g. "gicv2"; `field`: the offending key path, e.g. "irqs[40].priority". */
  constructor(readonly component: string, readonly field: string, detail: string) {
    super(`${component} state: ${field}: ${detail}`);
  }
}

/** Throws StateError unless `v` is an integer in [lo, hi]. Returns v. */
export function stateInt(component: string, field: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    throw new StateError(component, field, `${String(v)} is not an integer in ${lo}..${hi}`);
  }
  return v;
}

/** Throws StateError unless `state.version` equals `version` (a newer or older layout is refused, not guessed). */
export function stateVersion(component: string, state: unknown, version: number): Record<string, unknown> {
  if (state === null || typeof state !== "object") throw new StateError(component, "(root)", "not an object");
  const s = state as Record<string, unknown>;
  if (s.version !== version) throw new StateError(component, "version", `${String(s.version)} (this build reads ${version})`);
  return s;
}

/** Throws StateError unless `v` is a Uint8Array of exactly `len` bytes (len < 0: any length). */
export function stateBytes(component: string, field: string, v: unknown, len: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new StateError(component, field, "not a byte array");
  if (len >= 0 && v.length !== len) throw new StateError(component, field, `${v.length} bytes, expected ${len}`);
  return v;
}
