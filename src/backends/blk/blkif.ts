/**
 * The block-device ring protocol (xen/include/public/io/blkif.h, io/ring.h) as the 64-bit layout arm64 and
 * x86_64 guests share, and the back-end half of a shared ring of 1, 2, 4, 8 or 16 pages (BACK_RING_ATTACH,
 * RING_FINAL_CHECK_FOR_REQUESTS, RING_PUSH_RESPONSES_AND_CHECK_NOTIFY).
 *
 * The ring pages are guest memory that the guest may rewrite at any moment: indexes are read once per use with
 * Atomics (other vCPUs may run in other threads), requests are copied out of the ring before they are looked
 * at (as blkback's memcpy + barrier), and every offset stays inside the granted pages whatever the indexes say.
 *
 * A multi-page ring (blkif.h "ring-page-order") is one virtually contiguous shared ring in the guest, granted
 * page by page (ring-ref0 … ring-ref<2^order - 1>); Linux maps the pages contiguously, Xeno keeps each page's
 * offset in the domain's buffer (the frames need not be adjacent). The header sits in page 0; a 112-byte
 * entry may straddle two pages and is then copied in two pieces. A 16-byte response never straddles: entries
 * start at 64 + 112·i, a multiple of 16, so a response ends at most at the page's last byte.
 */

/** blkif_request.operation (blkif.h). */
export const BLKIF_OP_READ = 0, BLKIF_OP_WRITE = 1, BLKIF_OP_WRITE_BARRIER = 2, BLKIF_OP_FLUSH_DISKCACHE = 3,
  BLKIF_OP_RESERVED_1 = 4, BLKIF_OP_DISCARD = 5, BLKIF_OP_INDIRECT = 6;
/** blkif_response.status. */
export const BLKIF_RSP_EOPNOTSUPP = -2, BLKIF_RSP_ERROR = -1, BLKIF_RSP_OKAY = 0;
export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
/** Indirect requests: at most 8 indirect pages, each holding 4096 / 8 = 512 blkif_request_segment. */
export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8, SEGS_PER_INDIRECT_FRAME = 512;
/** The most segments an indirect request may carry here (feature-max-indirect-segments; Linux blkback's value). */
export const MAX_INDIRECT_SEGMENTS = 256;
/** blkif_request_discard.flag bit 0. */
export const BLKIF_DISCARD_SECURE = 1;
/** The `info` key's VDISK_* bits. */
export const VDISK_CDROM = 0x1, VDISK_REMOVABLE = 0x2, VDISK_READONLY = 0x4;
/** Sector numbers and first/last_sect are always in 512-byte units (blkif.h "sector-size" note). */
export const SECTOR_SHIFT = 9, SECTOR_SIZE = 1 << SECTOR_SHIFT;
export const XEN_PAGE_SIZE = 4096;
export const SECTORS_PER_PAGE = XEN_PAGE_SIZE >> SECTOR_SHIFT;

/** struct blkif_sring header (ring.h DEFINE_RING_TYPES): four u32 indexes, then padding to 64 bytes. */
export const SRING_REQ_PROD = 0, SRING_REQ_EVENT = 4, SRING_RSP_PROD = 8, SRING_RSP_EVENT = 12, SRING_HEADER = 64;
/** union blkif_sring_entry: max(sizeof blkif_request 112, sizeof blkif_response 16). */
export const BLKIF_ENTRY_SIZE = 112;
/** __RING_SIZE: (4096 - 64) / 112 = 36 entries, rounded down to a power of two. */
export const BLKIF_RING_SIZE = 32;
/** Largest ring-page-order offered (max-ring-page-order; Linux's XENBUS_MAX_RING_GRANT_ORDER, 16 pages). */
export const BLKIF_MAX_RING_ORDER = 4;
/**
 * __CONST_RING_SIZE(blkif, 4096 << order): (4096·2^order - 64) / 112 rounded down to a power of two, which is
 * 32 · 2^order for orders 0..4 (36, 72, 145, 291, 584 entries before rounding).
 */
export function blkifRingSize(order: number): number { return BLKIF_RING_SIZE << order; }

/** struct blkif_request (64-bit layout): operation u8, nr_segments u8, handle u16, pad, id u64, sector u64. */
export const REQ_OPERATION = 0, REQ_NR_SEGMENTS = 1, REQ_HANDLE = 2, REQ_ID = 8, REQ_SECTOR = 16, REQ_SEG = 24;
/** struct blkif_request_segment: gref u32 @0, first_sect u8 @4, last_sect u8 @5 (8 bytes). */
export const SEG_SIZE = 8, SEG_GREF = 0, SEG_FIRST = 4, SEG_LAST = 5;
/**
 * struct blkif_request_indirect (64-bit layout): operation u8 @0 (= INDIRECT), indirect_op u8 @1 (READ or WRITE),
 * nr_segments u16 @2, id u64 @8, sector_number u64 @16, handle u16 @24, indirect_grefs u32[8] @28.
 */
export const IND_OP = 1, IND_NR_SEGMENTS = 2, IND_GREFS = 28;
/** struct blkif_request_discard: flag u8 @1, nr_sectors u64 @24 (sector_number @16 as above). */
export const DISCARD_FLAG = 1, DISCARD_NR_SECTORS = 24;
/** struct blkif_response: id u64 @0, operation u8 @8, status i16 @10 (16 bytes with padding). */
export const RSP_ID = 0, RSP_OPERATION = 8, RSP_STATUS = 10, RSP_SIZE = 16;

const TWO32 = 4294967296;

/** A little-endian u64 field of a byte array as a number; Infinity when >= 2^53 (always out of range). */
export function readU64(dv: DataView, off: number): number {
  const hi = dv.getUint32(off + 4, true);
  return hi >= 0x200000 ? Infinity : hi * TWO32 + dv.getUint32(off, true);
}

/**
 * The back-end's private ring state over one shared ring (1..16 pages): req_cons (next request to take) and
 * rsp_prod_pvt (next response slot), both free-running u32 like the guest's indexes.
 */
export class BlkBackRing {
  reqCons = 0;
  rspProdPvt = 0;
  /** Entries in the ring (32 · pages). */
  readonly size: number;
  /** Byte offset of each ring page in the buffer (page 0 holds the header). */
  readonly pages: Float64Array;
  private readonly i: number;

  /**
   * `pages`: byte offsets of the granted ring pages in the buffer viewed by u8/i32 (each 4 KiB aligned, whole
   * page inside: the caller got them from GrantTable.grantedPage), 1, 2, 4, 8 or 16 of them.
   */
  constructor(private readonly u8: Uint8Array, private readonly i32: Int32Array, pages: number | readonly number[]) {
    const list = typeof pages === "number" ? [pages] : pages;
    const order = Math.log2(list.length);
    if (!Number.isInteger(order) || order > BLKIF_MAX_RING_ORDER) throw new RangeError(`${list.length} ring pages`);
    for (const off of list) {
      if (off < 0 || (off & (XEN_PAGE_SIZE - 1)) !== 0 || off + XEN_PAGE_SIZE > u8.length) {
        throw new RangeError(`ring page offset ${off} outside the buffer`);
      }
    }
    this.pages = Float64Array.from(list);
    this.size = blkifRingSize(order);
    this.i = list[0]! >> 2;
  }

  /** Offset of page 0 (the header's). */
  get pageOffset(): number { return this.pages[0]!; }

  get reqProd(): number { return Atomics.load(this.i32, this.i + (SRING_REQ_PROD >> 2)) >>> 0; }
  get rspProd(): number { return Atomics.load(this.i32, this.i + (SRING_RSP_PROD >> 2)) >>> 0; }
  get reqEvent(): number { return Atomics.load(this.i32, this.i + (SRING_REQ_EVENT >> 2)) >>> 0; }
  get rspEvent(): number { return Atomics.load(this.i32, this.i + (SRING_RSP_EVENT >> 2)) >>> 0; }

  /**
   * BACK_RING_ATTACH at the guest's current rsp_prod (what Linux blkback does since 5.9, so a re-connected
   * ring carries on where it was). False when req_prod is more than a ring ahead of it: the guest's indexes
   * are garbage and the ring must not be used.
   */
  attach(): boolean {
    const rsp = this.rspProd;
    this.reqCons = rsp;
    this.rspProdPvt = rsp;
    return ((this.reqProd - rsp) >>> 0) <= this.size;
  }

  /**
   * Requests ready to take (RING_HAS_UNCONSUMED_REQUESTS), or -1 when the guest's req_prod runs more than a
   * ring ahead of our responses (RING_REQUEST_PROD_OVERFLOW): a misbehaving front-end.
   */
  unconsumed(): number {
    const prod = this.reqProd;
    if (((prod - this.rspProdPvt) >>> 0) > this.size) return -1;
    const req = (prod - this.reqCons) >>> 0;
    const room = this.size - ((this.reqCons - this.rspProdPvt) >>> 0);
    return Math.min(req, room);
  }

  /**
   * RING_FINAL_CHECK_FOR_REQUESTS: with nothing to do, ask for a notification at the next request
   * (req_event = req_cons + 1), then look again (a request may have landed in between). Returns as unconsumed().
   */
  finalCheck(): number {
    const n = this.unconsumed();
    if (n !== 0) return n;
    Atomics.store(this.i32, this.i + (SRING_REQ_EVENT >> 2), (this.reqCons + 1) | 0);
    return this.unconsumed();
  }

  /** Copies the request at req_cons into `dst` (BLKIF_ENTRY_SIZE bytes) and advances req_cons. */
  takeRequest(dst: Uint8Array): void {
    const v = SRING_HEADER + (this.reqCons & (this.size - 1)) * BLKIF_ENTRY_SIZE;
    const page = v >>> 12, within = v & (XEN_PAGE_SIZE - 1);
    const off = this.pages[page]! + within;
    const first = XEN_PAGE_SIZE - within;
    if (first >= BLKIF_ENTRY_SIZE) dst.set(this.u8.subarray(off, off + BLKIF_ENTRY_SIZE));
    else {
      // Straddles pages `page` and `page + 1` (< pages.length: the ring's last entry ends inside its last page).
      dst.set(this.u8.subarray(off, off + first));
      const next = this.pages[page + 1]!;
      dst.set(this.u8.subarray(next, next + BLKIF_ENTRY_SIZE - first), first);
    }
    this.reqCons = (this.reqCons + 1) >>> 0;
  }

  /**
   * Writes a response into slot rsp_prod_pvt (not yet visible to the guest): the request's id (the 8 bytes at
   * REQ_ID of `req`, echoed as is), operation `op` (the request's, or an indirect request's indirect_op, which
   * is what blkfront expects back) and `status`.
   */
  putResponse(req: Uint8Array, op: number, status: number): void {
    this.putResponseId(req, REQ_ID, op, status);
  }

  /** putResponse with the request's 8 id bytes at id[idOff, idOff+8) (kept by the back-end while in flight). */
  putResponseId(id: Uint8Array, idOff: number, op: number, status: number): void {
    const v = SRING_HEADER + (this.rspProdPvt & (this.size - 1)) * BLKIF_ENTRY_SIZE;
    // Never straddles (see the file comment): v is a multiple of 16.
    const off = this.pages[v >>> 12]! + (v & (XEN_PAGE_SIZE - 1));
    const u8 = this.u8;
    for (let i = 0; i < 8; i++) u8[off + RSP_ID + i] = id[idOff + i]!;
    u8[off + RSP_OPERATION] = op;
    u8[off + RSP_OPERATION + 1] = 0;
    u8[off + RSP_STATUS] = status & 0xff;
    u8[off + RSP_STATUS + 1] = (status >> 8) & 0xff;
    u8.fill(0, off + RSP_STATUS + 2, off + RSP_SIZE);
    this.rspProdPvt = (this.rspProdPvt + 1) >>> 0;
  }

  /**
   * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publishes rsp_prod = rsp_prod_pvt (the Atomics store orders the
   * response bytes before it) and says whether the guest asked to be notified for one of the new responses:
   * (new - rsp_event) < (new - old) in u32 arithmetic.
   */
  pushResponses(): boolean {
    const p = this.i + (SRING_RSP_PROD >> 2);
    const old = Atomics.load(this.i32, p) >>> 0;
    const now = this.rspProdPvt;
    if (old === now) return false;
    Atomics.store(this.i32, p, now | 0);
    const event = this.rspEvent;
    return ((now - event) >>> 0) < ((now - old) >>> 0);
  }
}
