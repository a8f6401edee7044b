/**
 * The PV console page (xen/include/public/io/console.h, struct xencons_interface): `in` carries input from the
 * back-end to the guest, `out` the guest's output to the back-end, each with free-running u32 indexes masked by
 * its size (MASK_XENCONS_IDX). Linux's hvc_xen (drivers/tty/hvc/hvc_xen.c) is the guest side of console 0
 * (hvc0); the back-end role (xenconsoled's) is src/backends/console.
 *
 * Offsets measured from the header compiled for arm64 (ARM-DOMU-ABI.md §5.2). Index handling and bounds are
 * ByteRing's: a guest writing absurd indexes gets -1 back from the ring, never an access outside the page.
 *
 * Save/restore: nothing to save here. Both rings, their indexes and `connection` are the page itself (guest
 * RAM, saved with it), and ByteRing keeps no index of its own; the host side's queued input is the console
 * back-end's (ConsoleBackState).
 */
import { ByteRing } from "./byte-ring.js";

export const XENCONS_IN_SIZE = 1024, XENCONS_OUT_SIZE = 2048;
export const XENCONS_IN = 0, XENCONS_OUT = 1024, XENCONS_IN_CONS = 3072, XENCONS_IN_PROD = 3076,
  XENCONS_OUT_CONS = 3080, XENCONS_OUT_PROD = 3084, XENCONS_CONNECTION = 3088;
/** `connection` (u8) values: the toolstack initialises DISCONNECTED, the back-end sets CONNECTED. */
export const XENCONSOLE_CONNECTED = 0, XENCONSOLE_DISCONNECTED = 1;

/** Both rings of one console page. */
export class XenconsInterface {
  /** Back-end → guest (we produce, the guest consumes). */
  readonly in: ByteRing;
  /** Guest → back-end (the guest produces, we consume). */
  readonly out: ByteRing;

  /** `pageOffset`: byte offset of the 4 KiB page in the buffer viewed by u8/i32 (hypervisor-chosen). */
  constructor(private readonly u8: Uint8Array, i32: Int32Array, private readonly pageOffset: number) {
    if (pageOffset < 0 || pageOffset + 4096 > u8.length || (pageOffset & 0xfff) !== 0) {
      throw new RangeError(`console page offset ${pageOffset} outside the buffer`);
    }
    const p = pageOffset;
    this.in = new ByteRing(u8, i32, p + XENCONS_IN, XENCONS_IN_SIZE, p + XENCONS_IN_CONS, p + XENCONS_IN_PROD);
    this.out = new ByteRing(u8, i32, p + XENCONS_OUT, XENCONS_OUT_SIZE, p + XENCONS_OUT_CONS, p + XENCONS_OUT_PROD);
  }

  set connection(v: number) { this.u8[this.pageOffset + XENCONS_CONNECTION] = v; }
  get connection(): number { return this.u8[this.pageOffset + XENCONS_CONNECTION]!; }
}
