/**
 * Where busy domains should run: the credit scheduler (credit.ts) shares pCPUs fairly between *threads'*
 * worth of work, but a worker thread runs one of its domains at a time. Two busy domains in one thread share
 * one pCPU between them while a busy domain alone in another thread has a whole one (three busy domains on two
 * pCPUs: 50/50/100 instead of Xen's ~67 each). The balancer moves a busy domain out of a thread it shares with
 * another busy one (DomainRunner.moveTo: saved between slices, restored over the same memory), to a thread
 * with no busy domain, or to a new thread while fewer threads hold busy domains than max(pCPUs, busy domains). Idle
 * domains stay packed (they cost no CPU and share an isolate's memory) — and are packed again once idle for
 * XENO_PACK_IDLE_S (hypervisor.ts; default 20 s, 0: never) (planPack): a boot spreads busy domains over threads,
 * and each thread is a V8 isolate with its own heap, kept while its domains sit idle (docs/memory.md, "Threads").
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
  /** It has been idle (share < IDLE_SHARE) long enough to be packed (the hypervisor counts; planPack). */
  idle?: boolean;
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

/** Below this share of a pCPU a domain counts as idle for packing (an idle Debian DomU uses ~1 %). */
export const IDLE_SHARE = 0.05;

/**
 * The one packing move to make now, or null: when two or more threads hold only idle, movable domains, the
 * newest domain of the one with the fewest goes to the fullest other such thread with room (so threads empty
 * one by one, and the hypervisor ends them). Threads with any busy, paused or unmovable domain are left alone.
 */
export function planPack(domains: readonly BalanceDomain[], threads: readonly BalanceThread[], perThread: number): { domain: number; to: number } | null {
  const inThread = new Map<number, BalanceDomain[]>();
  for (const d of domains) inThread.set(d.thread, [...(inThread.get(d.thread) ?? []), d]);
  const quiet = threads.filter((t) => {
    const list = inThread.get(t.id) ?? [];
    return t.load > 0 && list.length === t.load && list.every((d) => d.idle === true && d.movable);
  });
  if (quiet.length < 2) return null;
  quiet.sort((a, b) => a.load - b.load || b.id - a.id);
  const from = quiet[0]!;
  let to: BalanceThread | null = null;
  for (const t of quiet) if (t !== from && t.load < perThread && (to === null || t.load > to.load)) to = t;
  if (to === null) return null;
  const mover = [...inThread.get(from.id)!].sort((a, b) => b.id - a.id)[0]!;
  return { domain: mover.id, to: to.id };
}
