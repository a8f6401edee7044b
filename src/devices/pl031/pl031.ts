/**
 * ARM PrimeCell Real Time Clock PL031 (ARM DDI 0224C "PrimeCell Real Time Clock (PL031) TRM"), as Linux's
 * drivers/rtc/rtc-pl031.c uses it: a 32-bit seconds counter (UTC seconds since the epoch by convention),
 * loadable through RTCLR, with one match (alarm) register and its interrupt.
 *
 * The counter is derived from a clock hook (host wall time by default; the board gives it its domain's wall
 * clock, common/domain-clock.ts) plus an offset set by RTCLR, so it costs nothing while nobody reads it. The
 * match interrupt is found lazily: on every register access and on poll(), which the board calls before each
 * slice, its sleep bounded by secondsUntilMatch().
 */
import type { IrqLine, MmioDevice } from "../mmio.js";
import { subWord } from "../mmio.js";
import { type DtNode, reg64, spiInterrupt } from "../dt.js";
import { stateInt, stateVersion } from "../../common/state.js";

// Register offsets (DDI 0224C table 3-1).
export const RTCDR = 0x00, RTCMR = 0x04, RTCLR = 0x08, RTCCR = 0x0c, RTCIMSC = 0x10, RTCRIS = 0x14;
export const RTCMIS = 0x18, RTCICR = 0x1c, RTCPERIPHID0 = 0xfe0, RTCPCELLID0 = 0xff0;
/** RTCCR.RTCStart (3.3.4): the counter runs once set; writing 0 has no effect. */
export const RTC_CR_START = 1;
/** The single interrupt bit in IMSC/RIS/MIS/ICR. */
export const RTC_INT = 1;

/** PrimeCell IDs: PeriphID 0x00041031 (part 0x031, ARM), CellID 0xB105F00D. */
const PERIPH_ID = [0x31, 0x10, 0x04, 0x00] as const;
const CELL_ID = [0x0d, 0xf0, 0x05, 0xb1] as const;

/** Default clock: host wall time in seconds since the Unix epoch. */
export const hostSeconds = (): number => Date.now() / 1000;

/**
 * Saved PL031 state. The time base is saved as `offset`, the counter's distance from the host clock
 * (RTCDR = floor(clock()) + offset), not as the guest-visible counter value: the PL031 is the guest's
 * battery-backed wall clock (Linux sets the system time from it at boot and rtc-pl031 alarms are in UTC
 * seconds), so like a real RTC while its machine is off it must keep counting during the time the domain
 * spends saved, and a domain restored on another host must still read UTC. Saving the value instead would
 * freeze the guest's calendar for the whole downtime (Xen likewise rewrites a restored guest's shared_info
 * wallclock from the host's time). A guest that set its RTC off true time keeps that difference. An alarm whose time passes while the domain is saved fires on the first check after restore
 * (`lastDr` is where the last check stopped).
 */
export interface Pl031State {
  version: 1;
  /** RTCDR minus floor(host seconds), in (-2^32, 2^32). */
  offset: number;
  /** RTCMR, RTCIMSC, RTCRIS. */
  mr: number;
  imsc: number;
  ris: number;
  /** Counter value at the last match check (u32). */
  lastDr: number;
}

export class Pl031 implements MmioDevice {
  readonly size = 0x1000;
  /** DR = (floor(clock()) + offset) mod 2^32. */
  private offset = 0;
  private mr = 0;
  private imsc = 0;
  private ris = 0;
  /** Counter value at the last match check (matches are found on the way from here to now). */
  private lastDr = 0;
  private lastIrq = false;

  constructor(private readonly irq: IrqLine, private readonly clock: () => number = hostSeconds) {
    this.lastDr = this.counter();
  }

  save(): Pl031State {
    return { version: 1, offset: this.offset, mr: this.mr, imsc: this.imsc, ris: this.ris, lastDr: this.lastDr };
  }

  /** Loads a saved state (all fields checked first: StateError, nothing changed), then re-drives the line. */
  restore(state: Pl031State): void {
    const C = "pl031";
    const s = stateVersion(C, state, 1);
    const offset = stateInt(C, "offset", s.offset, -4294967295, 4294967295);
    const mr = stateInt(C, "mr", s.mr, 0, 0xffffffff);
    const imsc = stateInt(C, "imsc", s.imsc, 0, RTC_INT);
    const ris = stateInt(C, "ris", s.ris, 0, RTC_INT);
    const lastDr = stateInt(C, "lastDr", s.lastDr, 0, 0xffffffff);
    this.offset = offset; this.mr = mr; this.imsc = imsc; this.ris = ris; this.lastDr = lastDr;
    this.lastIrq = (ris & imsc) !== 0;
    this.irq.set(this.lastIrq);
  }

  /** The current counter value (RTCDR). */
  counter(): number {
    return (Math.floor(this.clock()) + this.offset) >>> 0;
  }

  /** Checks for a match since the last check (the board calls this when its alarm timer fires). */
  poll(): void {
    const now = this.counter();
    const span = (now - this.lastDr) >>> 0;
    if (span !== 0) {
      const dist = (this.mr - this.lastDr) >>> 0;
      if (dist !== 0 && dist <= span) this.ris = RTC_INT;
      this.lastDr = now;
    }
    this.update();
  }

  /** Seconds until the counter reaches RTCMR (1..2^32), for the board's wake-up timer; -1 if masked. */
  secondsUntilMatch(): number {
    if ((this.imsc & RTC_INT) === 0) return -1;
    const d = (this.mr - this.counter()) >>> 0;
    return d === 0 ? 4294967296 : d;
  }

  private update(): void {
    const on = (this.ris & this.imsc) !== 0;
    if (on !== this.lastIrq) { this.lastIrq = on; this.irq.set(on); }
  }

  read(offset: number, size: number): number {
    const off = offset & ~3;
    let v: number;
    switch (off) {
      case RTCDR: this.poll(); v = this.counter(); break;
      case RTCMR: v = this.mr; break;
      case RTCLR: v = this.counter(); break; // reads back the counter's current value (3.3.3)
      case RTCCR: v = RTC_CR_START; break;
      case RTCIMSC: v = this.imsc; break;
      case RTCRIS: this.poll(); v = this.ris; break;
      case RTCMIS: this.poll(); v = this.ris & this.imsc; break;
      default:
        if (off >= RTCPERIPHID0 && off < RTCPCELLID0) v = PERIPH_ID[(off - RTCPERIPHID0) >> 2];
        else if (off >= RTCPCELLID0) v = CELL_ID[(off - RTCPCELLID0) >> 2];
        else v = 0;
    }
    return subWord(v, offset, size) >>> 0;
  }

  write(offset: number, _size: number, value: number): void {
    switch (offset & ~3) {
      case RTCMR:
        this.poll();
        this.mr = value >>> 0;
        if (this.mr === this.counter()) this.ris = RTC_INT; // already equal: the comparator matches now
        break;
      case RTCLR:
        this.offset = ((value >>> 0) - Math.floor(this.clock())) % 4294967296;
        this.lastDr = this.counter(); // a load is not a count: no match across the jump
        break;
      case RTCIMSC: this.imsc = value & RTC_INT; break;
      case RTCICR: this.ris &= ~(value & RTC_INT); break;
      default: return; // DR, CR (start is always on), RIS, MIS, IDs: writes ignored
    }
    this.update();
  }
}

/** Device-tree node (bindings/rtc/arm,pl031.yaml); clockPhandle is the shared apb-pclk (pl011.ts apbPclkNode). */
export function pl031DtNode(base: number, intid: number, clockPhandle: number): DtNode {
  return {
    name: `pl031@${base.toString(16)}`,
    props: {
      compatible: ["arm,pl031", "arm,primecell"],
      reg: reg64(base, 0x1000),
      interrupts: spiInterrupt(intid),
      clocks: [clockPhandle],
      "clock-names": ["apb_pclk"],
    },
  };
}
