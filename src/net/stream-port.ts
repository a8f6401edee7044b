/**
 * A switch port over a byte stream in QEMU stream framing (framing.ts): a vif client's unix socket in the
 * daemon, or the connection to passt in the uplink.
 *
 * Egress is tail-dropped when the peer does not read: once more than `maxQueuedBytes` wait in the stream's
 * write buffer, send() returns false (counted as txDropped by the switch) instead of buffering without bound,
 * as a real switch port drops when its queue is full. A guest that stops reading slows no one else.
 *
 * Frames sent in one turn of the event loop go out in one write: the stream is corked at the first send and
 * uncorked on the next tick, so a burst (a socket read's worth of frames switched on, a batch of frames from a
 * domain's thread) costs one writev instead of one write per frame, and the reader gets them in one read.
 *
 * Fair egress (`fair`: the bridge daemon's ports, where frames from several domains meet). A plain tail drop
 * shares the queue first come, first served: one domain flooding a slow receiver keeps the queue full, and a
 * second domain's frames to the same receiver are dropped as often as the flooder's — its traffic stops. So
 * once more than FAIR_HIGH_BYTES wait in the stream, frames wait in a queue per source port instead (the switch
 * says which: send's `from`), each bounded by `maxQueuedBytes`, less when more than two sources wait
 * (sourceLimit; beyond it that source's frame is dropped, no one else's), and go out by deficit round robin (Shreedhar & Varghese 1995; Linux's fq_codel and the DRR
 * qdisc), FAIR_QUANTUM bytes per source per round, as the stream drains. A frame of a quiet source waits behind
 * at most one quantum of each busy one. Order within a source is kept. Below FAIR_HIGH_BYTES frames go straight
 * out as before (no queueing, no cost).
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
/** Fair egress: bytes waiting in the stream beyond which frames wait per source; the round robin's quantum. */
export const FAIR_HIGH_BYTES = 128 * 1024;
export const FAIR_QUANTUM = 64 * 1024;

/** One source's frames waiting for a fair port's stream (a ring of references: frames are immutable, switch.ts). */
interface SourceQueue {
  /** The source (the key in `sources`; the queue leaves the map when it empties). */
  from: unknown;
  frames: Uint8Array[];
  head: number;
  bytes: number;
  deficit: number;
  /** In the round robin's list. */
  active: boolean;
}

export interface StreamPortStats {
  /** Frames that waited in a source's queue (fair ports), and those dropped because their source's queue was full. */
  fairQueued: number;
  fairDropped: number;
}

const EMPTY = new Uint8Array(0);

export class StreamPort implements SwitchPort {
  private readonly decoder: StreamFrameDecoder;
  private closed = false;
  private corked = false;
  private readonly uncork = (): void => { this.corked = false; this.stream.uncork(); };

  readonly stats: StreamPortStats = { fairQueued: 0, fairDropped: 0 };
  /** Fair egress (see the file comment): per-source queues, the round robin's list and position, bytes queued. */
  private readonly sources = new Map<unknown, SourceQueue>();
  private readonly rr: SourceQueue[] = [];
  private rrAt = 0;
  /** The source at rrAt has had its quantum for this turn. */
  private inTurn = false;
  private queuedBytes = 0;

  constructor(readonly name: string, private readonly stream: Duplex, private readonly handlers: StreamPortHandlers,
              private readonly maxQueuedBytes = DEFAULT_MAX_QUEUED_BYTES, private readonly fair = false) {
    if (fair) stream.on("drain", () => this.pump());
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

  /** Queues `frame` out of this port; `from`: the port it came in on (fair egress keys its queue by it). */
  send(frame: Uint8Array, from?: unknown): boolean {
    if (this.closed) return false;
    if (!this.fair) {
      if (this.stream.writableLength > this.maxQueuedBytes) return false;
      this.write(frame);
      return true;
    }
    if (this.queuedBytes === 0 && this.stream.writableLength <= FAIR_HIGH_BYTES) { this.write(frame); return true; }
    let q = this.sources.get(from);
    if (q === undefined) { q = { from, frames: [], head: 0, bytes: 0, deficit: 0, active: false }; this.sources.set(from, q); }
    if (q.bytes + frame.length > this.sourceLimit()) { this.stats.fairDropped++; return false; }
    q.frames.push(frame);
    q.bytes += frame.length;
    this.queuedBytes += frame.length;
    this.stats.fairQueued++;
    if (!q.active) { q.active = true; q.deficit = 0; this.rr.push(q); }
    // The stream's 'drain' (it is above its high-water mark, or this frame would not wait) calls pump().
    return true;
  }

  /** A source's queue bound: the port's own (a lone sender keeps the buffer it had with the plain tail drop),
   * shared out when more than two sources wait (the port then holds about twice `maxQueuedBytes` in all, however
   * many ports send to it). */
  sourceLimit(): number {
    return Math.min(this.maxQueuedBytes, (2 * this.maxQueuedBytes) / Math.max(1, this.rr.length));
  }

  private write(frame: Uint8Array): void {
    if (!this.corked && NET_CORK) { this.corked = true; this.stream.cork(); process.nextTick(this.uncork); }
    this.stream.write(encodeStreamFrame(frame));
  }

  /** Deficit round robin over the waiting sources until the stream is above FAIR_HIGH_BYTES again or all are sent. */
  private pump(): void {
    const rr = this.rr;
    while (rr.length > 0 && !this.closed) {
      if (this.rrAt >= rr.length) this.rrAt = 0;
      const q = rr[this.rrAt]!;
      // A new turn adds a quantum (a turn cut short by a full stream goes on with what it had left: `turn`).
      if (!this.inTurn) { q.deficit += FAIR_QUANTUM; this.inTurn = true; }
      while (q.head < q.frames.length) {
        const f = q.frames[q.head]!;
        if (f.length > q.deficit) break;
        if (this.stream.writableLength > FAIR_HIGH_BYTES) return; // the next 'drain' goes on from here
        q.frames[q.head++] = EMPTY;
        q.deficit -= f.length;
        q.bytes -= f.length;
        this.queuedBytes -= f.length;
        this.write(f);
      }
      if (q.head === q.frames.length) {
        // Empty: out of the round (its deficit does not carry over, as in DRR) and forgotten (sources come and go).
        q.active = false;
        rr.splice(this.rrAt, 1);
        this.sources.delete(q.from);
      } else {
        // A source that never empties (a steady flood) must not grow its array without end.
        if (q.head >= 1024 && 2 * q.head >= q.frames.length) { q.frames.splice(0, q.head); q.head = 0; }
        this.rrAt++; // its quantum is spent: the next source's turn
      }
      this.inTurn = false;
    }
  }

  /** Frames waiting in the per-source queues of a fair port (bytes). */
  get fairBacklog(): number { return this.queuedBytes; }

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
    this.sources.clear();
    this.rr.length = 0;
    this.rrAt = 0;
    this.inTurn = false;
    this.queuedBytes = 0;
    this.stream.destroy();
    this.handlers.onClose(err);
  }
}
