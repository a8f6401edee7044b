/**
 * XAPI's value conventions: opaque references ("OpaqueRef:<uuid>", "OpaqueRef:NULL" for none), dateTime values
 * (written "20261207T03:55:00Z", as xapi does), and byte counts as integers.
 */
import { randomUUID } from "node:crypto";

export const NULL_REF = "OpaqueRef:NULL";

export function newRef(): string { return `OpaqueRef:${randomUUID()}`; }

/** A point in time as XAPI writes it: JSON-RPC gets the string, XML-RPC a <dateTime.iso8601>. */
export class XapiDateTime {
  constructor(readonly ms: number) {}
  toJSON(): string {
    return new Date(this.ms).toISOString().replace(/\.\d{3}Z$/, "Z").replace(/-/g, "").replace(/^(\d{8})T/, "$1T");
  }
}

/**
 * A 32-bit integer XML-RPC must carry as <int> rather than XAPI's int64 <string>: event.from's valid_ref_counts,
 * which Xen Orchestra's connector compares with a number (a string would make it reload tasks after every batch).
 */
export class Int32 {
  constructor(readonly n: number) {}
  toJSON(): number { return this.n; }
}
