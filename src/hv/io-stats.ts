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
/** blkif's sector: 512 bytes whatever the disk's (xen/include/public/io/blkif.h). */
const SECTOR = 512;

/** The counters io-stats reads from a blkback (a subset of BlkBackStats). */
export interface BlkCounters { outOfRequests: number; reads: number; writes: number; bytesRead: number; bytesWritten: number }
/** The counters io-stats reads from a netback (a subset of NetBackStats): from the guest's side, as xentop. */
export interface NetCounters { txBytes: number; rxBytes: number; txFrames: number; rxFrames: number }

/** Writes the sums over `blk` and `net` at out[at .. at + IO_WORDS). Plain loops: runs after every slice. */
export function publishIo(blk: readonly { stats: BlkCounters }[], net: readonly { stats: NetCounters }[], out: Float64Array, at: number): void {
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
}

/** The figures published at `at`, for DomainInfo.io. */
export function readIo(stats: Float64Array, at: number): DomainIo {
  return {
    vbdOo: stats[at + IO_VBD_OO]!, vbdRd: stats[at + IO_VBD_RD]!, vbdWr: stats[at + IO_VBD_WR]!,
    vbdRsect: stats[at + IO_VBD_RSECT]!, vbdWsect: stats[at + IO_VBD_WSECT]!,
    netTxBytes: stats[at + IO_NET_TX]!, netRxBytes: stats[at + IO_NET_RX]!,
    netTxPackets: stats[at + IO_NET_TX_PKTS]!, netRxPackets: stats[at + IO_NET_RX_PKTS]!,
  };
}
