/**
 * A switch port over a byte stream in QEMU stream framing (framing.ts): a vif client's unix socket in the
 * daemon, or passt's end of a socketpair in the uplink.
 *
 * Egress is tail-dropped when the peer does not read: once more than `maxQueuedBytes` wait in the stream's
 * write buffer, send() returns false (counted as txDropped by the switch) instead of buffering without bound,
 * as a real switch port drops when its queue is full. A guest that stops reading slows no one else.
 *
 * Frames sent in one turn of the event loop go out in one write: the stream is corked at the first send and
 * uncorked on the next tick, so a burst (a socket read's worth of frames switched on, a batch of frames from a
 * domain's thread) costs one writev instead of one write per frame, and the reader gets them in one read.
 */

import type { Duplex } from "node:stream";
import { NetError } from "./errors.js";
import { StreamFrameDecoder, encodeStreamFrame } from "./framing.js";
import type { SwitchPort } from "./switch.js";

export interface StreamPortHandlers {
  /** A complete frame arrived from the peer. */
  onFrame(frame: Buffer): void;
  /** The stream ended or failed; `err` is set for a framing violation (NET_BAD_LENGTH) or a stream error. Called
   * once. The stream is already destroyed. */
  onClose(err?: Error): void;
}

/** Cork per event-loop turn ($XENO_NET_BATCH=0 writes each frame at once, for A/B with the batches). */
const NET_CORK = process.env.XENO_NET_BATCH !== "0";

/** Default egress queue limit: 1 MiB, a few dozen 64 KiB GSO-sized frames. */
export const DEFAULT_MAX_QUEUED_BYTES = 1 << 20;

export class StreamPort implements SwitchPort {
  private readonly decoder: StreamFrameDecoder;
  private closed = false;
  private corked = false;
  private readonly uncork = (): void => { this.corked = false; this.stream.uncork(); };

  constructor(readonly name: string, private readonly stream: Duplex, private readonly handlers: StreamPortHandlers,
              private readonly maxQueuedBytes = DEFAULT_MAX_QUEUED_BYTES) {
    this.decoder = new StreamFrameDecoder((f) => handlers.onFrame(f));
    stream.on("data", (chunk: Buffer) => {
      if (this.closed) return;
      try {
        this.decoder.push(chunk);
      } catch (e) {
        this.close(e instanceof Error ? e : new NetError("NET_BAD_LENGTH", String(e)));
      }
    });
    stream.on("error", (e: Error) => this.close(e));
    stream.on("close", () => this.close());
    stream.on("end", () => this.close());
  }

  send(frame: Uint8Array): boolean {
    if (this.closed || this.stream.writableLength > this.maxQueuedBytes) return false;
    if (!this.corked && NET_CORK) { this.corked = true; this.stream.cork(); process.nextTick(this.uncork); }
    this.stream.write(encodeStreamFrame(frame));
    return true;
  }

  /** Stop (true) or resume reading the peer's frames: the stream's own backpressure then reaches the peer. */
  pauseReading(stop: boolean): void {
    if (this.closed) return;
    if (stop) this.stream.pause();
    else this.stream.resume();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Destroy the stream (idempotent); onClose runs once, with `err` if given. */
  close(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.destroy();
    this.handlers.onClose(err);
  }
}
