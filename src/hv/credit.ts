/**
 * The credit scheduler (after Xen's xen/common/sched/credit.c), deciding which domains may run on the
 * hypervisor's pCPUs.
 *
 * Unit of scheduling: a vCPU, as in Xen (the hypervisor's entities, hypervisor.ts schedAdd, sched-words.ts).
 * The pCPUs are slots (default one per host core) that the scheduler hands out: an entity runs only while it holds
 * a slot's permit, and at most one entity holds each slot. A domain's home thread (vCPU 0, its devices and Xen
 * layer, and all of its vCPUs time-sliced when they share that thread) is one entity; with vCPU threads
 * (src/hv/vcpu-thread.ts) each vCPU 1..n-1 is another, with its own permit, want word and CPU time, so a 2-vCPU
 * domain holds two slots while both vCPUs are busy. With no more runnable entities than slots and no caps or
 * pinning, everyone runs (and the scheduler costs nothing beyond its tick).
 *
 * Xen's credit semantics, per entity (a vCPU thread has its domain's parameters):
 *  - weight 1..65535 (default 256): every accounting period (30 ms × pCPUs of credit) is shared among the
 *    domains that want CPU in proportion to their weights; time used is debited;
 *  - priority: BOOST (just woke from blocked with credit left — runs first, so I/O-bound domains stay
 *    responsive), UNDER (credit ≥ 0), OVER (credit < 0); within a priority, most credit first;
 *  - cap (% of one pCPU, 0 = none): once a domain has used cap% of the current period it is parked until the
 *    next one, even with idle pCPUs;
 *  - hard affinity (cpus=, vcpu-pin): the set of slots it may take;
 *  - time slice (tslice, default 30 ms): a slot's holder keeps it for a slice unless it blocks, or a BOOST
 *    domain arrives and the holder is not BOOST; credits are capped so an idle domain cannot hoard them.
 * Blocked and paused domains want nothing and use nothing. A holder that blocks keeps its slot until an entity
 * that wants one needs it (then it goes at once, whatever the slice): waking, it runs again without asking this
 * thread — as a Xen vCPU waking to an idle pCPU runs there at once. Without this, a wake-up of an I/O-bound domain
 * could wait for a round trip through the hypervisor's main thread (the worker asks, a tick grants, the doorbell
 * rings): during test/hv/io-fair.test.ts that thread took 132 context switches a second, 46 with this
 * (docs/benchmarks.md, 2026-12-07 fair sharing). Holders learn whether someone waits (setWaitedFor), so that one
 * blocking then hands its slot over at once. Capped entities give their slot up when they block, as before: their
 * cap is enforced at ticks, which must see them.
 *
 * Thread groups: the hypervisor runs several domains in one worker thread (to share its V8 isolate), and a
 * thread runs one domain at a time. So at most one domain of a group (SchedEntity.group) holds a slot: a
 * waiting domain whose group-mate holds one can only take that slot, by the usual preemption rules.
 */

export const DEFAULT_WEIGHT = 256;
export const DEFAULT_TSLICE_MS = 30;
/** Accounting period (Xen: 30 ms, CSCHED_TICKS_PER_ACCT × tick). */
export const ACCT_MS = 30;
/** Credit a domain may bank: one period's worth of a whole pCPU (credit.c caps at one time slice's credit). */
const CREDIT_CAP_MS = ACCT_MS;

export const PRI_BOOST = 2, PRI_UNDER = 1, PRI_OVER = 0;

export interface SchedParams {
  weight: number;
  /** % of one pCPU; 0 = no cap. */
  cap: number;
  /** Allowed slots (pCPU numbers); null = all. */
  affinity: number[] | null;
}

/** What the scheduler needs of a domain each tick (the hypervisor keeps these current). */
export interface SchedEntity {
  readonly id: number;
  params: SchedParams;
  /** It has a runnable vCPU (not blocked, not paused, not stopped). */
  wants(): boolean;
  /** Seconds of CPU used so far (monotonic). */
  cpuSeconds(): number;
  /** The scheduler's verdict: may run now (on the given slot) or must wait. */
  setPermit(run: boolean): void;
  /**
   * While it holds a slot: whether another entity waits for one (so that, blocking, it should have the scheduler
   * look at once — the hypervisor's sched-wake — instead of keeping the slot until the next tick).
   */
  setWaitedFor?(waited: boolean): void;
  /** The worker thread it runs in, when threads hold several domains (at most one of a group holds a slot). */
  readonly group?: number;
}

interface State {
  e: SchedEntity;
  credit: number;        // ms
  lastCpu: number;       // s, at the last accounting
  capBudget: number;     // ms it may still run under its cap (refills at cap% of elapsed time)
  active: boolean;       // wanted or ran since the last accounting (gets a share of credit)
  wanted: boolean;
  boost: boolean;
  slot: number;          // -1 = none
  lastSlot: number;      // the slot it held last (-1 = never ran): vcpu-list's CPU while it waits
  sliceEnd: number;      // ms (scheduler clock) when its slice ends
  waitedFor: boolean;    // told (setWaitedFor) that someone waits for a slot
}

export class CreditScheduler {
  tsliceMs = DEFAULT_TSLICE_MS;
  /** A holder that blocks keeps its slot until a waiter needs it (false: it gives it up at the next tick, as
   * before; the hypervisor's XENO_SCHED_KEEP_SLOT=0, for A/B). */
  keepBlockedSlots = true;
  private readonly st = new Map<number, State>();
  private readonly slots: (State | null)[];
  private lastAcct: number;
  private lastTick: number;

  constructor(readonly pcpus: number, private readonly now: () => number = () => performance.now()) {
    if (!Number.isInteger(pcpus) || pcpus < 1) throw new RangeError(`pcpus ${pcpus}`);
    this.slots = new Array<State | null>(pcpus).fill(null);
    this.lastAcct = now();
    this.lastTick = this.lastAcct;
  }

  add(e: SchedEntity): void {
    checkParams(e.params, this.pcpus);
    this.st.set(e.id, { e, credit: 0, lastCpu: e.cpuSeconds(), capBudget: 0, active: false, wanted: false, boost: false, slot: -1, lastSlot: -1, sliceEnd: 0, waitedFor: false });
    e.setPermit(false);
    this.tick();
  }

  remove(id: number): void {
    const s = this.st.get(id);
    if (s === undefined) return;
    if (s.slot >= 0) this.slots[s.slot] = null;
    this.st.delete(id);
    this.tick();
  }

  setParams(id: number, p: Partial<SchedParams>): SchedParams {
    const s = this.st.get(id);
    if (s === undefined) throw new RangeError(`no scheduled domain ${id}`);
    const next = { ...s.e.params, ...p };
    checkParams(next, this.pcpus);
    s.e.params = next;
    if (s.slot >= 0 && next.affinity !== null && !next.affinity.includes(s.slot)) this.release(s);
    this.tick();
    return next;
  }

  /**
   * False when, at the last tick, no domain held a slot or wanted one: ticking then changes nothing until some
   * domain wants a pCPU again, so the hypervisor stops its tick and restarts it on the domain's wake-up
   * (an idle host costs no scheduler work; STYLE.md "Idle is free").
   */
  get busy(): boolean {
    // A blocked holder keeps its slot (see the file comment) but needs no tick: whoever wants one next asks.
    for (const s of this.st.values()) if (s.wanted) return true;
    if (!this.keepBlockedSlots) for (const s of this.slots) if (s !== null) return true;
    return false;
  }

  /** Which slot a domain holds (-1: none) and its credit, for tests and `xeno vcpu-list`. */
  slotOf(id: number): number { return this.st.get(id)?.slot ?? -1; }
  /** The slot a domain holds or held last (-1: it never ran). */
  lastSlotOf(id: number): number { return this.st.get(id)?.lastSlot ?? -1; }
  creditOf(id: number): number { return this.st.get(id)?.credit ?? 0; }

  /** Runs accounting when a period has passed, then (re)assigns slots. Call every few ms (the hypervisor: 10 ms). */
  tick(): void {
    const now = this.now();
    const elapsed = Math.max(0, now - this.lastTick);
    this.lastTick = now;
    // Usage since the last look: debited from credit and from the cap budget.
    for (const s of this.st.values()) {
      const cpu = s.e.cpuSeconds();
      const used = Math.max(0, (cpu - s.lastCpu) * 1000);
      s.lastCpu = cpu;
      s.credit -= used;
      const cap = s.e.params.cap;
      if (cap > 0) s.capBudget = Math.min((ACCT_MS * cap) / 100, s.capBudget + (elapsed * cap) / 100 - used);
      const w = s.e.wants();
      // A holder that used CPU since the last look loses its BOOST, as in Xen (credit.c csched_vcpu_acct: a
      // boosted vCPU found running at a tick "is consuming a non-negligible amount of CPU" and is demoted). A
      // holder keeps its slot while blocked (keepBlockedSlots), so its wake-up boosts it without a new slot
      // ending that boost: before 2026-12-07 such a domain, woken busy, kept BOOST and its slot for ever (three
      // busy domains on two pCPUs ran 100/56/56 in test/hv/balance-guests).
      if (s.slot >= 0 && used > 0) s.boost = false;
      if (w && !s.wanted && s.credit >= 0) s.boost = true; // woke up with credit left: BOOST
      if (!w) s.boost = false;
      s.wanted = w;
      if (w || used > 0) s.active = true;
    }
    if (now - this.lastAcct >= ACCT_MS) {
      const periods = Math.min(10, Math.floor((now - this.lastAcct) / ACCT_MS));
      this.lastAcct += periods * ACCT_MS;
      this.account(periods * ACCT_MS);
    }
    this.assign(now);
  }

  /**
   * Shares out `ms` of every pCPU among the domains active on it, by weight (a domain gets a share of each pCPU
   * its affinity allows, at most one pCPU's worth in all: it runs on one at a time). Per pCPU rather than pooled,
   * so domains pinned together split *their* pCPU by weight instead of each being promised more than it can use.
   */
  private account(ms: number): void {
    const active = [...this.st.values()].filter((s) => s.active);
    const gain = new Map<State, number>();
    for (let k = 0; k < this.pcpus; k++) {
      const here = active.filter((s) => s.e.params.affinity === null || s.e.params.affinity.includes(k));
      let weights = 0;
      for (const s of here) weights += s.e.params.weight;
      for (const s of here) gain.set(s, (gain.get(s) ?? 0) + (ms * s.e.params.weight) / weights);
    }
    // A thread runs one of its domains at a time: a group earns at most one pCPU's worth, split by weight.
    const groupGain = new Map<number, number>();
    for (const [s, g] of gain) if (s.e.group !== undefined) groupGain.set(s.e.group, (groupGain.get(s.e.group) ?? 0) + g);
    for (const [s, g] of gain) {
      const total = s.e.group !== undefined ? groupGain.get(s.e.group)! : 0;
      if (total > ms) gain.set(s, (g * ms) / total);
    }
    for (const s of this.st.values()) {
      const g = Math.min(ms, gain.get(s) ?? 0);
      s.credit = Math.max(-4 * CREDIT_CAP_MS, Math.min(CREDIT_CAP_MS, s.credit + g));
      s.active = s.wanted;
    }
  }

  private capped(s: State): boolean {
    return s.e.params.cap > 0 && s.capBudget <= 0;
  }

  private pri(s: State): number { return s.boost ? PRI_BOOST : s.credit >= 0 ? PRI_UNDER : PRI_OVER; }

  private release(s: State): void {
    if (s.slot >= 0) this.slots[s.slot] = null;
    s.slot = -1;
    s.waitedFor = false;
    s.e.setPermit(false);
  }

  private assign(now: number): void {
    // Holders that hit their cap or lost the slot by affinity leave it; capped ones that stopped wanting too (their
    // cap needs ticks that see them). Other blocked holders keep it until a waiter needs it (below).
    for (const s of this.st.values()) {
      if (s.slot < 0) continue;
      const aff = s.e.params.affinity;
      if ((!s.wanted && (s.e.params.cap > 0 || !this.keepBlockedSlots)) || this.capped(s) || (aff !== null && !aff.includes(s.slot))) this.release(s);
    }
    const waiting = [...this.st.values()].filter((s) => s.slot < 0 && s.wanted && !this.capped(s))
      .sort((a, b) => this.pri(b) - this.pri(a) || b.credit - a.credit || a.e.id - b.e.id);
    for (const s of waiting) {
      const aff = s.e.params.affinity;
      const allowed = (k: number): boolean => aff === null || aff.includes(k);
      // A group-mate holding a slot (same thread): only its slot, only by preemption — unless it is blocked,
      // when it gives the slot up to this one.
      let mate: State | null = null;
      if (s.e.group !== undefined) for (const h of this.slots) if (h !== null && h.e.group === s.e.group) mate = h;
      let pick = -1;
      if (mate !== null && !mate.wanted) { const k = mate.slot; this.release(mate); mate = null; if (allowed(k)) pick = k; }
      // A free allowed slot, else one whose holder is blocked, else preempt: a holder whose slice is over and who
      // ranks below, or any non-BOOST holder when this one is BOOST.
      if (mate === null) for (let k = 0; k < this.pcpus && pick < 0; k++) if (allowed(k) && this.slots[k] === null) pick = k;
      if (mate === null) {
        for (let k = 0; k < this.pcpus && pick < 0; k++) {
          const h = this.slots[k];
          if (h !== null && allowed(k) && !h.wanted) { pick = k; this.release(h); }
        }
      }
      if (pick < 0) {
        let worst: State | null = null;
        for (let k = 0; k < this.pcpus; k++) {
          const h = this.slots[k];
          if (h === null || !allowed(k) || (mate !== null && h !== mate)) continue;
          const over = now >= h.sliceEnd;
          const outranked = this.pri(s) > this.pri(h) || (this.pri(s) === this.pri(h) && s.credit > h.credit);
          if ((over && outranked) || (s.boost && !h.boost)) {
            if (worst === null || this.pri(h) < this.pri(worst) || (this.pri(h) === this.pri(worst) && h.credit < worst.credit)) worst = h;
          }
        }
        if (worst !== null) { pick = worst.slot; this.release(worst); }
      }
      if (pick < 0) continue;
      this.slots[pick] = s;
      s.slot = pick;
      s.lastSlot = pick;
      s.sliceEnd = now + this.tsliceMs;
      s.boost = false; // a boost buys one slice
      s.waitedFor = false;
      s.e.setPermit(true);
    }
    // Holders learn whether someone still waits (a capped one always hands over when it blocks). The waiters now
    // include any holder just preempted.
    let unserved = false;
    for (const s of this.st.values()) if (s.slot < 0 && s.wanted && !this.capped(s)) { unserved = true; break; }
    for (const h of this.slots) {
      if (h === null) continue;
      const w = unserved || h.e.params.cap > 0 || !this.keepBlockedSlots;
      if (w !== h.waitedFor) { h.waitedFor = w; h.e.setWaitedFor?.(w); }
    }
  }
}

function checkParams(p: SchedParams, pcpus: number): void {
  if (!Number.isInteger(p.weight) || p.weight < 1 || p.weight > 65535) throw new RangeError(`weight ${p.weight}: 1..65535`);
  if (!Number.isInteger(p.cap) || p.cap < 0 || p.cap > 100) throw new RangeError(`cap ${p.cap}: 0..100 (% of one pCPU; a domain runs on one pCPU at a time)`);
  if (p.affinity !== null) {
    if (p.affinity.length === 0) throw new RangeError("affinity: no pCPU left (Xeno has pCPUs 0.." + (pcpus - 1) + ")");
    for (const k of p.affinity) if (!Number.isInteger(k) || k < 0 || k >= pcpus) throw new RangeError(`pCPU ${k}: Xeno has pCPUs 0..${pcpus - 1}`);
  }
}
