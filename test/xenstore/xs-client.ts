/**
 * Test helpers: encode XenStore requests, split a reply stream into messages, and a raw-protocol client over
 * the unix socket (for what xenstore-utils cannot do, such as two interleaved transactions).
 */

import { createConnection, type Socket } from "node:net";
import { XS_HEADER_SIZE, XsType } from "../../src/xenstore/wire.js";

export interface XsMessage {
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
}

/** Payload from NUL-terminated strings (a trailing raw value may be appended by the caller). */
export function strings(...parts: string[]): Buffer {
  return Buffer.from(parts.map((p) => p + "\0").join(""), "latin1");
}

export function encode(type: number, reqId: number, txId: number, payload: Uint8Array | string): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "latin1") : Buffer.from(payload);
  const h = Buffer.alloc(XS_HEADER_SIZE);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(reqId, 4);
  h.writeUInt32LE(txId, 8);
  h.writeUInt32LE(body.length, 12);
  return Buffer.concat([h, body]);
}

/** Reassembles messages from a byte stream. */
export class MessageReader {
  readonly messages: XsMessage[] = [];
  private buf = Buffer.alloc(0);
  feed(b: Uint8Array): void {
    this.buf = Buffer.concat([this.buf, b]);
    while (this.buf.length >= XS_HEADER_SIZE) {
      const len = this.buf.readUInt32LE(12);
      if (this.buf.length < XS_HEADER_SIZE + len) break;
      this.messages.push({
        type: this.buf.readUInt32LE(0),
        reqId: this.buf.readUInt32LE(4),
        txId: this.buf.readUInt32LE(8),
        payload: Buffer.from(this.buf.subarray(XS_HEADER_SIZE, XS_HEADER_SIZE + len)),
      });
      this.buf = this.buf.subarray(XS_HEADER_SIZE + len);
    }
  }
}

/** The payload's NUL-terminated strings. */
export function parts(payload: Buffer): string[] {
  const s = payload.toString("latin1");
  const out = s.split("\0");
  if (out[out.length - 1] === "") out.pop();
  return out;
}

export class RawClient {
  readonly events: XsMessage[] = [];
  private readonly reader = new MessageReader();
  private readonly waiting = new Map<number, (m: XsMessage) => void>();
  private nextReq = 1;
  private closedErr: Error | undefined;

  private constructor(private readonly sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.reader.feed(d);
      for (const m of this.reader.messages.splice(0)) {
        if (m.type === XsType.WATCH_EVENT) {
          this.events.push(m);
          continue;
        }
        const w = this.waiting.get(m.reqId);
        if (w !== undefined) {
          this.waiting.delete(m.reqId);
          w(m);
        }
      }
    });
    sock.on("close", () => {
      this.closedErr = new Error("connection closed");
    });
    sock.on("error", () => {});
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once("connect", () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  get closed(): boolean {
    return this.closedErr !== undefined;
  }

  request(type: number, payload: Uint8Array | string, txId = 0): Promise<XsMessage> {
    const reqId = this.nextReq++;
    return new Promise((resolve, reject) => {
      if (this.closedErr) return reject(this.closedErr);
      const t = setTimeout(() => reject(new Error(`no reply to request ${reqId} (type ${type})`)), 5000);
      this.waiting.set(reqId, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.sock.write(encode(type, reqId, txId, payload));
    });
  }

  /** Raw bytes, no reply expected. */
  send(bytes: Uint8Array): void {
    this.sock.write(bytes);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Deterministic PRNG (xorshift32) for fuzz tests. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
