/**
 * Where busy domains should run: the credit scheduler (credit.ts) shares pCPUs fairly between *threads'*
 * worth of work, but a worker thread runs one of its domains at a time. Two busy domains in one thread share
 * one pCPU between them while a busy domain alone in another thread has a whole one (three busy domains on two
 * pCPUs: 50/50/100 instead of Xen's ~67 each). The balancer moves a busy domain out of a thread it shares with
 * another busy one (DomainRunner.moveTo: saved between slices, restored over the same memory), to a thread
 * with no busy domain, or to a new thread while fewer threads hold busy domains than max(pCPUs, busy domains). Idle
 * domains stay packed (they cost no CPU and share an isolate's memory).
 *
 * This module decides (pure, unit-tested); hypervisor.ts measures and moves.
 */

/** A domain as the balancer sees it over the last period. */
export interface BalanceDomain {
  id: number;
  /** Its thread's id. */
  thread: number;
  /** Fraction of a pCPU it used over the last period (0..1). */
  share: number;
  /** It may move now (running, not paused or dying, not moved recently). */
  movable: boolean;
}

export interface BalanceThread {
  id: number;
  /** Domains in it. */
  load: number;
}

/** A domain is busy when it used at least this share of a pCPU (two sharing a thread each get about half). */
export const BUSY_SHARE = 0.3;

/** The one move to make now, or null. `to` "new": start a thread for it. */
export function planMove(domains: readonly BalanceDomain[], threads: readonly BalanceThread[], pcpus: number,
  perThread: number): { domain: number; to: number | "new" } | null {
  const busy = domains.filter((d) => d.share >= BUSY_SHARE);
  const busyIn = new Map<number, BalanceDomain[]>();
  for (const d of busy) busyIn.set(d.thread, [...(busyIn.get(d.thread) ?? []), d]);
  let crowded: BalanceDomain[] | null = null;
  for (const list of busyIn.values()) if (list.length >= 2 && (crowded === null || list.length > crowded.length)) crowded = list;
  if (crowded === null) return null;
  // The mover: a movable busy domain of the crowded thread (the newest: older ones keep their place).
  const mover = crowded.filter((d) => d.movable).sort((a, b) => b.id - a.id)[0];
  if (mover === undefined) return null;
  let best: BalanceThread | null = null;
  for (const t of threads) {
    if (t.id === mover.thread || (busyIn.get(t.id)?.length ?? 0) > 0 || t.load >= perThread) continue;
    if (best === null || t.load < best.load) best = t;
  }
  if (best !== null) return { domain: mover.id, to: best.id };
  // No such thread: a new one, while fewer threads run busy domains than there are busy domains (or pCPUs).
  if (busyIn.size < Math.max(pcpus, busy.length)) return { domain: mover.id, to: "new" };
  return null;
}
