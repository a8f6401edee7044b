/** Shared by the Xen boot tests: drive a Machine until a predicate holds, failing with the console's tail. */
import assert from "node:assert/strict";
/** What the runner drives: a domain Machine (src/hv/machine.ts) or a bare Board (src/machine/board.ts). */
interface Runnable { readonly state: string; readonly reason: string; runSlice(): number }

/**
 * Returns runUntil(pred, what): runs `m` in ~50 ms bursts (yielding to the event loop, sleeping while the guest
 * idles) until pred() is true; fails when the machine stops or `deadline` (ms since epoch) passes.
 */
export function machineRunner(m: Runnable, out: () => string, deadline: number) {
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

/**
 * A shell command line to type on a guest console, framed by markers that the shell computes (`$((k+0))`), so the
 * markers never appear in the echo of the line. Its output is then found whatever the echo looks like: wrapped at
 * the terminal width, or echoed twice when the line arrives before the shell's prompt (once by the tty in cooked
 * mode, once more by busybox's line editor).
 */
export function framedCommand(cmd: string, k: number): string {
  return `echo XO-$((${k}+0))-BEGIN; ${cmd}; echo XO-$((${k}+0))-END\n`;
}

/** The output of framedCommand(…, k) in console text (\r removed), or undefined while its end marker is missing. */
export function framedOutput(text: string, k: number): string | undefined {
  const lines = text.replace(/\r/g, "").split("\n");
  const end = lines.indexOf(`XO-${k}-END`);
  if (end < 0) return undefined;
  const begin = lines.lastIndexOf(`XO-${k}-BEGIN`, end);
  return lines.slice(begin + 1, end).join("\n");
}
