/**
 * The Identify data structures an NVMe controller returns (NVMe Base 1.4c section 5.15.2): the controller's
 * (figure 247), the namespace's (figure 245) and the namespace identification descriptor list (figure 249).
 * Built once per controller; the device copies them into the host's buffer.
 */
import { PAGE } from "./nvme-defs.js";

/** What the Identify structures describe. */
export interface NvmeIdentity {
  /** Serial number (up to 20 ASCII characters). */
  serial: string;
  /** Namespace 1's size in 512-byte logical blocks. */
  blocks: number;
  readOnly: boolean;
  /** Maximum data transfer size as a power of two of pages (MDTS). */
  mdts: number;
  /** Dataset Management (deallocate) offered. */
  dsm: boolean;
  /** Volatile write cache present (Flush meaningful). */
  vwc: boolean;
}

/** PCI vendor as in Identify VID/SSVID: Red Hat (QEMU's NVMe controller is 1b36:0010). */
export const NVME_VENDOR = 0x1b36, NVME_DEVICE = 0x0010;
/** NVMe 1.4 (VS register and Identify VER). */
export const NVME_VERSION = 0x00010400;
/** Asynchronous Event Request limit (AERL, 0-based) and Abort command limit (ACL, 0-based). */
export const AERL = 3, ACL = 3;
export const MODEL = "Xeno NVMe Ctrl", FIRMWARE = "1.0";

function ascii(b: Uint8Array, at: number, len: number, s: string): void {
  // Identify strings are ASCII, space padded, not NUL terminated (section 1.5 "ASCII string").
  for (let i = 0; i < len; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x20;
    b[at + i] = c >= 0x20 && c < 0x7f ? c : 0x20;
  }
}

export function identifyController(id: NvmeIdentity, cntlid: number): Uint8Array {
  const b = new Uint8Array(PAGE), v = new DataView(b.buffer);
  v.setUint16(0, NVME_VENDOR, true);          // VID
  v.setUint16(2, 0x1af4, true);               // SSVID (as QEMU: Red Hat's virtio vendor)
  ascii(b, 4, 20, id.serial);                 // SN
  ascii(b, 24, 40, MODEL);                    // MN
  ascii(b, 64, 8, FIRMWARE);                  // FR
  b[72] = 6;                                  // RAB: arbitration burst 2^6
  b[73] = 0x00; b[74] = 0x54; b[75] = 0x52;   // IEEE OUI (QEMU's 52:54:00, little-endian)
  b[77] = id.mdts;                            // MDTS
  v.setUint16(78, cntlid, true);              // CNTLID
  v.setUint32(80, NVME_VERSION, true);        // VER
  b[111] = 1;                                 // CNTRLTYPE: I/O controller
  v.setUint16(256, 0, true);                  // OACS: no optional admin commands
  b[258] = ACL;                               // ACL
  b[259] = AERL;                              // AERL
  b[260] = 0x03;                              // FRMW: one firmware slot, slot 1 read-only
  b[261] = 0x04;                              // LPA: extended data for Get Log Page (NUMDU, LPOL/LPOU)
  b[262] = 0;                                 // ELPE: one error log entry (0-based)
  b[263] = 0;                                 // NPSS: one power state (0-based)
  v.setUint16(266, 0x157, true);              // WCTEMP 343 K
  v.setUint16(268, 0x175, true);              // CCTEMP 373 K
  b[512] = 0x66;                              // SQES: 64-byte entries, required and maximum
  b[513] = 0x44;                              // CQES: 16-byte entries
  v.setUint32(516, 1, true);                  // NN: one namespace
  v.setUint16(520, id.dsm ? 1 << 2 : 0, true); // ONCS: Dataset Management
  b[525] = 0;                                 // FNA
  b[526] = id.vwc ? 1 : 0;                    // VWC
  // SUBNQN (section 7.9): an NQN in the UUID-less "nqn.yyyy-mm.reverse-domain:" form, NUL padded.
  const nqn = `nqn.2026-12.org.xeno:nvme:${id.serial}`;
  for (let i = 0; i < nqn.length && i < 255; i++) b[768 + i] = nqn.charCodeAt(i) & 0x7f;
  // Power state 0 (figure 248): maximum power 25.00 W in centiwatts, entry/exit latencies unreported.
  v.setUint16(2048, 2500, true);
  return b;
}

export function identifyNamespace(id: NvmeIdentity): Uint8Array {
  const b = new Uint8Array(PAGE), v = new DataView(b.buffer);
  const set64 = (at: number, n: number): void => { v.setUint32(at, n >>> 0, true); v.setUint32(at + 4, Math.floor(n / 2 ** 32), true); };
  set64(0, id.blocks);   // NSZE
  set64(8, id.blocks);   // NCAP
  set64(16, id.blocks);  // NUSE
  b[24] = 0;             // NSFEAT
  b[25] = 0;             // NLBAF: one format (0-based)
  b[26] = 0;             // FLBAS: format 0
  b[33] = id.dsm ? 1 : 0; // DLFEAT: deallocated blocks read as zeros (BlockImage.discard's promise)
  b[99] = id.readOnly ? 1 : 0; // NSATTR: write protected
  // LBA format 0 (figure 246): no metadata, 2^9-byte blocks, relative performance "best".
  v.setUint32(128, 9 << 16, true);
  return b;
}

/** The namespace identification descriptor list (figure 249): one UUID (NIDT 3), derived from the serial. */
export function nsDescriptors(serial: string): Uint8Array {
  const b = new Uint8Array(PAGE);
  b[0] = 3; b[1] = 16;
  // A stable name-based identifier: FNV-1a over the serial spread over 16 bytes, marked as an RFC 4122 v5-style UUID.
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i++) {
    for (let k = 0; k < serial.length; k++) h = Math.imul(h ^ serial.charCodeAt(k) ^ i, 0x01000193) >>> 0;
    b[4 + i] = h & 0xff;
  }
  b[4 + 6] = (b[4 + 6]! & 0x0f) | 0x50;
  b[4 + 8] = (b[4 + 8]! & 0x3f) | 0x80;
  return b;
}
