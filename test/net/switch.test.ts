/** The learning switch, pure: ports are arrays, time is a variable. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_FRAME, parseMac } from "../../src/net/ethernet.js";
import { HANDOVER_ACK, HANDOVER_HOLD, HANDOVER_RELEASE, handoverFrame, handoverOp } from "../../src/net/handover.js";
import { HOLD_BYTES, LearningSwitch, type SwitchPort } from "../../src/net/switch.js";
import { BROADCAST, eth } from "./frames.js";

class ArrayPort implements SwitchPort {
  readonly got: Buffer[] = [];
  constructor(readonly name: string) {}
  send(frame: Uint8Array): boolean {
    this.got.push(Buffer.from(frame));
    return true;
  }
  take(): Buffer[] {
    return this.got.splice(0);
  }
}

const A = "02:00:00:00:00:0a", B = "02:00:00:00:00:0b", C = "02:00:00:00:00:0c";
const frame = (dst: string, src: string, n = 46): Buffer => eth(dst, src, 0x88b5, Buffer.alloc(n, 7));

function setup(opts: ConstructorParameters<typeof LearningSwitch>[0] = {}) {
  let t = 0;
  const sw = new LearningSwitch({ now: () => t, ...opts });
  const pa = new ArrayPort("a"), pb = new ArrayPort("b"), pc = new ArrayPort("c");
  for (const p of [pa, pb, pc]) sw.addPort(p);
  return { sw, pa, pb, pc, advance: (ms: number) => (t += ms) };
}

describe("LearningSwitch", () => {
  it("floods unknown unicast, then learns and forwards to one port only", () => {
    const { sw, pa, pb, pc } = setup();
    assert.equal(sw.receive(pa, frame(B, A)), "flooded");
    assert.equal(pb.take().length, 1);
    assert.equal(pc.take().length, 1);
    assert.equal(pa.take().length, 0, "never back to the ingress port");
    // B answers A: A was learned on port a.
    assert.equal(sw.receive(pb, frame(A, B)), "forwarded");
    assert.equal(pa.take().length, 1);
    assert.equal(pc.take().length, 0);
    // Now both are known: A→B goes to b only.
    assert.equal(sw.receive(pa, frame(B, A)), "forwarded");
    assert.deepEqual([pa.take().length, pb.take().length, pc.take().length], [0, 1, 0]);
    assert.equal(sw.lookup(0x02_00_00_00_00_0a), pa);
    assert.equal(sw.stats().macs, 2);
  });

  it("floods broadcast and multicast to every other port", () => {
    const { sw, pa, pb, pc } = setup();
    sw.receive(pb, frame(A, B)); // learn B; A unknown
    pa.take(); pc.take();
    for (const dst of [BROADCAST, "01:00:5e:00:00:fb", "33:33:00:00:00:01"]) {
      assert.equal(sw.receive(pa, frame(dst, A)), "flooded");
      assert.deepEqual([pa.take().length, pb.take().length, pc.take().length], [0, 1, 1], dst);
    }
  });

  it("filters a frame whose destination is on its ingress port (no hairpin)", () => {
    const { sw, pa, pb, pc } = setup();
    sw.receive(pa, frame(BROADCAST, B)); // B learned on port a (a guest bridging two stations)
    pb.take(); pc.take();
    assert.equal(sw.receive(pa, frame(B, A)), "filtered");
    assert.deepEqual([pa.take().length, pb.take().length, pc.take().length], [0, 0, 0]);
    assert.equal(sw.stats().filtered, 1);
  });

  it("ages entries out after 300 s without traffic (injected clock)", () => {
    const { sw, pa, pb, pc, advance } = setup();
    sw.receive(pb, frame(BROADCAST, B));
    pa.take(); pc.take();
    advance(299_000);
    assert.equal(sw.receive(pa, frame(B, A)), "forwarded");
    pb.take();
    advance(2_000); // B last seen 301 s ago
    assert.equal(sw.lookup(0x02_00_00_00_00_0b), undefined);
    assert.equal(sw.receive(pa, frame(B, A)), "flooded");
    assert.deepEqual([pb.take().length, pc.take().length], [1, 1]);
    // Refreshing keeps an entry alive; sweep() drops the stale ones.
    sw.receive(pb, frame(A, B));
    advance(200_000);
    sw.receive(pb, frame(A, B));
    advance(200_000);
    assert.equal(sw.sweep(), 1, "A (last seen 400 s ago) is swept, B (200 s) stays");
    assert.deepEqual(sw.macTable().map((e) => e.mac), [B]);
    assert.equal(sw.portStats(pa)!.macs, 0);
    assert.equal(sw.portStats(pb)!.macs, 1);
  });

  it("follows a MAC that moves to another port", () => {
    const { sw, pa, pb, pc } = setup();
    sw.receive(pa, frame(BROADCAST, C));
    sw.receive(pb, frame(BROADCAST, C));
    pa.take(); pb.take(); pc.take();
    assert.equal(sw.receive(pc, frame(C, A)), "forwarded");
    assert.deepEqual([pa.take().length, pb.take().length], [0, 1]);
    assert.equal(sw.stats().moves, 1);
    assert.equal(sw.portStats(pa)!.macs, 0);
  });

  it("bounds the MAC table: a port spraying source MACs fills only its own quota", () => {
    const { sw, pa, pb, pc } = setup({ maxMacs: 100, maxMacsPerPort: 10 });
    sw.receive(pb, frame(BROADCAST, B));
    for (let i = 0; i < 10_000; i++) {
      const mac = `02:aa:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, "0")}:${(i & 0xff).toString(16).padStart(2, "0")}`;
      sw.receive(pa, frame(BROADCAST, mac));
    }
    assert.equal(sw.portStats(pa)!.macs, 10);
    assert.equal(sw.stats().macs, 11);
    assert.ok(sw.stats().learnRefused >= 9_990);
    pb.take(); pc.take();
    // Port b's station is still learned, and c can still be learned.
    assert.equal(sw.receive(pc, frame(B, C)), "forwarded");
    assert.equal(pb.take().length, 1);
    assert.equal(sw.lookup(0x02_00_00_00_00_0c), pc);
  });

  it("bounds the whole table across ports", () => {
    let t = 0;
    const sw = new LearningSwitch({ now: () => t, maxMacs: 20, maxMacsPerPort: 20, maxPorts: 8 });
    const ports = Array.from({ length: 4 }, (_, i) => new ArrayPort(`p${i}`));
    for (const p of ports) sw.addPort(p);
    for (let i = 0; i < 100; i++) sw.receive(ports[i % 4]!, frame(BROADCAST, `02:bb:00:00:00:${i.toString(16).padStart(2, "0")}`));
    assert.equal(sw.stats().macs, 20);
    // Once entries age out, a full table sweeps itself and learns again.
    t += 300_001;
    sw.receive(ports[0]!, frame(BROADCAST, A));
    assert.equal(sw.lookup(0x02_00_00_00_00_0a), ports[0]);
    assert.equal(sw.stats().macs, 1);
  });

  it("drops bad frames at ingress and counts them", () => {
    const { sw, pa, pb, pc } = setup();
    const bad: Array<[string, Buffer]> = [
      ["empty", Buffer.alloc(0)],
      ["13 bytes", Buffer.alloc(13, 1)],
      ["too long", frame(B, A, MAX_FRAME - 14 + 1)],
      ["multicast source", frame(B, "03:00:00:00:00:01")],
      ["broadcast source", frame(B, BROADCAST)],
      ["zero source", frame(B, "00:00:00:00:00:00")],
      ["STP (01:80:c2:00:00:00)", frame("01:80:c2:00:00:00", A)],
      ["LACP (01:80:c2:00:00:02)", frame("01:80:c2:00:00:02", A)],
    ];
    for (const [what, f] of bad) assert.equal(sw.receive(pa, f), "invalid", what);
    assert.deepEqual([pb.take().length, pc.take().length], [0, 0]);
    const st = sw.portStats(pa)!;
    assert.equal(st.rxFrames, bad.length);
    assert.equal(st.rxDropped, bad.length);
    assert.equal(sw.stats().macs, 0, "nothing learned from a bad frame");
    // The limits themselves pass: a bare header, and the largest frame.
    assert.equal(sw.receive(pa, frame(B, A, 0)), "flooded");
    assert.equal(sw.receive(pa, frame(B, A, MAX_FRAME - 14)), "flooded");
    // A frame from a port that is not attached is ignored.
    assert.equal(sw.receive(new ArrayPort("stranger"), frame(B, A)), "invalid");
  });

  it("keeps static entries: they never age, and another port cannot claim them", () => {
    const { sw, pa, pb, pc, advance } = setup();
    const GW = 0x9a_55_9a_55_9a_55;
    sw.addStatic(GW, pc);
    advance(10 * 300_000);
    assert.equal(sw.sweep(), 0);
    assert.equal(sw.receive(pa, frame("9a:55:9a:55:9a:55", A)), "forwarded");
    assert.deepEqual([pb.take().length, pc.take().length], [0, 1]);
    // A guest spoofing the gateway's MAC as its source is dropped, and the entry stays put.
    assert.equal(sw.receive(pb, frame(BROADCAST, "9a:55:9a:55:9a:55")), "invalid");
    assert.equal(sw.stats().spoofed, 1);
    assert.equal(sw.lookup(GW), pc);
    assert.equal(pa.take().length, 0);
    // Its own port sending from it is fine.
    assert.equal(sw.receive(pc, frame(A, "9a:55:9a:55:9a:55")), "forwarded");
    assert.deepEqual(sw.macTable().find((e) => e.static), { mac: "9a:55:9a:55:9a:55", port: "c", ageMs: 0, static: true });
    assert.equal(sw.portStats(pc)!.macs, 0, "static entries are outside the per-port quota");
  });

  it("limits the number of ports", () => {
    const sw = new LearningSwitch({ maxPorts: 2 });
    sw.addPort(new ArrayPort("1"));
    sw.addPort(new ArrayPort("2"));
    assert.throws(() => sw.addPort(new ArrayPort("3")), { code: "NET_PORT_LIMIT" });
  });

  it("counts per port, and a failing port neither stops a flood nor throws", () => {
    const sw = new LearningSwitch({ now: () => 0 });
    const ok = new ArrayPort("ok");
    const full: SwitchPort = { name: "full", send: () => false };
    const broken: SwitchPort = { name: "broken", send: () => { throw new Error("boom"); } };
    const src = new ArrayPort("src");
    for (const p of [src, full, broken, ok]) sw.addPort(p);
    assert.equal(sw.receive(src, frame(BROADCAST, A, 50)), "flooded");
    assert.equal(ok.take().length, 1);
    assert.deepEqual(sw.portStats(src), { rxFrames: 1, rxBytes: 64, rxDropped: 0, txFrames: 0, txBytes: 0, txDropped: 0, macs: 1 });
    assert.deepEqual(sw.portStats(ok), { rxFrames: 0, rxBytes: 0, rxDropped: 0, txFrames: 1, txBytes: 64, txDropped: 0, macs: 0 });
    assert.equal(sw.portStats(full)!.txDropped, 1);
    assert.equal(sw.portStats(broken)!.txDropped, 1);
  });

  it("forgets a removed port's MACs", () => {
    const { sw, pa, pb, pc } = setup();
    sw.receive(pa, frame(BROADCAST, A));
    assert.equal(sw.removePort(pa)!.rxFrames, 1);
    assert.equal(sw.lookup(0x02_00_00_00_00_0a), undefined);
    pb.take(); pc.take();
    assert.equal(sw.receive(pb, frame(A, B)), "flooded");
    assert.deepEqual([pa.take().length, pc.take().length], [0, 1]);
    assert.equal(sw.portCount, 2);
  });
});

describe("LearningSwitch handover (src/net/handover.ts)", () => {
  const macA = parseMac(A);
  const ops = (p: ArrayPort): number[] => p.take().map((f) => handoverOp(f));

  it("HOLD from the station's port: answered there, its frames queued, then sent where it reappears, in order", () => {
    const { sw, pa, pb, pc } = setup();
    sw.receive(pa, frame(B, A)); sw.receive(pc, frame(A, C));
    for (const p of [pa, pb, pc]) p.take();
    assert.equal(sw.receive(pa, Buffer.from(handoverFrame(macA, HANDOVER_HOLD))), "control");
    assert.deepEqual(ops(pa), [HANDOVER_ACK], "the ACK goes back to the holding port only");
    assert.deepEqual([pb.take().length, pc.take().length], [0, 0], "control frames are never forwarded");
    const sent = [1, 2, 3].map((n) => frame(A, C, 46 + n));
    for (const f of sent) assert.equal(sw.receive(pc, f), "held");
    // The station's own frames from its old port (the source still runs until its pause) do not end the hold.
    assert.equal(sw.receive(pa, frame(C, A)), "forwarded");
    pc.take();
    assert.equal(pa.take().length, 0);
    // The destination announces the MAC on port b: the queue follows it, oldest first, then traffic as usual.
    sw.receive(pb, frame(BROADCAST, A));
    pc.take(); pa.take(); // the announce's flood
    assert.deepEqual(pb.take().map((f) => f.length), sent.map((f) => f.length));
    assert.equal(sw.receive(pc, frame(A, C)), "forwarded");
    assert.equal(pb.take().length, 1);
    assert.equal(pa.take().length, 0);
    const st = sw.stats();
    assert.deepEqual([st.holds, st.held, st.heldDropped], [1, 3, 0]);
  });

  it("RELEASE from the holding port gives the queue back; from another port it is ignored", () => {
    const { sw, pa, pb, pc } = setup();
    sw.receive(pa, frame(B, A));
    sw.receive(pa, Buffer.from(handoverFrame(macA, HANDOVER_HOLD)));
    for (const p of [pa, pb, pc]) p.take();
    sw.receive(pc, frame(A, C));
    sw.receive(pb, Buffer.from(handoverFrame(macA, HANDOVER_RELEASE)));
    assert.equal(pa.take().length + pb.take().length, 0, "a RELEASE from b does not end a's hold");
    sw.receive(pa, Buffer.from(handoverFrame(macA, HANDOVER_RELEASE)));
    assert.equal(pa.take().length, 1, "the held frame goes back to a");
    assert.equal(sw.receive(pc, frame(A, C)), "forwarded");
  });

  it("a HOLD for a station not learned on the sending port is refused: nothing held, no ACK", () => {
    const { sw, pa, pb, pc } = setup();
    sw.receive(pa, frame(B, A)); // A on a
    for (const p of [pa, pb, pc]) p.take();
    assert.equal(sw.receive(pb, Buffer.from(handoverFrame(macA, HANDOVER_HOLD))), "control");
    assert.equal(pb.take().length, 0);
    assert.equal(sw.portStats(pb)!.rxDropped, 1);
    assert.equal(sw.receive(pc, frame(A, C)), "forwarded");
    assert.equal(pa.take().length, 1);
    assert.equal(sw.stats().holds, 0);
    // The station's own MAC learned nowhere: the HOLD is refused too.
    assert.equal(sw.receive(pc, Buffer.from(handoverFrame(parseMac("02:00:00:00:00:99"), HANDOVER_HOLD))), "control");
    assert.equal(pc.take().length, 0);
  });

  it("the holding port going away keeps the hold; the destination's announce still gets the frames", () => {
    const { sw, pa, pb, pc } = setup();
    sw.receive(pa, frame(B, A));
    sw.receive(pa, Buffer.from(handoverFrame(macA, HANDOVER_HOLD)));
    sw.removePort(pa);
    assert.equal(sw.receive(pc, frame(A, C)), "held");
    sw.receive(pb, frame(BROADCAST, A));
    pc.take();
    assert.equal(pb.take().length, 2, "the held frame, after the broadcast went to c");
  });

  it("a hold ends by itself: after holdMs its queue goes to the port the station is learned on", () => {
    const { sw, pa, pb, pc, advance } = setup({ holdMs: 1000 });
    sw.receive(pa, frame(B, A));
    sw.receive(pa, Buffer.from(handoverFrame(macA, HANDOVER_HOLD)));
    for (const p of [pa, pb, pc]) p.take();
    assert.equal(sw.receive(pc, frame(A, C)), "held");
    advance(1001);
    assert.equal(sw.receive(pc, frame(A, C)), "forwarded");
    assert.equal(pa.take().length, 2, "the held frame, then the new one");
    // Expiry by sweep() when no frame comes: the queue goes out, the hold is gone.
    sw.receive(pa, Buffer.from(handoverFrame(macA, HANDOVER_HOLD)));
    pa.take();
    sw.receive(pc, frame(A, C));
    advance(1001);
    sw.sweep();
    assert.equal(pa.take().length, 1);
    assert.equal(sw.receive(pc, frame(A, C)), "forwarded");
  });

  it("bounds what a hold keeps (HOLD_BYTES per station), counting the rest as heldDropped", () => {
    const { sw, pa, pb, pc } = setup();
    sw.receive(pa, frame(B, A));
    sw.receive(pa, Buffer.from(handoverFrame(macA, HANDOVER_HOLD)));
    for (const p of [pa, pb, pc]) p.take();
    const big = frame(A, C, 60_000);
    const fit = Math.floor(HOLD_BYTES / big.length);
    for (let i = 0; i < fit + 5; i++) assert.equal(sw.receive(pc, big), "held");
    const st = sw.stats();
    assert.deepEqual([st.held, st.heldDropped], [fit, 5]);
    sw.receive(pb, frame(BROADCAST, A));
    assert.equal(pb.take().length, fit);
  });

  it("seeded fuzz: random control and data frames from random ports never forward a control frame and keep every bound", () => {
    let seed = 0x5eed;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    const { sw, pa, pb, pc, advance } = setup({ holdMs: 5000 });
    const ports = [pa, pb, pc], macs = [A, B, C];
    let controls = 0, data = 0;
    for (let i = 0; i < 20_000; i++) {
      const p = ports[rnd(3)]!, src = macs[rnd(3)]!, dst = macs[rnd(3)]!;
      if (rnd(4) === 0) { sw.receive(p, Buffer.from(handoverFrame(parseMac(src), 1 + rnd(4)))); controls++; }
      else { sw.receive(p, frame(dst, src, rnd(3000))); data++; }
      if (rnd(100) === 0) advance(rnd(3000));
      if (rnd(1000) === 0) sw.sweep();
      for (const q of ports) for (const f of q.take()) assert.ok(handoverOp(f) === 0 || handoverOp(f) === HANDOVER_ACK, "only ACKs, never a forwarded HOLD/RELEASE");
    }
    advance(10_000);
    sw.sweep();
    const st = sw.stats();
    assert.ok(st.holds > 0 && st.held > 0, JSON.stringify(st));
    process.stderr.write(`# handover fuzz: ${controls} control, ${data} data frames; ${JSON.stringify(st)}\n`);
  });
});
