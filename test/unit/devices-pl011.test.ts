/**
 * PL011 UART tests (ARM DDI 0183G): PrimeCell IDs, FIFO behaviour and backpressure, the interrupt semantics
 * Linux's amba-pl011.c relies on (RX/RT deasserted by draining, TX "ready" only masked), and the TX path.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CR_LBE, CR_RXE, CR_TXE, CR_UARTEN, FR_RXFE, FR_RXFF, FR_TXFE, FR_TXFF, INT_ALL, INT_RT, INT_RX, INT_TX,
  LCRH_FEN, Pl011, UARTCR, UARTDR, UARTFR, UARTICR, UARTIFLS, UARTIMSC, UARTLCR_H, UARTMIS, UARTRIS,
  pl011DtNodes,
} from "../../src/devices/pl011/pl011.js";
import { LatchedIrq } from "../../src/devices/mmio.js";

function setup() {
  const irq = new LatchedIrq();
  const out: number[] = [];
  const u = new Pl011(irq, (b) => { for (const x of b) out.push(x); });
  const r = (off: number, size = 4) => u.read(off, size) >>> 0;
  const w = (off: number, v: number) => u.write(off, 4, v);
  return { u, irq, out, r, w };
}

/** pl011_startup as Linux does it: clear, enable FIFOs (set_termios), UART on, RX/RT interrupts unmasked. */
function linuxStartup(s: ReturnType<typeof setup>): void {
  s.w(UARTICR, INT_ALL & ~INT_TX);
  s.w(UARTIFLS, 0x12); // 1/2 full
  s.w(UARTLCR_H, LCRH_FEN | (3 << 5)); // 8N1, FIFOs on
  s.w(UARTCR, CR_UARTEN | CR_RXE | CR_TXE);
  s.w(UARTICR, INT_RT | INT_RX);
  while ((s.r(UARTFR) & FR_RXFE) === 0) s.r(UARTDR);
  s.w(UARTIMSC, INT_RT | INT_RX);
}

/** Linux's pl011_int loop: returns the bytes received; transmits from `txq` while TXIM is set. */
function linuxIrq(s: ReturnType<typeof setup>, txq: number[] = []): number[] {
  const got: number[] = [];
  let passes = 256;
  let status = s.r(UARTRIS) & s.r(UARTIMSC);
  while (status !== 0) {
    s.w(UARTICR, status & ~(INT_TX | INT_RT | INT_RX));
    if (status & (INT_RT | INT_RX)) {
      for (let n = 0; n < 256 && (s.r(UARTFR) & FR_RXFE) === 0; n++) got.push(s.r(UARTDR) & 0xff);
    }
    if (status & INT_TX) {
      for (let n = 0; n < 16 && txq.length > 0; n++) s.w(UARTDR, txq.shift()!);
      if (txq.length === 0) s.w(UARTIMSC, s.r(UARTIMSC) & ~INT_TX);
    }
    if (passes-- === 0) break;
    status = s.r(UARTRIS) & s.r(UARTIMSC);
  }
  return got;
}

test("PrimeCell IDs, reset values, DT nodes", () => {
  const { r } = setup();
  const id = (base: number) => [0, 4, 8, 12].reduce((v, k, i) => v | ((r(base + k) & 0xff) << (8 * i)), 0) >>> 0;
  assert.equal(id(0xfe0) & 0x000fffff, 0x00041011);
  assert.equal(id(0xff0), 0xb105f00d);
  assert.equal(r(0xfe0, 1), 0x11);
  assert.equal(r(UARTCR), CR_TXE | CR_RXE);
  assert.equal(r(UARTIFLS), 0x12);
  assert.equal(r(UARTFR), FR_TXFE | FR_RXFE);
  const n = pl011DtNodes(0x09000000, 33, 0x8000);
  assert.deepEqual(n.uart.props.compatible, ["arm,pl011", "arm,primecell"]);
  assert.deepEqual(n.uart.props.interrupts, [0, 1, 4]);
  assert.deepEqual(n.uart.props["clock-names"], ["uartclk", "apb_pclk"]);
  assert.deepEqual(n.uart.props.reg, [0, 0x09000000, 0, 0x1000]);
  assert.equal(n.clock.props.compatible, "fixed-clock");
  assert.deepEqual(n.clock.props.phandle, [0x8000]);
});

test("TX: bytes reach the sink at once; FIFO never full; TX interrupt only when unmasked", () => {
  const s = setup();
  const { w, r, out, irq } = s;
  for (const c of "hi\n") w(UARTDR, c.charCodeAt(0));
  assert.equal(String.fromCharCode(...out), "hi\n");
  assert.equal(r(UARTFR) & (FR_TXFF | FR_TXFE), FR_TXFE);
  assert.equal(irq.level, false);
  assert.equal(r(UARTRIS) & INT_TX, INT_TX);
  w(UARTICR, INT_TX); // cannot be cleared: the FIFO is still at or below the trigger level
  assert.equal(r(UARTRIS) & INT_TX, INT_TX);
  // pl011_start_tx_pio with more than fits: unmask TXIM; the interrupt drives the rest out, then masks.
  linuxStartup(s);
  const txq = Array.from({ length: 100 }, (_, i) => 0x20 + i);
  w(UARTIMSC, r(UARTIMSC) | INT_TX);
  assert.equal(irq.level, true);
  linuxIrq(s, txq);
  assert.equal(txq.length, 0);
  assert.equal(irq.level, false);
  assert.equal(out.length, 103);
  assert.equal(s.u.txCount, 103);
});

test("RX: FIFO fill, trigger level, timeout, drain deasserts; backpressure", () => {
  const s = setup();
  const { u, w, r, irq } = s;
  linuxStartup(s);
  const data = new Uint8Array(40).map((_, i) => i + 1);
  assert.equal(u.input(data, 0, 3), 3);
  assert.equal(r(UARTRIS) & (INT_RX | INT_RT), INT_RT, "below trigger: timeout only");
  assert.equal(irq.level, true);
  assert.deepEqual(linuxIrq(s), [1, 2, 3]);
  assert.equal(irq.level, false);
  assert.equal(r(UARTFR) & FR_RXFE, FR_RXFE);
  // Fill past the trigger (16) and to capacity.
  let space = 0;
  u.onRxSpace = () => { space++; };
  assert.equal(u.input(data), 32, "32 entries accepted, the rest refused");
  assert.equal(r(UARTFR) & FR_RXFF, FR_RXFF);
  assert.equal(r(UARTMIS), INT_RX | INT_RT);
  assert.equal(u.input(data, 32), 0);
  for (let i = 0; i < 17; i++) assert.equal(r(UARTDR), i + 1);
  assert.equal(r(UARTRIS) & INT_RX, 0, "below the trigger level after reads");
  assert.equal(r(UARTRIS) & INT_RT, INT_RT);
  assert.equal(irq.level, true);
  const rest = linuxIrq(s);
  assert.equal(rest.length, 15);
  assert.equal(rest[14], 32);
  assert.equal(space, 1, "onRxSpace when the FIFO empties");
  assert.equal(irq.level, false);
  // ICR clears RX/RT even with data present; the next byte re-raises RT.
  u.input(data, 0, 20);
  w(UARTICR, INT_RX | INT_RT);
  assert.equal(irq.level, false);
  u.input(data, 20, 21);
  assert.equal(irq.level, true);
  linuxIrq(s);
  // Masked: no interrupt; IFLS 1/8 (4 entries).
  w(UARTIMSC, 0);
  w(UARTIFLS, 0);
  u.input(data, 0, 4);
  assert.equal(r(UARTRIS) & INT_RX, INT_RX);
  assert.equal(r(UARTMIS), 0);
  assert.equal(irq.level, false);
});

test("FIFO disabled: a one-character holding register", () => {
  const s = setup();
  const { u, w, r } = s;
  w(UARTLCR_H, 3 << 5); // FEN = 0
  w(UARTIMSC, INT_RX);
  assert.equal(u.input(new Uint8Array([65, 66])), 1);
  assert.equal(r(UARTFR) & (FR_RXFF | FR_RXFE), FR_RXFF);
  assert.equal(s.irq.level, true);
  assert.equal(r(UARTDR), 65);
  assert.equal(s.irq.level, false);
  assert.equal(u.input(new Uint8Array([66])), 1);
  w(UARTLCR_H, LCRH_FEN);
  assert.equal(u.rxSpace, 31);
});

test("loopback (CR.LBE) returns transmitted bytes on RX", () => {
  const s = setup();
  s.w(UARTLCR_H, LCRH_FEN);
  s.w(UARTCR, CR_UARTEN | CR_TXE | CR_RXE | CR_LBE);
  s.w(UARTDR, 0x5a);
  assert.equal(s.out.length, 0);
  assert.equal(s.r(UARTDR), 0x5a);
});
