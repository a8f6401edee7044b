/**
 * Guest RAM as a DMA-capable device sees it (fw_cfg's DMA, virtqueues): the domain's bytes, and a check that
 * turns a guest-physical range into an offset in them only when all of it is RAM. Every guest-supplied address
 * goes through offsetOf before a byte moves, so a device never reads or writes outside the guest's RAM.
 */
export interface DmaMemory {
  readonly bytes: Uint8Array;
  /** The offset of guest-physical [pa, pa+len) in `bytes`, or -1 when any of it is not RAM. */
  offsetOf(pa: number, len: number): number;
  /** bytes[offset, offset+len) were written by the device (a board drops decoded code there). */
  written?(offset: number, len: number): void;
}
