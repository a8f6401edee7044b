/**
 * The JSON form of saved state in a save file (docs/save-format.md "State encoding"). A DomainSnapshot is
 * structured-clone data (src/common/state.ts): plain objects, arrays, strings, booleans, numbers and typed
 * arrays. JSON carries the first five; the rest are tagged one-key objects:
 *
 *   {"$u8": "<base64>"}  Uint8Array (also $i8 $u16 $i16 $u32 $i32 $f32 $f64: little-endian element bytes)
 *   {"$num": "NaN" | "Infinity" | "-Infinity" | "-0"}    numbers JSON cannot write
 *   {"$big": "<decimal>"}                                 bigint
 *   {"$undef": 1}                                         undefined (a key present with no value)
 *
 * Decoding checks every tag and its payload (a typed array's byte count is a multiple of its element size)
 * and refuses anything else that starts with "$". Objects come from JSON.parse, so a "__proto__" key is an own
 * data property, never a prototype. What the values mean is checked by each component's restore.
 */

const TYPED = {
  $u8: Uint8Array, $i8: Int8Array, $u16: Uint16Array, $i16: Int16Array,
  $u32: Uint32Array, $i32: Int32Array, $f32: Float32Array, $f64: Float64Array,
} as const;
type TypedTag = keyof typeof TYPED;

export class CodecError extends Error {
  readonly code = "SAVE_STATE_ENCODING";
  constructor(message: string) { super(message); this.name = "CodecError"; }
}

/** The JSON text of structured-clone data `v` (CodecError for a value it cannot carry: a function, a Map, …). */
export function encodeState(v: unknown): string {
  return JSON.stringify(toJson(v, "state"));
}

function toJson(v: unknown, at: string): unknown {
  switch (typeof v) {
    case "string": case "boolean": return v;
    case "number":
      if (Number.isFinite(v) && !Object.is(v, -0)) return v;
      return { $num: Object.is(v, -0) ? "-0" : String(v) };
    case "bigint": return { $big: v.toString() };
    case "undefined": return { $undef: 1 };
    case "object": {
      if (v === null) return null;
      if (ArrayBuffer.isView(v)) {
        const view = v as ArrayBufferView;
        const b64 = (): string => Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString("base64");
        for (const [tag, C] of Object.entries(TYPED)) if ((view.constructor as unknown) === C) return { [tag]: b64() };
        throw new CodecError(`${at}: a ${view.constructor.name} cannot be saved`);
      }
      if (Array.isArray(v)) return v.map((x, i) => toJson(x, `${at}[${i}]`));
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new CodecError(`${at}: a ${(v as object).constructor?.name ?? "non-plain object"} cannot be saved`);
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (k.startsWith("$")) throw new CodecError(`${at}.${k}: keys starting with '$' are reserved for the encoding`);
        Object.defineProperty(o, k, { value: toJson(x, `${at}.${k}`), enumerable: true, writable: true, configurable: true });
      }
      return o;
    }
    default: throw new CodecError(`${at}: a ${typeof v} cannot be saved`);
  }
}

/** The value of an encodeState text; CodecError names the path of anything malformed. */
export function decodeState(text: string): unknown {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) { throw new CodecError(`state: not JSON (${(e as Error).message})`); }
  return fromJson(raw, "state", 0);
}

/** Nesting deeper than this is refused (the real state is a few levels deep; a hostile one could be 1e6). */
const MAX_DEPTH = 64;

function fromJson(v: unknown, at: string, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new CodecError(`${at}: nested more than ${MAX_DEPTH} deep`);
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x, i) => fromJson(x, `${at}[${i}]`, depth + 1));
  const keys = Object.keys(v);
  const o = v as Record<string, unknown>;
  if (keys.length === 1 && keys[0]!.startsWith("$")) {
    const tag = keys[0]!, p = o[tag];
    if (tag in TYPED) {
      if (typeof p !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(p)) throw new CodecError(`${at}: ${tag} wants base64 text`);
      const bytes = Buffer.from(p, "base64");
      const C = TYPED[tag as TypedTag];
      if (bytes.length % C.BYTES_PER_ELEMENT !== 0) throw new CodecError(`${at}: ${bytes.length} bytes is not a whole number of ${C.name} elements`);
      // Copy into a fresh, aligned buffer (Buffer's pool offset need not be aligned).
      const ab = new ArrayBuffer(bytes.length);
      new Uint8Array(ab).set(bytes);
      return new C(ab);
    }
    if (tag === "$num") {
      const m: Record<string, number> = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity, "-0": -0 };
      if (typeof p !== "string" || !(p in m)) throw new CodecError(`${at}: $num is one of NaN, Infinity, -Infinity, -0`);
      return m[p];
    }
    if (tag === "$big") {
      if (typeof p !== "string" || !/^-?\d{1,40}$/.test(p)) throw new CodecError(`${at}: $big wants a decimal integer (≤ 40 digits)`);
      return BigInt(p);
    }
    if (tag === "$undef") {
      if (p !== 1) throw new CodecError(`${at}: $undef wants 1`);
      return undefined;
    }
    throw new CodecError(`${at}: unknown tag ${tag}`);
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    if (k.startsWith("$")) throw new CodecError(`${at}.${k}: keys starting with '$' are reserved for the encoding`);
    // defineProperty: a "__proto__" key stays data, never the object's prototype.
    Object.defineProperty(out, k, { value: fromJson(o[k], `${at}.${k}`, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
