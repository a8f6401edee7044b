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

/** Throws StateError unless `v` is an Int32Array of exactly `len` elements (len < 0: any length). */
export function stateInt32s(component: string, field: string, v: unknown, len: number): Int32Array {
  if (!(v instanceof Int32Array)) throw new StateError(component, field, "not an Int32Array");
  if (len >= 0 && v.length !== len) throw new StateError(component, field, `${v.length} elements, expected ${len}`);
  return v;
}

/** Throws StateError unless `v` is an array of exactly `len` elements (len < 0: any length). */
export function stateArray(component: string, field: string, v: unknown, len: number): unknown[] {
  if (!Array.isArray(v)) throw new StateError(component, field, "not an array");
  if (len >= 0 && v.length !== len) throw new StateError(component, field, `${v.length} elements, expected ${len}`);
  return v;
}

/** Throws StateError unless `v` is a non-null plain object (a nested record of a state). */
export function stateObject(component: string, field: string, v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v) || ArrayBuffer.isView(v)) {
    throw new StateError(component, field, "not an object");
  }
  return v as Record<string, unknown>;
}

/** Throws StateError unless `v` is a boolean. */
export function stateBool(component: string, field: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw new StateError(component, field, `${String(v)} is not a boolean`);
  return v;
}

/** Throws StateError unless `v` is a string or null. */
export function stateStringOrNull(component: string, field: string, v: unknown): string | null {
  if (v !== null && typeof v !== "string") throw new StateError(component, field, "not a string or null");
  return v;
}

/** Int32 range (a saved register word) and u32 range. */
export const I32_MIN = -0x80000000, I32_MAX = 0x7fffffff, U32_MAX = 0xffffffff;

/** Throws StateError unless `v` is a finite number in [lo, hi] (a time, which need not be an integer). */
export function stateNumber(component: string, field: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi) {
    throw new StateError(component, field, `${String(v)} is not a number in ${lo}..${hi}`);
  }
  return v;
}
