/**
 * A domain's time: its system counter (what the generic timer's CNTPCT_EL0 reads, 62.5 MHz) and its wall
 * clock (what the PL031 RTC and Xen's shared_info wallclock give the guest), both derived from the one host
 * clock (host-clock.ts) plus a per-domain offset. Every vCPU of the domain, the Xen layer (runstate times,
 * wallclock) and the RTC read this one clock, so they never disagree, whichever thread the domain runs in.
 *
 * Semantics, chosen after Xen's:
 * - At creation the counter reads 0 (Xen/Arm sets the domain's CNTVOFF to the physical count when it creates
 *   the domain, xen/arch/arm/vtimer.c vcpu_vtimer_init / domain_vtimer_init) and the wall clock reads host
 *   wall time (Date.now()).
 * - While the domain is paused the counter keeps running, as on Xen (the guest's counter is real time; a
 *   paused guest sees the time it was paused when it runs again, as after a host suspend).
 * - Across save/restore the counter continues from the saved value: restore() sets the offset so the first
 *   read gives the saved count, and the guest sees no jump for the time it spent saved (Xen/Arm does not
 *   migrate at all; x86 keeps TSC continuity the same way). The wall clock continues from its saved value
 *   too, so guest wall time lags host wall time by the time spent saved until the guest's NTP (or hwclock)
 *   corrects it — one clock: the RTC never disagrees with the guest's counter-based time.
 *
 * The host clock is CLOCK_MONOTONIC: the guest's wall clock does not follow steps of the host's wall clock
 * after creation (a real RTC does not either).
 */
import { hostNowMs } from "./host-clock.js";
import { StateError, stateInt, stateVersion } from "./state.js";

/** The counter frequency (CNTFRQ_EL0), Hz: 62.5 MHz, a 16 ns tick (see cpu/arm64/sys-timer.ts). */
export const COUNTER_HZ = 62_500_000;
const TICKS_PER_MS = COUNTER_HZ / 1000;
/**
 * Largest counter a saved state may carry: 2^52 ticks (~2.3 years of guest time), leaving as much again before
 * the counter stops being an exact integer in a double (2^53; sys-timer.ts keeps it below that).
 */
const MAX_SAVED_COUNTER = 2 ** 52;
/** Wall-clock bounds a state may carry, ms since the Unix epoch: up to year ~287,000 (still exact). */
const MAX_WALL_MS = 2 ** 53 - 1;

/**
 * The narrow view of a domain's clock that the board, its devices and the Xen layer use. `now` is a
 * function-valued property (not a method) so it can be installed as a CPU's counter hook without binding.
 */
export interface GuestClock {
  /** The guest's system counter (CNTPCT_EL0), ticks of COUNTER_HZ: a non-negative integer, monotonic. */
  readonly now: () => number;
  /** The guest's wall clock, ms since the Unix epoch (fractional), advancing with the counter. */
  wallMs(): number;
}

/** Saved DomainClock (plain data, structured-clone-able). */
export interface DomainClockState {
  version: 1;
  /** The guest counter (ticks of COUNTER_HZ) at save time. */
  counter: number;
  /** The guest's wall clock at save time, whole ms since the Unix epoch. */
  wallMs: number;
}

export class DomainClock implements GuestClock {
  /** Host ticks (floor(hostNowMs * TICKS_PER_MS)) at which the guest counter reads 0: an integer. */
  private baseTicks: number;
  /** Guest wall clock (ms since the Unix epoch) when the guest counter read 0. */
  private wall0Ms: number;

  /**
   * The guest counter: host ticks minus the domain's base. Allocation-free; called on every CNTPCT/CNTVCT read
   * and timer check (a CPU's counter hook is this function itself).
   */
  readonly now = (): number => Math.floor(this.host() * TICKS_PER_MS) - this.baseTicks;

  /** `host`: the host clock in ms (tests pass a fake); `wall`: host wall time in ms since the epoch. */
  constructor(private readonly host: () => number = hostNowMs, wall: () => number = Date.now) {
    this.baseTicks = Math.floor(host() * TICKS_PER_MS);
    this.wall0Ms = wall();
  }

  wallMs(): number {
    return this.wall0Ms + this.now() / TICKS_PER_MS;
  }

  save(): DomainClockState {
    const counter = this.now();
    return { version: 1, counter, wallMs: Math.round(this.wall0Ms + counter / TICKS_PER_MS) };
  }

  /**
   * Continues from a saved state: the counter reads state.counter now and runs on from there (never backwards
   * from the saved value, no jump for the time spent saved); the wall clock likewise from state.wallMs. Bad
   * state is refused with StateError before anything changes.
   */
  restore(state: unknown): void {
    const s = stateVersion("clock", state, 1);
    const counter = stateInt("clock", "counter", s.counter, 0, MAX_SAVED_COUNTER);
    const wallMs = stateInt("clock", "wallMs", s.wallMs, 0, MAX_WALL_MS);
    const hostTicks = Math.floor(this.host() * TICKS_PER_MS);
    if (!Number.isSafeInteger(hostTicks - counter)) throw new StateError("clock", "counter", `${counter} is out of range here`);
    this.baseTicks = hostTicks - counter;
    this.wall0Ms = wallMs - counter / TICKS_PER_MS;
  }

  /**
   * The clock's origin, exactly (not a reading): another thread's DomainClock built from it with fromOrigin
   * reads the same counter at the same instant — the vCPUs of one domain on several threads (remote-vcpu.ts).
   */
  origin(): { baseTicks: number; wall0Ms: number } { return { baseTicks: this.baseTicks, wall0Ms: this.wall0Ms }; }

  static fromOrigin(o: { baseTicks: number; wall0Ms: number }): DomainClock {
    if (!Number.isSafeInteger(o.baseTicks) || !Number.isFinite(o.wall0Ms)) throw new RangeError("DomainClock.fromOrigin: not a clock origin");
    const c = new DomainClock();
    c.baseTicks = o.baseTicks;
    c.wall0Ms = o.wall0Ms;
    return c;
  }
}
