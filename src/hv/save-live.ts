/**
 * Live pre-copy migration (Clark et al., "Live Migration of Virtual Machines", NSDI 2005; libxc's
 * xc_sr_save.c): guest RAM is sent while the domain runs, then the pages it wrote meanwhile, round after
 * round, until few are left or enough rounds have passed; then the domain is paused and saved, and the rest —
 * the last round's pages, the pages written since, the pages Xen and the back-ends write in place — goes with
 * its state. The stream is the save stream (docs/save-format.md): PAGE_DATA batches before the domain record
 * in a live stream, a page as often as it was dirty (the reader keeps the last copy).
 *
 * The dirty log: the vCPUs' MMUs mark pages at TLB fills by writes (src/mmu/mmu.ts `dirty`), the Xen layer
 * marks its copies to the guest and the pages it grants back-ends for writing (src/xen/guest-memory.ts,
 * grant-table.ts); each round takes the marks and drops write permission from every TLB entry, in the
 * domain's worker between slices (Machine.dirtyRound).
 */
import { createConnection } from "node:net";
import type { Readable } from "node:stream";
import { SYNC_ACK_BYTES, SYNC_ACK_MAGIC, type ByteSink, type ByteSource, type PageList, type SaveStreamWriter } from "./save-format.js";

/** When pre-copy stops (libxc's defaults: xc_sr_save.c, fewer than 50 dirty pages or 5 iterations). */
export interface LivePolicy {
  /** Rounds of pre-copy at most, the first (all of RAM) included. */
  maxRounds: number;
  /** Stop once a round leaves fewer than this many dirty pages. */
  minDirty: number;
}

export const DEFAULT_LIVE_POLICY: LivePolicy = { maxRounds: 5, minDirty: 50 };

/** Checks a policy from a request (integers, rounds 1..100, pages 0..2^24); returns why not, or null. */
export function policyError(p: LivePolicy): string | null {
  if (!Number.isInteger(p.maxRounds) || p.maxRounds < 1 || p.maxRounds > 100) return `max rounds ${p.maxRounds}: want 1..100`;
  if (!Number.isInteger(p.minDirty) || p.minDirty < 0 || p.minDirty > 1 << 24) return `dirty-page threshold ${p.minDirty}: want 0..16777216`;
  return null;
}

/**
 * After pre-copy round `round` (1 = the first, all of RAM) left `dirty` pages dirty: go on with another round,
 * or stop and copy. Stops when fewer than minDirty are dirty or maxRounds rounds were sent.
 */
export function precopyDone(p: LivePolicy, round: number, dirty: number): boolean {
  return dirty < p.minDirty || round >= p.maxRounds;
}

/** One pre-copy round as reported: pages sent (with or without data), how long it took, pages left dirty. */
export interface RoundReport { pages: number; ms: number; dirtyAfter: number }

/** What the live send needs from the hypervisor (Hypervisor.migrateSend gives the domain's runner). */
export interface LiveDomain {
  /** The dirty log in the domain's worker (DomainRunner.dirty). */
  dirty(op: "start" | "round" | "stop", final?: boolean): Promise<Int32Array>;
  /** The domain's RAM (the board's whole RAM, Xen area included): read while it runs. */
  ram: Uint8Array;
}

/**
 * Pre-copy: sends all of RAM, then rounds of dirty pages, until the policy says stop. Returns the rounds and
 * the pages still dirty at the end (to send with the state, besides the final round's). The dirty log must
 * be running (dirty("start") answered). On an error the caller stops the log.
 */
export async function precopy(dom: LiveDomain, w: SaveStreamWriter, policy: LivePolicy,
  onRound?: (r: RoundReport, round: number) => void): Promise<{ rounds: RoundReport[]; left: Int32Array }> {
  const total = dom.ram.length >>> 12;
  let list: PageList = { length: total, at: (i) => i };
  const rounds: RoundReport[] = [];
  for (let round = 1; ; round++) {
    const t0 = performance.now();
    await w.pages(dom.ram, list);
    const dirty = await dom.dirty("round");
    const r = { pages: list.length, ms: performance.now() - t0, dirtyAfter: dirty.length };
    rounds.push(r);
    onRound?.(r, round);
    if (precopyDone(policy, round, dirty.length)) return { rounds, left: dirty };
    list = dirty;
  }
}

/** The sorted union of two sorted page lists (the last round's leftovers and the final round's pages). */
export function unionPages(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  let i = 0, j = 0, n = 0;
  while (i < a.length || j < b.length) {
    const x = i < a.length ? a[i]! : Infinity, y = j < b.length ? b[j]! : Infinity;
    const v = x <= y ? x : y;
    if (x === v) i++;
    if (y === v) j++;
    out[n++] = v;
  }
  return out.subarray(0, n);
}

/**
 * A unix socket the client listens on (xeno migrate), as the stream's sink: the hypervisor connects and writes
 * the stream; the client passes it on to the transport. Each write waits until the socket took it, so a slow
 * transport slows the rounds (and a dead one fails them: the socket errors or closes). The other direction
 * carries the receiver's answers to drain marks (SYNC_ACK, 8 bytes each), which the client passes back:
 * `acked(seq, ms)` resolves true once the answer to mark `seq` came, false after `ms` (a receiver that does
 * not answer them), and rejects when the socket fails.
 */
export async function socketSink(path: string): Promise<{ sink: ByteSink; acked(seq: number, ms: number): Promise<boolean>; end(): Promise<void>; destroy(): void }> {
  const s = createConnection(path);
  await new Promise<void>((resolve, reject) => { s.once("connect", resolve); s.once("error", reject); });
  let failed: Error | null = null;
  let lastAck = -1;
  const ack = Buffer.alloc(SYNC_ACK_BYTES);
  let have = 0;
  let waiter: ((r: boolean | Error) => void) | null = null;
  s.on("data", (b: Buffer) => {
    for (let i = 0; i < b.length; i++) {
      ack[have++] = b[i]!;
      if (have < SYNC_ACK_BYTES) continue;
      have = 0;
      if (ack.readUInt32LE(0) !== SYNC_ACK_MAGIC) { failed ??= new Error("the migration's client sent something that is not a drain answer"); s.destroy(); return; }
      lastAck = ack.readUInt32LE(4);
    }
    waiter?.(true);
  });
  const fail = (e: Error): void => { failed ??= e; waiter?.(failed); };
  s.on("error", (e) => fail(e));
  s.on("close", () => fail(new Error("the migration's client closed the stream")));
  return {
    sink: {
      write: (b) => new Promise<void>((resolve, reject) => {
        if (failed !== null) { reject(failed); return; }
        s.write(b, (e) => (e ? reject(e) : failed !== null ? reject(failed) : resolve()));
      }),
    },
    acked: (seq, ms) => new Promise<boolean>((resolve, reject) => {
      const done = (r: boolean | Error): void => {
        if (r instanceof Error) { clearTimeout(timer); waiter = null; reject(r); }
        else if (lastAck >= seq) { clearTimeout(timer); waiter = null; resolve(true); }
      };
      const timer = setTimeout(() => { waiter = null; resolve(false); }, ms);
      waiter = done;
      if (failed !== null) done(failed); else done(true);
    }),
    end: () => new Promise<void>((resolve, reject) => { if (failed !== null) reject(failed); else s.end(() => resolve()); }),
    destroy: () => { s.destroy(); },
  };
}

/** RARP (RFC 903) ethertype and its "request reverse" opcode, as QEMU's announce frame uses them. */
const ETHERTYPE_RARP = 0x8035, RARP_OP_REQUEST_REVERSE = 3;

/**
 * The frame a moved guest's vif sends so that the switch learns its new port at once: QEMU's self-announce
 * after a migration (net/announce.c, announce_self_create): a broadcast RARP request from the guest's MAC,
 * 60 bytes. Xen's own guests send a gratuitous ARP from netfront after a suspend (netif_notify_peers); a
 * transparently moved guest does not know it moved, so the hypervisor sends this on its behalf: the guest's
 * IP address is not needed, only its MAC. `mac`: "aa:bb:cc:dd:ee:ff".
 */
export function announceFrame(mac: string): Uint8Array {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(mac);
  if (m === null) throw new RangeError(`bad MAC '${mac}'`);
  const hw = m.slice(1, 7).map((x) => parseInt(x, 16));
  const f = new Uint8Array(60); // the minimum Ethernet frame without FCS; the tail stays zero
  f.fill(0xff, 0, 6); // broadcast
  f.set(hw, 6);
  const dv = new DataView(f.buffer);
  dv.setUint16(12, ETHERTYPE_RARP);
  dv.setUint16(14, 1); // htype: Ethernet
  dv.setUint16(16, 0x0800); // ptype: IPv4
  f[18] = 6; f[19] = 4; // hlen, plen
  dv.setUint16(20, RARP_OP_REQUEST_REVERSE);
  f.set(hw, 22); // sender MAC; sender IP 0
  f.set(hw, 32); // target MAC; target IP 0
  return f;
}

/** Bytes a readableSource holds before it pauses its stream (resumed below half of it). */
const SOURCE_HIGH_WATER = 1 << 20;

/**
 * A Readable as a ByteSource: reads only what is asked (the rest stays for the next read). The stream's chunks
 * are kept as they came and handed out as views — `read` never gathers two chunks into a new buffer — and
 * `readInto` copies them straight into the caller's views (a migration's pages into the new domain memory), so
 * a stream of pages costs no buffers beyond the stream's own chunks (each a 64 KiB allocation by Node; the
 * reader's 4 MiB gathering buffer per PAGE_DATA record is gone: V8 answered that external memory with full
 * collections, docs/benchmarks.md, session 24). The stream is paused above SOURCE_HIGH_WATER bytes held.
 */
export function readableSource(s: Readable): ByteSource {
  const q: Buffer[] = [];
  let head = 0, held = 0, ended = false, paused = false;
  let wake: (() => void) | null = null;
  const kick = (): void => { const w = wake; wake = null; w?.(); };
  s.on("data", (b: Buffer) => {
    if (b.length === 0) return;
    q.push(b);
    held += b.length;
    if (held >= SOURCE_HIGH_WATER && !paused) { paused = true; s.pause(); }
    kick();
  });
  for (const ev of ["end", "close", "error"]) s.on(ev, () => { ended = true; kick(); });
  /** Up to n bytes of the first chunk, as a view (no copy); null when nothing is held. */
  const next = (n: number): Buffer | null => {
    const c = q[0];
    if (c === undefined) return null;
    const k = Math.min(n, c.length - head);
    const out = c.subarray(head, head + k);
    head += k;
    held -= k;
    if (head === c.length) { q.shift(); head = 0; }
    if (paused && held < SOURCE_HIGH_WATER / 2) { paused = false; s.resume(); }
    return out;
  };
  const more = async (): Promise<boolean> => {
    if (q.length > 0) return true;
    if (ended) return false;
    await new Promise<void>((r) => { wake = r; });
    return q.length > 0 || !ended;
  };
  return {
    async read(n: number): Promise<Uint8Array> {
      while (q.length === 0) if (!(await more())) return new Uint8Array(0);
      return next(n)!;
    },
    async readInto(views: readonly Uint8Array[]): Promise<number> {
      let total = 0;
      for (const v of views) {
        let o = 0;
        while (o < v.length) {
          while (q.length === 0) if (!(await more())) return total;
          const b = next(v.length - o)!;
          v.set(b, o);
          o += b.length;
          total += b.length;
        }
      }
      return total;
    },
  };
}

/**
 * A unix socket the client listens on (xeno migrate-receive), as the stream's source: the receiving
 * hypervisor reads the stream from it while the sender still runs the domain (pre-copy pages go straight
 * into the new domain memory), so only the last part and the build are left once the sender paused.
 * `ack(seq)` answers a drain mark (SYNC_ACK on the same socket; the client carries it back to the sender).
 */
export async function socketSource(path: string): Promise<{ source: ByteSource; ack(seq: number): void; destroy(): void }> {
  const s = createConnection(path);
  await new Promise<void>((resolve, reject) => { s.once("connect", resolve); s.once("error", reject); });
  s.on("error", () => { /* seen as the end of the stream: the reader says where it was cut */ });
  return {
    source: readableSource(s),
    ack: (seq) => {
      const b = Buffer.alloc(SYNC_ACK_BYTES);
      b.writeUInt32LE(SYNC_ACK_MAGIC, 0);
      b.writeUInt32LE(seq >>> 0, 4);
      if (!s.destroyed) s.write(b);
    },
    destroy: () => { s.destroy(); },
  };
}
