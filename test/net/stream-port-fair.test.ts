/**
 * Fair egress of the bridge daemon's ports (src/net/stream-port.ts): over a real unix socket whose reader falls
 * behind, a source flooding the port drops only its own frames, and a second source's frames all get through,
 * in order, waiting behind at most a quantum of the flood; the same flood through a plain (tail-drop) port loses
 * the second source's frames (the A/B: what the fairness is for). A seeded fuzz of sources, sizes and reader
 * pauses: per-source order kept, every frame delivered or counted dropped, a source dropped only when its own
 * queue was full, and the queues empty once the reader catches up.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StreamPort, FAIR_HIGH_BYTES } from "../../src/net/stream-port.js";
import { StreamFrameDecoder } from "../../src/net/framing.js";

interface Pair { port: StreamPort; reader: Socket; got: Uint8Array[]; close(): Promise<void> }

/** A StreamPort (fair or plain) on the server end of a unix socket; the client end is the receiver, paused. */
async function pair(fair: boolean, maxQueuedBytes = 1 << 20): Promise<Pair> {
  const dir = mkdtempSync(join(tmpdir(), "xeno-fair-port-"));
  const path = join(dir, "s.sock");
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<Socket>((r) => server.once("connection", r));
  const reader = createConnection(path);
  await new Promise<void>((r) => reader.once("connect", () => r()));
  const sock = await accepted;
  const port = new StreamPort("under-test", sock, { onFrame: () => {}, onClose: () => {} }, maxQueuedBytes, fair);
  const got: Uint8Array[] = [];
  const dec = new StreamFrameDecoder((f) => got.push(new Uint8Array(f)));
  reader.pause();
  reader.on("data", (b: Buffer) => dec.push(b));
  reader.pause();
  return { port, reader, got, close: async () => { port.close(); reader.destroy(); await new Promise<void>((r) => server.close(() => r())); rmSync(dir, { recursive: true, force: true }); } };
}

/** A frame of `len` bytes from source `src` (byte 0), numbered `n` (bytes 1..4). */
function frame(src: number, n: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  f[0] = src;
  new DataView(f.buffer).setUint32(1, n);
  return f;
}
const srcOf = (f: Uint8Array): number => f[0]!;
const numOf = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset).getUint32(1);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Reads (the reader resumed) until `expect` frames have arrived, else until the port holds nothing more and
 * nothing has come for a second; 60 s at most. (A fixed 200 ms of quiet ended a fresh-clone run early under load:
 * 1,885 of 2,662 frames.)
 */
async function drainAll(p: Pair, expect?: number): Promise<void> {
  p.reader.resume();
  const end = Date.now() + 60_000;
  let last = -1, still = 0;
  while (Date.now() < end) {
    if (expect !== undefined && p.got.length >= expect) return;
    // Again each time: the slow reader's last turn may still pause it after this function began (its
    // setImmediate outlives clearInterval), which left the stream stalled for the whole minute once.
    p.reader.resume();
    await new Promise((r) => setTimeout(r, 10));
    if (p.got.length !== last) { still = 0; last = p.got.length; continue; }
    if (expect === undefined && p.port.fairBacklog === 0 && ++still >= 100) return;
  }
}

/** A floods (1500-byte frames, 6 MiB offered) while B sends one frame every 40 of A's; the reader reads 64 KiB per ms-ish turn. */
async function floodRun(fair: boolean): Promise<{ aSent: number; aOk: number; bSent: number; bGot: number[]; aGot: number; p: Pair }> {
  const p = await pair(fair);
  const A = { name: "A" }, B = { name: "B" };
  let aOk = 0, aSent = 0, bSent = 0, bOk = 0;
  // Slow reader: resumed for one turn every few ms.
  const slow = setInterval(() => { p.reader.resume(); setImmediate(() => p.reader.pause()); }, 3);
  for (let i = 0; i < 4096; i++) {
    if (p.port.send(frame(1, aSent++, 1500), A)) aOk++;
    if (i % 40 === 0 && p.port.send(frame(2, bSent++, 200), B)) bOk++;
    if (i % 64 === 0) await tick();
  }
  clearInterval(slow);
  // The fair port delivers every frame it accepted: wait for all of them (the plain one's losses are uncounted).
  await drainAll(p, fair ? aOk + bOk : undefined);
  const bGot = p.got.filter((f) => srcOf(f) === 2).map(numOf);
  return { aSent, aOk, bSent, bGot, aGot: p.got.filter((f) => srcOf(f) === 1).length, p };
}

test("fair egress: a flooding source drops only its own frames; a second source's all arrive, in order (the plain tail-drop port loses them)", async () => {
  const fair = await floodRun(true);
  try {
    process.stdout.write(`# fair port: A offered ${fair.aSent}, accepted ${fair.aOk}, delivered ${fair.aGot}; B sent ${fair.bSent}, delivered ${fair.bGot.length}; ` +
      `queued ${fair.p.port.stats.fairQueued}, dropped ${fair.p.port.stats.fairDropped}\n`);
    assert.ok(fair.aOk < fair.aSent, "the flood overran the port (else there was nothing to share)");
    assert.equal(fair.aGot, fair.aOk, "every accepted frame of A's arrived");
    assert.deepEqual(fair.bGot, Array.from({ length: fair.bSent }, (_, i) => i), "all of B's frames, in order");
    assert.equal(fair.p.port.fairBacklog, 0);
  } finally { await fair.p.close(); }
  const plain = await floodRun(false);
  try {
    process.stdout.write(`# plain port: A offered ${plain.aSent}, accepted ${plain.aOk}; B sent ${plain.bSent}, delivered ${plain.bGot.length}\n`);
    assert.ok(plain.bGot.length < plain.bSent, "the tail-drop port drops B's frames too");
  } finally { await plain.p.close(); }
});

test("fair egress: below the high mark frames go straight out (nothing queued); a closed port refuses and forgets its queues", async () => {
  const p = await pair(true);
  try {
    for (let i = 0; i < 20; i++) assert.equal(p.port.send(frame(1, i, 1000), "A"), true);
    assert.equal(p.port.stats.fairQueued, 0);
    for (let i = 20; i < 400; i++) p.port.send(frame(1, i, 1500), "A");
    assert.ok(p.port.stats.fairQueued > 0 && p.port.fairBacklog > 0, `past ${FAIR_HIGH_BYTES} bytes frames wait per source`);
    p.port.close();
    assert.equal(p.port.send(frame(1, 999, 100), "A"), false);
    assert.equal(p.port.fairBacklog, 0);
  } finally { await p.close(); }
});

/** mulberry32. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

const FUZZ_SEED = 0x5f41, FUZZ_FRAMES = 6000;

test(`fair egress fuzz (seed ${FUZZ_SEED.toString(16)}, ${FUZZ_FRAMES} frames from 5 sources, random sizes and reader pauses): per-source order, nothing lost uncounted, drops only from full queues`, async () => {
  const maxQ = 256 * 1024;
  const p = await pair(true, maxQ);
  const r = rng(FUZZ_SEED);
  const sent = [0, 0, 0, 0, 0], ok: number[][] = [[], [], [], [], []];
  let refused = 0, refusedNotFull = 0;
  try {
    for (let i = 0; i < FUZZ_FRAMES; i++) {
      const s = Math.min(4, Math.floor(r() * r() * 6)); // skewed: source 0 sends most
      const len = 14 + Math.floor(r() * (r() < 0.1 ? 65000 : 1500));
      const n = sent[s]!++;
      const backlogBefore = (p.port as unknown as { sources: Map<unknown, { bytes: number }> }).sources.get(s)?.bytes ?? 0; // reaching in
      const limit = p.port.sourceLimit();
      assert.ok(limit <= maxQ);
      if (p.port.send(frame(s, n, len), s)) ok[s]!.push(n);
      else { refused++; if (backlogBefore + len <= limit) refusedNotFull++; }
      assert.ok(p.port.fairBacklog <= 2 * maxQ + 65536 * 5, "the port's queues stay bounded");
      const x = r();
      if (x < 0.02) { p.reader.resume(); await tick(); p.reader.pause(); } else if (x < 0.05) await tick();
    }
    await drainAll(p, ok.reduce((a, o) => a + o.length, 0));
    const got: number[][] = [[], [], [], [], []];
    for (const f of p.got) got[srcOf(f)]!.push(numOf(f));
    process.stdout.write(`# fuzz seed ${FUZZ_SEED.toString(16)}: sent ${sent.join("/")}, accepted ${ok.map((o) => o.length).join("/")}, refused ${refused} ` +
      `(fairDropped ${p.port.stats.fairDropped}), queued ${p.port.stats.fairQueued}\n`);
    for (let s = 0; s < 5; s++) assert.deepEqual(got[s], ok[s], `source ${s}: exactly the accepted frames, in order`);
    assert.equal(refusedNotFull, 0, "no frame refused while its source's queue had room");
    assert.equal(refused, p.port.stats.fairDropped);
    assert.ok(refused > 0 && p.port.stats.fairQueued > 0, "the fuzz reached both queueing and dropping");
    assert.equal(p.port.fairBacklog, 0);
  } finally { await p.close(); }
});
