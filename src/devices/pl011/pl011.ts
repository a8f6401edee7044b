/**
 * ARM PrimeCell UART PL011 (ARM DDI 0183G "PrimeCell UART (PL011) Technical Reference Manual", r1p5),
 * as Linux's drivers/tty/serial/amba-pl011.c and its earlycon drive it.
 *
 * Transmit: a byte written to UARTDR goes to the output sink at once, so the TX FIFO is always empty: FR.TXFE
 * = 1, TXFF = BUSY = 0, and the transmit interrupt status (RIS.TXRIS), which the TRM defines as "TX FIFO at
 * or below the programmed trigger level" (3.4.3 UARTTXINTR), is permanently set. That is what the driver
 * expects: amba-pl011.c calls it a "ready to transmit IRQ" that cannot be cleared, only masked; pl011_tx_chars
 * unmasks TXIM only while it still has characters queued and masks it (pl011_stop_tx) once its buffer drains,
 * so transmit never stalls and never storms.
 *
 * Receive: a 32-entry FIFO (one holding register when LCR_H.FEN = 0). Bytes arrive through input(), which
 * takes what fits and returns the count (the caller keeps the rest: backpressure, no overrun). Interrupts
 * (3.4.4, 3.4.5), approximating the bit-time based timeout:
 *  - RXRIS: set when input() brings the FIFO level up to the RX trigger level (IFLS.RXIFLSEL; any byte with
 *    the FIFO disabled), cleared by ICR or when reads take the level below the trigger level;
 *  - RTRIS: the receive timeout, set whenever input() leaves the FIFO non-empty (as if the line then went
 *    idle), cleared by ICR or when the FIFO empties.
 * Linux's pl011_int never clears RX/RT through ICR: it reads UARTDR until FR.RXFE, which deasserts both.
 *
 * Not modelled: baud rate timing, break/parity/framing/overrun errors (no faulty line), modem lines (inputs
 * read as inactive), IrDA, DMA (DMACR is stored only). Transmit works even before CR.UARTEN is set, because
 * earlycon and firmware-less boots write to a UART nobody has enabled (QEMU does the same).
 *
 * Hot path: register accesses allocate nothing; the sink gets a reused 1-byte view (copy it to keep it).
 */
import type { IrqLine, MmioDevice } from "../mmio.js";
import { subWord } from "../mmio.js";
import { type DtNode, fixedClockNode, reg64, spiInterrupt } from "../dt.js";
import { StateError, stateBytes, stateInt, stateVersion } from "../../common/state.js";

// Register offsets (DDI 0183G table 3-1).
export const UARTDR = 0x000, UARTRSR = 0x004, UARTFR = 0x018, UARTILPR = 0x020, UARTIBRD = 0x024;
export const UARTFBRD = 0x028, UARTLCR_H = 0x02c, UARTCR = 0x030, UARTIFLS = 0x034, UARTIMSC = 0x038;
export const UARTRIS = 0x03c, UARTMIS = 0x040, UARTICR = 0x044, UARTDMACR = 0x048;
export const UARTPERIPHID0 = 0xfe0, UARTPCELLID0 = 0xff0;

/** UARTFR bits (3.3.3). */
export const FR_CTS = 1 << 0, FR_BUSY = 1 << 3, FR_RXFE = 1 << 4, FR_TXFF = 1 << 5, FR_RXFF = 1 << 6;
export const FR_TXFE = 1 << 7;
/** UARTLCR_H bits (3.3.7). */
export const LCRH_BRK = 1 << 0, LCRH_FEN = 1 << 4;
/** UARTCR bits (3.3.8). */
export const CR_UARTEN = 1 << 0, CR_LBE = 1 << 7, CR_TXE = 1 << 8, CR_RXE = 1 << 9;
/** Interrupt bits, shared by IMSC/RIS/MIS/ICR (3.3.10-3.3.13). */
export const INT_RI = 1 << 0, INT_CTS = 1 << 1, INT_DCD = 1 << 2, INT_DSR = 1 << 3, INT_RX = 1 << 4;
export const INT_TX = 1 << 5, INT_RT = 1 << 6, INT_FE = 1 << 7, INT_PE = 1 << 8, INT_BE = 1 << 9;
export const INT_OE = 1 << 10, INT_ALL = 0x7ff;

/** Reset values (3.3): CR = TXE | RXE, IFLS = 1/2 full for both FIFOs. */
const CR_RESET = CR_TXE | CR_RXE, IFLS_RESET = 0x12;
/** FIFO depth (r1p5: 32 entries, 2.4.3). */
export const PL011_FIFO_DEPTH = 32;
/** IFLS trigger levels for a 32-entry FIFO: 1/8, 1/4, 1/2, 3/4, 7/8 (3.3.9); 5-7 are reserved (→ 1/2). */
const TRIGGER = [4, 8, 16, 24, 28, 16, 16, 16];

/** PrimeCell identification (3.3.14-3.3.15): PeriphID 0x00141011 (part 0x011, designer ARM, rev 1), CellID
 * 0xB105F00D. Linux's AMBA bus reads these to bind the driver (id 0x00041011, mask 0x000fffff). */
const PERIPH_ID = [0x11, 0x10, 0x14, 0x00] as const;
const CELL_ID = [0x0d, 0xf0, 0x05, 0xb1] as const;

/**
 * Saved PL011 state: the guest-writable registers, the RX FIFO contents in arrival order and the latched
 * interrupt status. Not saved: the output level (re-driven on restore), the sink and onRxSpace (wiring).
 */
export interface Pl011State {
  version: 1;
  ibrd: number; fbrd: number; lcrh: number; cr: number; ifls: number; imsc: number; dmacr: number; ilpr: number;
  /** Latched RIS bits: INT_RX and INT_RT only (TX is always ready, modem/error bits never set). */
  ris: number;
  /** Received bytes not yet read by the guest, oldest first (at most the FIFO's capacity in the saved mode). */
  rx: Uint8Array;
  /** Bytes transmitted (statistics, kept so counters continue). */
  txCount: number;
}

/** UART reference clock described in the device tree (QEMU virt uses 24 MHz too). */
export const PL011_CLOCK_HZ = 24_000_000;

export class Pl011 implements MmioDevice {
  readonly size = 0x1000;

  private readonly rxFifo = new Uint8Array(PL011_FIFO_DEPTH);
  private rxHead = 0;
  private rxCount = 0;
  /** Latched RIS bits (RX, RT; modem/error bits never set). TX is derived, see class comment. */
  private ris = 0;
  private lastIrq = false;
  private readonly txByte = new Uint8Array(1);

  private ibrd = 0; private fbrd = 0; private lcrh = 0; private cr = CR_RESET; private ifls = IFLS_RESET;
  private imsc = 0; private dmacr = 0; private ilpr = 0;

  /** Called when guest reads empty the RX FIFO: the console may call input() again (synchronously is fine). */
  onRxSpace: (() => void) | null = null;
  /** Bytes transmitted (statistics). */
  txCount = 0;

  constructor(private readonly irq: IrqLine, private readonly sink: (bytes: Uint8Array) => void) {}

  reset(): void {
    this.rxHead = 0; this.rxCount = 0; this.ris = 0;
    this.ibrd = 0; this.fbrd = 0; this.lcrh = 0; this.cr = CR_RESET; this.ifls = IFLS_RESET;
    this.imsc = 0; this.dmacr = 0; this.ilpr = 0;
    this.update();
  }

  /** RX FIFO capacity in the current mode. */
  private capacity(lcrh = this.lcrh): number {
    return (lcrh & LCRH_FEN) !== 0 ? PL011_FIFO_DEPTH : 1;
  }

  private rxTrigger(lcrh = this.lcrh, ifls = this.ifls): number {
    return (lcrh & LCRH_FEN) !== 0 ? TRIGGER[(ifls >> 3) & 7] : 1;
  }

  save(): Pl011State {
    const rx = new Uint8Array(this.rxCount);
    for (let i = 0; i < this.rxCount; i++) rx[i] = this.rxFifo[(this.rxHead + i) & (PL011_FIFO_DEPTH - 1)];
    return {
      version: 1, ibrd: this.ibrd, fbrd: this.fbrd, lcrh: this.lcrh, cr: this.cr, ifls: this.ifls, imsc: this.imsc,
      dmacr: this.dmacr, ilpr: this.ilpr, ris: this.ris, rx, txCount: this.txCount,
    };
  }

  /**
   * Loads a saved state after checking every field against what the registers can hold and the FIFO
   * invariants the model keeps (RX pending only at or above the trigger level, RT only with data); a bad state
   * throws StateError and changes nothing. Then re-drives the interrupt line.
   */
  restore(state: Pl011State): void {
    const C = "pl011";
    const s = stateVersion(C, state, 1);
    const f = (n: string, hi: number): number => stateInt(C, n, s[n], 0, hi);
    const ibrd = f("ibrd", 0xffff), fbrd = f("fbrd", 0x3f), lcrh = f("lcrh", 0xff), cr = f("cr", 0xffff);
    const ifls = f("ifls", 0x3f), imsc = f("imsc", INT_ALL), dmacr = f("dmacr", 7), ilpr = f("ilpr", 0xff);
    const txCount = f("txCount", Number.MAX_SAFE_INTEGER);
    const ris = f("ris", INT_RX | INT_RT);
    if ((ris & ~(INT_RX | INT_RT)) !== 0) throw new StateError(C, "ris", `${ris}: only RX and RT latch`);
    const rx = stateBytes(C, "rx", s.rx, -1);
    if (rx.length > this.capacity(lcrh)) throw new StateError(C, "rx", `${rx.length} bytes, the FIFO holds ${this.capacity(lcrh)}`);
    if ((ris & INT_RX) !== 0 && rx.length < this.rxTrigger(lcrh, ifls)) throw new StateError(C, "ris", "RX interrupt below the trigger level");
    if ((ris & INT_RT) !== 0 && rx.length === 0) throw new StateError(C, "ris", "receive timeout with an empty FIFO");

    this.ibrd = ibrd; this.fbrd = fbrd; this.lcrh = lcrh; this.cr = cr; this.ifls = ifls; this.imsc = imsc;
    this.dmacr = dmacr; this.ilpr = ilpr; this.ris = ris; this.txCount = txCount;
    this.rxFifo.fill(0);
    this.rxFifo.set(rx, 0);
    this.rxHead = 0;
    this.rxCount = rx.length;
    this.lastIrq = (this.rawStatus() & this.imsc) !== 0;
    this.irq.set(this.lastIrq);
  }

  /** Free RX FIFO entries. */
  get rxSpace(): number {
    return this.capacity() - this.rxCount;
  }

  /**
   * Delivers received bytes; returns how many were taken (0..bytes.length). The rest must be offered again
   * later (onRxSpace signals room).
   */
  input(bytes: Uint8Array, start = 0, end = bytes.length): number {
    const cap = this.capacity();
    let n = 0;
    for (let i = start; i < end && this.rxCount < cap; i++, n++) {
      this.rxFifo[(this.rxHead + this.rxCount) & (PL011_FIFO_DEPTH - 1)] = bytes[i];
      this.rxCount++;
    }
    if (n > 0) {
      this.ris |= INT_RT;
      if (this.rxCount >= this.rxTrigger()) this.ris |= INT_RX;
      this.update();
    }
    return n;
  }

  private popRx(): number {
    if (this.rxCount === 0) return 0;
    const v = this.rxFifo[this.rxHead];
    this.rxHead = (this.rxHead + 1) & (PL011_FIFO_DEPTH - 1);
    this.rxCount--;
    if (this.rxCount < this.rxTrigger()) this.ris &= ~INT_RX;
    if (this.rxCount === 0) this.ris &= ~INT_RT;
    this.update();
    if (this.rxCount === 0 && this.onRxSpace !== null) this.onRxSpace();
    return v;
  }

  private transmit(v: number): void {
    this.txCount++;
    if ((this.cr & CR_LBE) !== 0) { // loopback: the byte comes back on RX (3.3.8)
      this.txByte[0] = v;
      this.input(this.txByte);
      return;
    }
    this.txByte[0] = v;
    this.sink(this.txByte);
  }

  /** Raw interrupt status: latched RX/RT plus the always-ready TX (see class comment). */
  private rawStatus(): number {
    return this.ris | INT_TX;
  }

  private update(): void {
    const on = (this.rawStatus() & this.imsc) !== 0;
    if (on !== this.lastIrq) { this.lastIrq = on; this.irq.set(on); }
  }

  private flags(): number {
    let f = FR_TXFE;
    if (this.rxCount === 0) f |= FR_RXFE;
    if (this.rxCount >= this.capacity()) f |= FR_RXFF;
    return f;
  }

  read(offset: number, size: number): number {
    const off = offset & ~3;
    let v: number;
    switch (off) {
      case UARTDR: v = this.popRx(); break; // error bits [11:8] always 0
      case UARTRSR: v = 0; break;
      case UARTFR: v = this.flags(); break;
      case UARTILPR: v = this.ilpr; break;
      case UARTIBRD: v = this.ibrd; break;
      case UARTFBRD: v = this.fbrd; break;
      case UARTLCR_H: v = this.lcrh; break;
      case UARTCR: v = this.cr; break;
      case UARTIFLS: v = this.ifls; break;
      case UARTIMSC: v = this.imsc; break;
      case UARTRIS: v = this.rawStatus(); break;
      case UARTMIS: v = this.rawStatus() & this.imsc; break;
      case UARTDMACR: v = this.dmacr; break;
      default:
        if (off >= UARTPERIPHID0 && off < UARTPCELLID0) v = PERIPH_ID[(off - UARTPERIPHID0) >> 2];
        else if (off >= UARTPCELLID0) v = CELL_ID[(off - UARTPCELLID0) >> 2];
        else v = 0; // ICR is write-only; reserved and test registers read as zero
    }
    return subWord(v, offset, size);
  }

  write(offset: number, _size: number, value: number): void {
    const off = offset & ~3;
    switch (off) {
      case UARTDR: this.transmit(value & 0xff); return;
      case UARTRSR: return; // ECR: clears the (never set) error flags
      case UARTILPR: this.ilpr = value & 0xff; return;
      case UARTIBRD: this.ibrd = value & 0xffff; return;
      case UARTFBRD: this.fbrd = value & 0x3f; return;
      case UARTLCR_H: {
        const v = value & 0xff;
        // Leaving FIFO mode keeps only the holding register's worth of data (QEMU flushes on any FEN change;
        // keeping the oldest byte loses less console input).
        if ((this.lcrh & LCRH_FEN) !== 0 && (v & LCRH_FEN) === 0 && this.rxCount > 1) this.rxCount = 1;
        this.lcrh = v;
        this.recomputeRx();
        return;
      }
      case UARTCR: this.cr = value & 0xffff; return;
      case UARTIFLS: this.ifls = value & 0x3f; this.recomputeRx(); return;
      case UARTIMSC: this.imsc = value & INT_ALL; this.update(); return;
      case UARTICR: this.ris &= ~value; this.update(); return;
      case UARTDMACR: this.dmacr = value & 7; return;
      default: return; // read-only and reserved registers ignore writes
    }
  }

  /** After a trigger-level or FIFO-mode change: RXRIS follows the new level (3.4.4: "goes through"). */
  private recomputeRx(): void {
    if (this.rxCount >= this.rxTrigger() && this.rxCount > 0) this.ris |= INT_RX; else this.ris &= ~INT_RX;
    this.update();
  }
}

/** Node names and phandle-free content for the PL011 and the clock it needs. */
export interface Pl011DtNodes {
  /** The "apb-pclk" fixed clock every PrimeCell on the board can share (place it at the root). */
  clock: DtNode;
  uart: DtNode;
}

/**
 * Device-tree nodes for a PL011 (bindings/serial/arm,pl011.yaml): the UART node references a clock twice,
 * as "uartclk" (baud generator) and "apb_pclk" (bus clock; the AMBA bus enables it before reading the
 * PrimeCell IDs, so without it the driver never binds). Root #address-cells/#size-cells = 2; `intid` is the
 * GIC INTID of its SPI (e.g. 33 for QEMU virt's UART at 0x09000000). Point /chosen/stdout-path at it.
 */
export function pl011DtNodes(base: number, intid: number, clockPhandle: number, gicPhandle?: number): Pl011DtNodes {
  const uart: DtNode = {
    name: `pl011@${base.toString(16)}`,
    props: {
      compatible: ["arm,pl011", "arm,primecell"],
      reg: reg64(base, 0x1000),
      interrupts: spiInterrupt(intid),
      clocks: [clockPhandle, clockPhandle],
      "clock-names": ["uartclk", "apb_pclk"],
    },
  };
  if (gicPhandle !== undefined) uart.props["interrupt-parent"] = [gicPhandle];
  return { clock: apbPclkNode(clockPhandle), uart };
}

/** The shared 24 MHz "apb-pclk" fixed clock (as on QEMU virt, output name "clk24mhz"). */
export function apbPclkNode(phandle: number): DtNode {
  return fixedClockNode("apb-pclk", PL011_CLOCK_HZ, phandle, "clk24mhz");
}
