/** Shared by the Xen boot tests: drive a Machine until a predicate holds, failing with the console's tail. */
import assert from "node:assert/strict";
import type { Machine } from "../../src/machine/machine.js";

/**
 * Returns runUntil(pred, what): runs `m` in ~50 ms bursts (yielding to the event loop, sleeping while the guest
 * idles) until pred() is true; fails when the machine stops or `deadline` (ms since epoch) passes.
 */
export function machineRunner(m: Machine, out: () => string, deadline: number) {
  return async (pred: () => boolean, what: string): Promise<void> => {
    while (!pred()) {
      if (m.state !== "running") assert.fail(`${what}: machine stopped (${m.state} ${m.reason})\n${out().slice(-3000)}`);
      if (Date.now() > deadline) assert.fail(`${what}: not seen in time\n${out().slice(-3000)}`);
      const end = Date.now() + 50;
      let w = 0;
      while (Date.now() < end) { w = m.runSlice(); if (w !== 0) break; }
      await new Promise((r) => setTimeout(r, w > 0 ? Math.min(w, 20) : 0));
    }
  };
}
