/** The balancer's decisions (src/hv/balance.ts planMove) on crafted situations. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { planMove, planPack, type BalanceDomain } from "../../src/hv/balance.js";

const d = (id: number, thread: number, share: number, movable = true): BalanceDomain => ({ id, thread, share, movable });

test("three busy domains on two threads (two pCPUs): the newer of the pair gets a thread of its own", () => {
  const threads = [{ id: 1, load: 2 }, { id: 2, load: 1 }];
  assert.deepEqual(planMove([d(1, 1, 0.5), d(2, 2, 1), d(3, 1, 0.5)], threads, 2, 8), { domain: 3, to: "new" });
});

test("a thread with no busy domain is used before a new one; idle domains never move", () => {
  const threads = [{ id: 1, load: 3 }, { id: 2, load: 2 }, { id: 3, load: 1 }];
  const doms = [d(1, 1, 0.5), d(2, 1, 0.5), d(3, 1, 0.01), d(4, 2, 0.9), d(5, 2, 0), d(6, 3, 0.02)];
  assert.deepEqual(planMove(doms, threads, 2, 8), { domain: 2, to: 3 });
  assert.equal(planMove([d(1, 1, 0.05), d(2, 1, 0.1)], [{ id: 1, load: 2 }], 2, 8), null, "idle: packed stays packed");
});

test("nothing to do: one busy domain per thread; or nowhere to go; or the crowded ones may not move", () => {
  assert.equal(planMove([d(1, 1, 1), d(2, 2, 1)], [{ id: 1, load: 1 }, { id: 2, load: 1 }], 2, 8), null);
  // Two busy domains, two pCPUs, two threads, both with a busy domain... and a third busy one: threads = busy.
  const three = [d(1, 1, 0.5), d(2, 1, 0.5), d(3, 2, 1), d(4, 3, 1)];
  assert.equal(planMove(three, [{ id: 1, load: 2 }, { id: 2, load: 1 }, { id: 3, load: 1 }], 2, 8)?.to, "new", "4 busy, 3 threads");
  assert.equal(planMove(three, [{ id: 1, load: 2 }, { id: 2, load: 1 }, { id: 3, load: 1 }, { id: 4, load: 0 }], 2, 8)?.to, 4);
  assert.equal(planMove([d(1, 1, 0.5, false), d(2, 1, 0.5, false), d(3, 2, 1)], [{ id: 1, load: 2 }, { id: 2, load: 1 }], 2, 8), null);
  // A full thread is no target.
  assert.deepEqual(planMove([d(1, 1, 0.5), d(2, 1, 0.5), d(3, 2, 1), d(4, 3, 0)], [{ id: 1, load: 2 }, { id: 2, load: 1 }, { id: 3, load: 1 }], 2, 1),
    { domain: 2, to: "new" });
});

test("packing idle domains: the newest domain of the emptiest all-idle thread goes to the fullest other one with room", () => {
  const i = (id: number, thread: number, idle = true, movable = true): BalanceDomain => ({ id, thread, share: idle ? 0.01 : 0.5, movable, idle });
  const t3 = [{ id: 1, load: 2 }, { id: 2, load: 1 }, { id: 3, load: 1 }];
  assert.deepEqual(planPack([i(1, 1), i(2, 1), i(3, 2), i(4, 3)], t3, 8), { domain: 4, to: 1 });
  // Not idle long enough, busy, or unmovable (paused, moved recently): its thread is left alone.
  assert.equal(planPack([i(1, 1), i(2, 2, false)], [{ id: 1, load: 1 }, { id: 2, load: 1 }], 8), null);
  assert.equal(planPack([i(1, 1), { id: 2, thread: 2, share: 0, movable: true }], [{ id: 1, load: 1 }, { id: 2, load: 1 }], 8), null);
  assert.equal(planPack([i(1, 1), i(2, 2, true, false)], [{ id: 1, load: 1 }, { id: 2, load: 1 }], 8), null);
  // A thread whose load counts a domain the balancer does not see (being built, dying) is not quiet.
  assert.equal(planPack([i(1, 1), i(2, 2)], [{ id: 1, load: 1 }, { id: 2, load: 2 }], 8), null);
  // One quiet thread: nothing to pack into; full targets are skipped.
  assert.equal(planPack([i(1, 1), i(2, 1)], [{ id: 1, load: 2 }], 8), null);
  assert.equal(planPack([i(1, 1), i(2, 1), i(3, 2)], [{ id: 1, load: 2 }, { id: 2, load: 1 }], 2), null);
  // planMove still leaves idle domains where they are (packing is planPack's).
  assert.equal(planMove([i(1, 1), i(2, 2)], [{ id: 1, load: 1 }, { id: 2, load: 1 }], 2, 8), null);
});
