/**
 * The JSON form of saved state in a save file (docs/save-format.md "State encoding"). A DomainSnapshot is
 * structured-clone data (src/common/state.ts): plain objects, arrays, strings, booleans, numbers and typed
 * arrays. JSON carries the first five; the rest are tagged one-key objects:
 *
 *   {"$u8": "<base64>"}  Uint8Array (also $i8 $u16 $i16 $u32 $i32 $f32 $f64: little-endian element bytes)
 *   {"$rep": ["$i32", "<base64>", n]}   a typed array of n elements whose base64 bytes are the first ones and
 *                        whose last element there repeats to the end (written when the repeated tail is
 *                        ≥ REP_MIN_BYTES: a P2M map, event-channel tables — mostly one value — shrink from
 *                        ~180 KB of base64 to a few hundred bytes; docs/benchmarks.md, 2026-12-07 session 23)
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
        const bytes = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
        for (const [tag, C] of Object.entries(TYPED)) {
          if ((view.constructor as unknown) !== C) continue;
          const keep = repeatedTail(bytes, C.BYTES_PER_ELEMENT);
          if (keep < 0) return { [tag]: bytes.toString("base64") };
          return { $rep: [tag, bytes.subarray(0, keep).toString("base64"), view.byteLength / C.BYTES_PER_ELEMENT] };
        }
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

/** A $rep is written when its repeated tail is at least this many bytes (shorter ones gain little). */
const REP_MIN_BYTES = 64;

/**
 * For $rep: the bytes to keep — up to and including the first element of the run of equal elements (byte for
 * byte: a NaN's bits too) that ends the array — or -1 when that run is shorter than REP_MIN_BYTES.
 */
function repeatedTail(b: Uint8Array, size: number): number {
  const n = b.length;
  if (n < size + REP_MIN_BYTES) return -1;
  const last = n - size;
  let k = last; // the run starts at byte k
  outer: while (k >= size) {
    for (let j = 0; j < size; j++) if (b[k - size + j] !== b[last + j]) break outer;
    k -= size;
  }
  return n - (k + size) >= REP_MIN_BYTES ? k + size : -1;
}

/**
 * The most bytes $rep records may expand to in one state (a hostile record could ask for 2^53 elements; the
 * real state's largest array, the P2M map, is 1 byte per page: 2 MiB for 2,047 MiB of RAM).
 */
const MAX_REP_BYTES = 64 << 20;

/** The value of an encodeState text; CodecError names the path of anything malformed. */
export function decodeState(text: string): unknown {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) { throw new CodecError(`state: not JSON (${(e as Error).message})`); }
  return fromJson(raw, "state", 0, { repBytes: 0 });
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Nesting deeper than this is refused (the real state is a few levels deep; a hostile one could be 1e6). */
const MAX_DEPTH = 64;

function fromJson(v: unknown, at: string, depth: number, ctx: { repBytes: number }): unknown {
  if (depth > MAX_DEPTH) throw new CodecError(`${at}: nested more than ${MAX_DEPTH} deep`);
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x, i) => fromJson(x, `${at}[${i}]`, depth + 1, ctx));
  const keys = Object.keys(v);
  const o = v as Record<string, unknown>;
  if (keys.length === 1 && keys[0]!.startsWith("$")) {
    const tag = keys[0]!, p = o[tag];
    if (tag in TYPED) {
      if (typeof p !== "string" || !BASE64.test(p)) throw new CodecError(`${at}: ${tag} wants base64 text`);
      const bytes = Buffer.from(p, "base64");
      const C = TYPED[tag as TypedTag];
      if (bytes.length % C.BYTES_PER_ELEMENT !== 0) throw new CodecError(`${at}: ${bytes.length} bytes is not a whole number of ${C.name} elements`);
      // Copy into a fresh, aligned buffer (Buffer's pool offset need not be aligned).
      const ab = new ArrayBuffer(bytes.length);
      new Uint8Array(ab).set(bytes);
      return new C(ab);
    }
    if (tag === "$rep") {
      if (!Array.isArray(p) || p.length !== 3) throw new CodecError(`${at}: $rep wants [tag, base64, count]`);
      const [t, b64, n] = p as unknown[];
      if (typeof t !== "string" || !(t in TYPED)) throw new CodecError(`${at}: $rep of unknown type ${String(t)}`);
      if (typeof b64 !== "string" || !BASE64.test(b64)) throw new CodecError(`${at}: $rep wants base64 text`);
      const C = TYPED[t as TypedTag], size = C.BYTES_PER_ELEMENT;
      const head = Buffer.from(b64, "base64");
      if (head.length === 0 || head.length % size !== 0) throw new CodecError(`${at}: $rep's ${head.length} bytes are not a whole number (≥ 1) of ${C.name} elements`);
      if (typeof n !== "number" || !Number.isInteger(n) || n < head.length / size) throw new CodecError(`${at}: $rep count ${String(n)}: want an integer ≥ its ${head.length / size} elements`);
      ctx.repBytes += n * size;
      if (ctx.repBytes > MAX_REP_BYTES) throw new CodecError(`${at}: $rep records expand to more than ${MAX_REP_BYTES} bytes`);
      const all = new Uint8Array(n * size);
      all.set(head);
      // The last element given repeats to the end: copied byte for byte, the filled run doubling each time.
      const from = head.length - size;
      for (let filled = head.length; filled < all.length; filled = Math.min(all.length, 2 * filled - from)) all.copyWithin(filled, from, filled);
      return new C(all.buffer);
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
    Object.defineProperty(out, k, { value: fromJson(o[k], `${at}.${k}`, depth + 1, ctx), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
