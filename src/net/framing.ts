/**
 * Frames over a byte stream as QEMU's "stream" netdev sends them (net/stream.c, and net/socket.c before it):
 * each Ethernet frame preceded by its length as a 4-byte big-endian integer, no other header. passt speaks
 * exactly this on its socket (passt tap.c tap_send / tap_handler_passt), so passt, a QEMU VM
 * (`-netdev stream,addr.type=unix,addr.path=<bridge socket>`) and a Xeno vif are interchangeable clients.
 *
 * The length is the only sync the stream has: a length outside [MIN_FRAME, MAX_FRAME] means the peer is broken
 * or hostile and everything after it is garbage, so the decoder fails for good (NET_BAD_LENGTH) and the caller
 * drops the connection. (passt skips such frames instead, which only works while the lengths stay sane.)
 */

import { NetError } from "./errors.js";
import { MAX_FRAME, MIN_FRAME } from "./ethernet.js";

export const STREAM_HEADER_LEN = 4;

/** One frame with its length prefix, ready for a single write. */
export function encodeStreamFrame(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(STREAM_HEADER_LEN + frame.length);
  out.writeUInt32BE(frame.length, 0);
  out.set(frame, STREAM_HEADER_LEN);
  return out;
}

/**
 * Splits a byte stream into frames. Chunks are queued until a whole header or frame is there and then copied
 * once into a frame of its own (receivers may keep frames; a view would pin the socket's whole read buffer).
 */
export class StreamFrameDecoder {
  private chunks: Buffer[] = [];
  private have = 0;
  /** Bytes needed for the next step: a header, or the body whose length the last header gave. */
  private need = STREAM_HEADER_LEN;
  private inBody = false;
  private failed: NetError | undefined;

  constructor(private readonly onFrame: (frame: Buffer) => void,
              private readonly minFrame = MIN_FRAME, private readonly maxFrame = MAX_FRAME) {}

  /** Bytes received but not yet delivered as a frame. */
  get pendingBytes(): number {
    return this.have;
  }

  /** Feed bytes; calls onFrame for each complete frame. Throws NET_BAD_LENGTH on a bad prefix, and again on
   * every later call. */
  push(chunk: Uint8Array): void {
    if (this.failed !== undefined) throw this.failed;
    if (chunk.length === 0) return;
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.have += chunk.length;
    while (this.have >= this.need) {
      const bytes = this.take(this.need);
      if (!this.inBody) {
        const len = bytes.readUInt32BE(0);
        if (len < this.minFrame || len > this.maxFrame) {
          this.failed = new NetError("NET_BAD_LENGTH",
            `stream length prefix ${len} is outside [${this.minFrame}, ${this.maxFrame}]`);
          this.chunks = [];
          this.have = 0;
          throw this.failed;
        }
        this.need = len;
        this.inBody = true;
      } else {
        this.need = STREAM_HEADER_LEN;
        this.inBody = false;
        this.onFrame(bytes);
      }
    }
  }

  /** Remove and return the first n queued bytes as a new buffer (n <= have). */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, k);
      filled += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.have -= n;
    return out;
  }
}
