/**
 * netback multi-queue (io/netif.h "multi-queue-max-queues" / "multi-queue-num-queues"; Linux netfront's
 * xennet_create_queues / write_queue_xenstore_keys): the queues' keys under queue-N/, a tx/rx ring pair and
 * event channel(s) per queue, receive steering by flow (steer.ts), tx served on every ring, save/restore of every
 * queue; a hostile front-end (queue counts beyond the offer, missing or bad per-queue keys, rings or channels
 * shared between queues) fails the device with nothing left bound; a seeded fuzz over the queue keys.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_MAX_QUEUES, restoreNetBack } from "../../src/backends/net/index.js";
import { flowQueue } from "../../src/backends/net/steer.js";
import { XenStore, type StoreApi } from "../../src/xenstore/index.js";
import { XenDomain } from "../../src/xen/domain.js";
import {
  BASE, DOMID, FakeHost, Front, GFN0, PAGE, RX_RING_REF, TX_RING_REF, TX_RING_GFN, RX_RING_GFN, REF_UNUSED, REF_OUT_OF_RANGE, TX_REF0, MAC,
  off, seg, plainFrame, setup, type Harness,
} from "./net-harness.js";

/** Queue k > 0's ring pages and grant refs (queue 0 uses the harness's). */
const ringGfn = (k: number): [number, number] => k === 0 ? [TX_RING_GFN, RX_RING_GFN] : [GFN0 + 0x320 + 2 * k, GFN0 + 0x321 + 2 * k];
const ringRef = (k: number): [number, number] => k === 0 ? [TX_RING_REF, RX_RING_REF] : [200 + 2 * k, 201 + 2 * k];

interface Mq { h: Harness; fronts: Front[] }

/** A source port from `from` on whose flow steer.ts sends to queue q of n (fails rather than loops). */
function portFor(q: number, n: number, from: number): number {
  for (let p = from; p < from + 1000; p++) { const s = seg(1, 10, { sport: p }); if (flowQueue(s, s.length, n) === q) return p; }
  throw new Error(`no port in ${from}..${from + 999} maps to queue ${q} of ${n}`);
}

/** A front-end with n queues, keys as netfront writes them (split channels when `split`); `edit` changes keys. */
function connectMq(n: number, o: { split?: boolean; edit?: (keys: Record<string, string>, fronts: Front[]) => void } = {}): Mq {
  const h = setup({ connect: false });
  const fronts: Front[] = [];
  const keys: Record<string, string> = { "multi-queue-num-queues": String(n), "request-rx-copy": "1", "feature-sg": "1", "feature-rx-notify": "1" };
  for (let k = 0; k < n; k++) {
    const f = k === 0 ? h.f : new Front(h.d);
    [f.txRingGfn, f.rxRingGfn] = ringGfn(k);
    const [tr, rr] = ringRef(k);
    f.grant(tr, f.txRingGfn); f.grant(rr, f.rxRingGfn);
    f.initRings();
    f.txPort = h.d.evtchn.allocUnbound(0);
    f.rxPort = o.split ? h.d.evtchn.allocUnbound(0) : f.txPort;
    const at = n === 1 ? "" : `queue-${k}/`;
    keys[`${at}tx-ring-ref`] = String(tr); keys[`${at}rx-ring-ref`] = String(rr);
    if (o.split) { keys[`${at}event-channel-tx`] = String(f.txPort); keys[`${at}event-channel-rx`] = String(f.rxPort); }
    else keys[`${at}event-channel`] = String(f.txPort);
    fronts.push(f);
  }
  o.edit?.(keys, fronts);
  const fp = `/local/domain/${DOMID}/device/vif/0`;
  for (const [k, v] of Object.entries(keys)) h.store.write(h.gs, null, `${fp}/${k}`, Buffer.from(v));
  h.setFrontState(4);
  for (const f of fronts) { f.notified(f.txPort); f.notified(f.rxPort); }
  return { h, fronts };
}

const errorKey = (h: Harness): string => {
  try { return Buffer.from(h.store.read(h.store.connect(0, () => {}), null, `/local/domain/0/error/backend/vif/${DOMID}/0/error`)).toString(); }
  catch { return ""; }
};

test("multi-queue: offered, two queues connect from queue-N/ keys; flows keep to one queue and spread over both", () => {
  const { h, fronts } = connectMq(2);
  assert.equal(h.backKey("multi-queue-max-queues"), String(DEFAULT_MAX_QUEUES));
  assert.ok(h.back.connected, h.logs.join("\n"));
  assert.equal(h.back.queues, 2);
  assert.equal(h.backKey("state"), "4");
  for (const f of fronts) f.postRx(16);
  // 16 flows (source ports), 3 segments each: each flow's segments land on one ring, in order; both rings used.
  const perQueue = [0, 0];
  for (let p = 0; p < 16; p++) {
    const sport = 1000 + p;
    const q = flowQueue(seg(1, 100, { sport }), seg(1, 100, { sport }).length, 2);
    perQueue[q]!++;
    for (let i = 0; i < 3; i++) assert.ok(h.back.receive(seg(1 + 100 * i, 100, { sport, flags: 0x18 })));
    h.back.flushRx();
    for (let k = 0; k < 2; k++) {
      const r = fronts[k]!.rxResponses();
      if (k === q) assert.ok(r.length >= 1, `flow ${sport}: queue ${k} got its frames`);
      else assert.equal(r.length, 0, `flow ${sport}: nothing on queue ${k}`);
    }
    fronts[q]!.postRx(16);
  }
  assert.ok(perQueue[0]! > 0 && perQueue[1]! > 0, `flows spread over both queues: ${perQueue}`);
  // Non-IP frames go to queue 0.
  assert.ok(h.back.receive(plainFrame(100)));
  assert.equal(fronts[0]!.rxResponses().length, 1);
  assert.equal(fronts[1]!.rxResponses().length, 0);
  // Tx on either ring reaches `out`.
  for (const k of [1, 0]) {
    fronts[k]!.sendPacket(plainFrame(200, k + 1), { page0: k });
    fronts[k]!.pushTx(true);
    assert.deepEqual(fronts[k]!.txResponses().map((r) => r.status), [0]);
  }
  assert.equal(h.frames.length, 2);
  assert.deepEqual(h.frames.map((f) => f[20]), [plainFrame(200, 2)[20], plainFrame(200, 1)[20]]);
});

test("multi-queue: poll() serves every ring; one queue's full rx ring does not hold back the other", () => {
  const { h, fronts } = connectMq(2, { split: true });
  assert.equal(h.back.queues, 2);
  // Requests queued without a notification (the front-end saw req_event ahead): poll() finds them on both rings.
  for (const k of [0, 1]) { fronts[k]!.sendPacket(plainFrame(120, k + 3), { page0: k }); fronts[k]!.pushTx(false); }
  h.back.poll();
  assert.equal(h.frames.length, 2);
  // Queue 0 has no rx buffers: its flow waits in its own rx queue; queue 1's flow is delivered at once.
  let s0 = 2000, s1 = 2000;
  s0 = portFor(0, 2, s0); s1 = portFor(1, 2, s1);
  fronts[1]!.postRx(4);
  assert.ok(h.back.receive(seg(1, 100, { sport: s0, flags: 0x18 })));
  assert.ok(h.back.receive(seg(1, 100, { sport: s1, flags: 0x18 })));
  assert.equal(fronts[1]!.rxResponses().length, 1);
  assert.equal(fronts[0]!.rxResponses().length, 0);
  fronts[0]!.postRx(4); // the refill notifies queue 0's rx port: the waiting frame goes in
  assert.equal(fronts[0]!.rxResponses().length, 1);
});

test("multi-queue: save and restore keep every queue, with the frames waiting on each", () => {
  const { h, fronts } = connectMq(3, { split: true });
  const s2 = portFor(2, 3, 3000);
  assert.ok(h.back.receive(seg(1, 200, { sport: s2, flags: 0x18 }))); // no buffers on queue 2: waits
  const st = h.back.save();
  assert.equal(st.moreQueues?.length, 2);
  assert.equal(st.moreQueues![1]!.rxQueue.length, 1);
  // Restore into a copy of the domain (as a migration's destination: memory, Xen state, store nodes).
  const ram = new SharedArrayBuffer(h.d.mem.u8.length);
  new Uint8Array(ram).set(h.d.mem.u8);
  const xen = new XenDomain({ ram, ramBase: BASE, vcpus: 1, host: new FakeHost(), domid: DOMID, store: "none", restoring: true });
  xen.restore(structuredClone(h.d.save()));
  const store = new XenStore();
  copyTree(h.store, store, "/local/domain");
  const vif = { devid: 0, mac: MAC, mtu: 1500, bridge: "xenbr0" };
  const back = restoreNetBack({ xen, store, vif, out: () => {}, log: () => {} }, structuredClone(st));
  assert.ok(back.connected);
  assert.equal(back.queues, 3);
  assert.deepEqual(xen.evtchn.detachedHostPorts(), []);
  const h2 = { d: xen };
  const f2 = new Front(h2.d);
  [f2.txRingGfn, f2.rxRingGfn] = ringGfn(2);
  f2.rxProd = fronts[2]!.rxProd; f2.rxCons = fronts[2]!.rxCons; f2.rxPort = fronts[2]!.rxPort;
  f2.postRx(4);
  assert.equal(f2.rxResponses().length, 1, "the frame saved waiting on queue 2 lands after the restore");
  // A state with more queues than this vif offers is refused.
  const many = { ...st, moreQueues: Array.from({ length: DEFAULT_MAX_QUEUES }, () => st.moreQueues![0]!) };
  const xen3 = new XenDomain({ ram, ramBase: BASE, vcpus: 1, host: new FakeHost(), domid: DOMID, store: "none", restoring: true });
  xen3.restore(structuredClone(h.d.save()));
  assert.throws(() => restoreNetBack({ xen: xen3, store, vif, out: () => {}, log: () => {} }, structuredClone(many)), /moreQueues/);
  assert.equal(xen3.evtchn.hostEndpoints().size, 0, "a refused state attaches nothing");
});

function copyTree(from: StoreApi, to: StoreApi, path: string): void {
  const a = from.connect(0, () => {}), b = to.connect(0, () => {});
  const walk = (p: string): void => {
    to.write(b, null, p, from.read(a, null, p));
    to.setPerms(b, null, p, from.getPerms(a, null, p));
    for (const c of from.directory(a, null, p)) walk(`${p}/${c}`);
  };
  walk(path);
  from.disconnect(a); to.disconnect(b);
}

test("multi-queue hostile front-end: queue counts, per-queue keys, shared rings and channels fail the device, nothing bound", () => {
  const cases: [number, (k: Record<string, string>, f: Front[]) => void, RegExp][] = [
    [2, (k) => { k["multi-queue-num-queues"] = String(DEFAULT_MAX_QUEUES + 1); }, /queues/],
    [2, (k) => { k["multi-queue-num-queues"] = "0"; }, /queues/],
    [2, (k) => { k["multi-queue-num-queues"] = "4294967296"; }, /queues/],
    [2, (k) => { k["multi-queue-num-queues"] = "two"; }, /queues/],
    [2, (k) => { k["multi-queue-num-queues"] = "3"; }, /queue-2\/tx-ring-ref/], // a queue the front-end did not write
    [2, (k) => { delete k["queue-1/rx-ring-ref"]; }, /queue-1\/tx-ring-ref and rx-ring-ref/],
    [2, (k) => { delete k["queue-1/event-channel"]; }, /queue-1\/event-channel/],
    [2, (k) => { k["queue-1/tx-ring-ref"] = String(REF_UNUSED); }, /queue-1\/tx-ring-ref/],
    [2, (k) => { k["queue-1/rx-ring-ref"] = String(REF_OUT_OF_RANGE); }, /queue-1\/rx-ring-ref/],
    [2, (k) => { k["queue-1/rx-ring-ref"] = String(TX_REF0); }, /queue-1\/rx-ring-ref/], // a read-only grant
    [2, (k) => { k["queue-1/tx-ring-ref"] = String(RX_RING_REF); }, /another queue/], // queue 0's rx ring
    [2, (k) => { k["queue-1/event-channel"] = k["queue-0/event-channel"]!; }, /queue-1\/binding event channel/],
    [3, (k) => { k["queue-2/event-channel"] = "77"; }, /queue-2\/binding event channel 77/],
    [2, (_k, f) => { f[1]!.dv.setUint32(off(f[1]!.txRingGfn), 1000, true); }, /queue-1\/tx ring indexes corrupt/],
  ];
  for (const [n, edit, why] of cases) {
    const { h } = connectMq(n, { edit });
    assert.ok(!h.back.connected, String(why));
    assert.equal(h.backKey("state"), "5", String(why));
    assert.match(errorKey(h), why);
    assert.equal(h.d.evtchn.hostEndpoints().size, 0, `${why}: every port unbound again`);
  }
});

test("multi-queue fuzz (seed 0x6d71, 400 rounds): random queue keys never throw; connected with every port bound, or failed with none", () => {
  let seed = 0x6d71;
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
  const refs = [TX_RING_REF, RX_RING_REF, 202, 203, 204, 205, REF_UNUSED, REF_OUT_OF_RANGE, TX_REF0, 0];
  let connected = 0, failed = 0;
  for (let round = 0; round < 400; round++) {
    const n = 1 + rnd(3);
    const { h } = connectMq(n, {
      split: rnd(2) === 0,
      edit: (k) => {
        for (let m = rnd(3); m > 0; m--) {
          const keys = Object.keys(k).filter((x) => x !== "request-rx-copy");
          const key = keys[rnd(keys.length)]!;
          const v = rnd(5);
          if (v === 0) delete k[key];
          else if (v === 1) k[key] = String(refs[rnd(refs.length)]);
          else if (v === 2) k[key] = String(rnd(8));
          else if (v === 3) k[key] = ["", "x", "-1", "99999999999"][rnd(4)]!;
          else k["multi-queue-num-queues"] = String(rnd(DEFAULT_MAX_QUEUES + 2));
        }
      },
    });
    if (h.back.connected) {
      connected++;
      const ports = h.d.evtchn.hostEndpoints().size;
      assert.ok(ports >= h.back.queues && ports <= 2 * h.back.queues, `round ${round}: ${ports} ports for ${h.back.queues} queues`);
      h.back.receive(seg(1, 100, { flags: 0x18 }));
      h.back.poll();
    } else {
      failed++;
      assert.equal(h.d.evtchn.hostEndpoints().size, 0, `round ${round}: nothing left bound`);
    }
  }
  process.stderr.write(`# multi-queue fuzz: ${connected} connected, ${failed} refused\n`);
  assert.ok(connected > 0 && failed > 0);
});

test("steer: a flow's frames map to one queue; non-IP and short frames to 0; every result in range", () => {
  for (let n = 1; n <= 8; n++) {
    for (let p = 0; p < 50; p++) {
      const a = seg(1, 10, { sport: p }), b = seg(9999, 500, { sport: p, flags: 0x11 });
      const q = flowQueue(a, a.length, n);
      assert.ok(q >= 0 && q < n);
      assert.equal(flowQueue(b, b.length, n), q, "same flow, same queue");
      const v6 = seg(1, 10, { sport: p, v6: true });
      assert.ok(flowQueue(v6, v6.length, n) < n);
    }
    assert.equal(flowQueue(plainFrame(60), 60, n), 0);
    assert.equal(flowQueue(new Uint8Array(10), 10, n), 0);
    const cut = seg(1, 10, { sport: 7 });
    assert.ok(flowQueue(cut, 30, n) < n, "a truncated length reads nothing past it");
  }
  assert.equal(PAGE, 4096);
});

test("backpressure: past half the rx queue's bound the host is told to stop, below an eighth to go on; nothing dropped", () => {
  const calls: boolean[] = [];
  const h = setup({ onRxBacklog: (full) => calls.push(full) });
  assert.deepEqual(calls, [false], "a fresh vif says it takes frames");
  calls.length = 0;
  // No rx buffers posted: 1400-byte frames wait in the queue (512 KiB bound).
  let n = 0;
  while (calls.length === 0) { assert.ok(h.back.receive(plainFrame(1400, n))); n++; assert.ok(n < 400, "no stop signal"); }
  assert.deepEqual(calls, [true]);
  assert.ok(n * 1400 > 256 * 1024 && (n - 1) * 1400 <= 256 * 1024, `stopped after ${n} frames`);
  assert.equal(h.back.stats.rxDropped, 0);
  // The guest refills: the queue drains; the host hears "go on" once below 64 KiB, only once.
  for (let round = 0; round < 40 && h.back.stats.rxFrames < n; round++) { h.f.postRx(64); h.f.rxResponses(); }
  assert.equal(h.back.stats.rxFrames, n, "every queued frame delivered");
  assert.deepEqual(calls, [true, false]);
  // Stopped again, then the front-end disconnects: the queue is dropped and the host told to go on.
  for (let k = 0; calls.length < 3; k++) { h.back.receive(plainFrame(1400, k)); assert.ok(k < 400); }
  h.setFrontState(5);
  h.setFrontState(6);
  assert.deepEqual(calls, [true, false, true, false]);
});
