/**
 * xentop's I/O columns for one domain, summed over its devices from blkback's and netback's own counters
 * (src/backends/blk BlkBackStats, src/backends/net NetBackStats), as Xen's libxenstat sums a domain's vbds
 * (/sys/.../statistics/{oo,rd,wr}_req, {rd,wr}_sect of Linux blkback) and vifs (/proc/net/dev of vifD.N).
 *
 * The domain's worker thread writes them after every slice into the stats words it shares with the host
 * (vm-worker.ts STAT_IO: Float64, so no allocation and no message); the host reads them for `list`. The
 * back-ends' counters are part of their saved state, so the sums survive a move to another thread.
 */
import type { DomainIo } from "./protocol.js";

/** Offsets from STAT_IO (vm-worker.ts) of each figure. */
export const IO_VBD_OO = 0, IO_VBD_RD = 1, IO_VBD_WR = 2, IO_VBD_RSECT = 3, IO_VBD_WSECT = 4, IO_NET_TX = 5, IO_NET_RX = 6;
/** Packets (netback's frames), for the API's history (src/api/rrd.ts); within vm-worker.ts's STAT_WORDS. */
export const IO_NET_TX_PKTS = 7, IO_NET_RX_PKTS = 8;
export const IO_WORDS = 9;
/**
 * Then, per device (the API's per-VBD and per-VIF history), up to IO_DEV_MAX of them, IO_DEV_WORDS each: a tag
 * (vbd: devid + 1; vif: -(devid + 1); 0: no device) and four counters (vbd: read and write requests, bytes read
 * and written; vif: packets and bytes sent, packets and bytes received, from the guest's side).
 */
export const IO_DEV_MAX = 8, IO_DEV_WORDS = 5;
/** All the words publishIo writes from `at` (vm-worker.ts STAT_WORDS leaves room for them). */
export const IO_ALL_WORDS = IO_WORDS + IO_DEV_MAX * IO_DEV_WORDS;
/** blkif's sector: 512 bytes whatever the disk's (xen/include/public/io/blkif.h). */
const SECTOR = 512;

/** The counters io-stats reads from a blkback (a subset of BlkBackStats). */
export interface BlkCounters { outOfRequests: number; reads: number; writes: number; bytesRead: number; bytesWritten: number }
/** The counters io-stats reads from a netback (a subset of NetBackStats): from the guest's side, as xentop. */
export interface NetCounters { txBytes: number; rxBytes: number; txFrames: number; rxFrames: number }

/** A back-end as io-stats sees it: its counters and its device id (BlkBack, NetBack). */
interface Counted<C> { stats: C; device: { devid: number } }

/** Writes the sums over `blk` and `net`, then each device's own, at out[at .. at + IO_ALL_WORDS). Plain loops: runs after every slice. */
export function publishIo(blk: readonly Counted<BlkCounters>[], net: readonly Counted<NetCounters>[], out: Float64Array, at: number): void {
  let oo = 0, rd = 0, wr = 0, rb = 0, wb = 0, tx = 0, rx = 0, txp = 0, rxp = 0;
  for (let i = 0; i < blk.length; i++) {
    const s = blk[i]!.stats;
    oo += s.outOfRequests; rd += s.reads; wr += s.writes; rb += s.bytesRead; wb += s.bytesWritten;
  }
  for (let i = 0; i < net.length; i++) { const s = net[i]!.stats; tx += s.txBytes; rx += s.rxBytes; txp += s.txFrames; rxp += s.rxFrames; }
  out[at + IO_VBD_OO] = oo; out[at + IO_VBD_RD] = rd; out[at + IO_VBD_WR] = wr;
  out[at + IO_VBD_RSECT] = Math.floor(rb / SECTOR); out[at + IO_VBD_WSECT] = Math.floor(wb / SECTOR);
  out[at + IO_NET_TX] = tx; out[at + IO_NET_RX] = rx;
  out[at + IO_NET_TX_PKTS] = txp; out[at + IO_NET_RX_PKTS] = rxp;
  let o = at + IO_WORDS, k = 0;
  for (let i = 0; i < blk.length && k < IO_DEV_MAX; i++, k++, o += IO_DEV_WORDS) {
    const b = blk[i]!, s = b.stats;
    out[o] = b.device.devid + 1; out[o + 1] = s.reads; out[o + 2] = s.writes; out[o + 3] = s.bytesRead; out[o + 4] = s.bytesWritten;
  }
  for (let i = 0; i < net.length && k < IO_DEV_MAX; i++, k++, o += IO_DEV_WORDS) {
    const n = net[i]!, s = n.stats;
    out[o] = -(n.device.devid + 1); out[o + 1] = s.txFrames; out[o + 2] = s.txBytes; out[o + 3] = s.rxFrames; out[o + 4] = s.rxBytes;
  }
  for (; k < IO_DEV_MAX; k++, o += IO_DEV_WORDS) out[o] = 0;
}

/** The figures published at `at`, for DomainInfo.io. */
export function readIo(stats: Float64Array, at: number): DomainIo {
  const io: DomainIo = {
    vbdOo: stats[at + IO_VBD_OO]!, vbdRd: stats[at + IO_VBD_RD]!, vbdWr: stats[at + IO_VBD_WR]!,
    vbdRsect: stats[at + IO_VBD_RSECT]!, vbdWsect: stats[at + IO_VBD_WSECT]!,
    netTxBytes: stats[at + IO_NET_TX]!, netRxBytes: stats[at + IO_NET_RX]!,
    netTxPackets: stats[at + IO_NET_TX_PKTS]!, netRxPackets: stats[at + IO_NET_RX_PKTS]!,
    vbds: [], vifs: [],
  };
  for (let k = 0, o = at + IO_WORDS; k < IO_DEV_MAX; k++, o += IO_DEV_WORDS) {
    const tag = stats[o]!;
    if (tag > 0) io.vbds!.push({ devid: tag - 1, reads: stats[o + 1]!, writes: stats[o + 2]!, readBytes: stats[o + 3]!, writeBytes: stats[o + 4]! });
    else if (tag < 0) io.vifs!.push({ devid: -tag - 1, txPackets: stats[o + 1]!, txBytes: stats[o + 2]!, rxPackets: stats[o + 3]!, rxBytes: stats[o + 4]! });
  }
  return io;
}
