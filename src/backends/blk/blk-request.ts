/**
 * Request parsing and segment mapping for blkback (Linux xen-blkback/blkback.c dispatch_rw_block_io,
 * xen_blkbk_parse_indirect, xen_blkbk_map): the request copied off the ring, its segment list read once (from
 * the ring entry or its indirect pages), and each segment resolved to a (buffer offset, length) run of a page
 * the guest granted us — pinned for a request that outlives the call, or through the ring's persistent grants.
 *
 * Every field is read once from the copy (the guest may rewrite its pages meanwhile) and checked: segment
 * count, first/last sector inside the page, grant with the right permission (a READ fills the guest's page so
 * it needs a writable grant, a WRITE only reads it; with persistent grants every grant, indirect pages too,
 * must be writable, as Linux maps them so), the whole range inside the disk. On a refusal everything taken for
 * the request is given back and `why` says what was wrong.
 *
 * Hot path: the scratch arrays are made once per disk; nothing is allocated per request (`why` only on errors).
 */
import type { GrantTable } from "../../xen/grant-table.js";
import { BLKIF_ENTRY_SIZE, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_INDIRECT, IND_GREFS, IND_NR_SEGMENTS, MAX_INDIRECT_SEGMENTS,
  REQ_NR_SEGMENTS, REQ_OPERATION, REQ_SECTOR, REQ_SEG, SECTOR_SHIFT, SECTOR_SIZE, SECTORS_PER_PAGE, SEGS_PER_INDIRECT_FRAME,
  SEG_FIRST, SEG_GREF, SEG_LAST, SEG_SIZE, readU64 } from "./blkif.js";
import type { PersistentGrants } from "./persistent-grants.js";
import { PGNT_FULL } from "./persistent-grants.js";

export class BlkRequest {
  /** The request being served (copied out of the ring). */
  readonly req = new Uint8Array(BLKIF_ENTRY_SIZE);
  readonly view = new DataView(this.req.buffer);
  /** Its segments as read (once) from the ring entry or the indirect pages. */
  readonly segGref = new Uint32Array(MAX_INDIRECT_SEGMENTS);
  readonly segFirst = new Uint8Array(MAX_INDIRECT_SEGMENTS);
  readonly segLast = new Uint8Array(MAX_INDIRECT_SEGMENTS);
  /** After map(): each segment's buffer offset and byte length; the first sector; the total bytes. */
  readonly segOff = new Float64Array(MAX_INDIRECT_SEGMENTS);
  readonly segLen = new Int32Array(MAX_INDIRECT_SEGMENTS);
  sector = 0;
  total = 0;
  /** After map(): grants pinned for this request only (`pins[base…base+npins)`, writable when pinWrite). */
  npins = 0;
  pinWrite = false;
  /** After map(): persistent entries this request uses (`pents[base…base+npents)`). */
  npents = 0;
  /** Why the last load()/map() refused the request. */
  why = "";

  constructor(private readonly gnttab: GrantTable, private readonly u8: Uint8Array, private readonly backendDom: number) {}

  get op(): number { return this.req[REQ_OPERATION]!; }

  /**
   * Reads the segment list into segGref/segFirst/segLast: 1..11 from the ring entry, or for BLKIF_OP_INDIRECT
   * 1..MAX_INDIRECT_SEGMENTS from its indirect pages (512 per page; each a grant to us, read-only enough
   * unless persistent grants are in use). Returns the count, or -1 (see `why`).
   */
  load(pgnt: PersistentGrants | null): number {
    const req = this.req, dv = this.view;
    if (req[REQ_OPERATION] !== BLKIF_OP_INDIRECT) {
      const nseg = req[REQ_NR_SEGMENTS]!;
      if (nseg === 0 || nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST) return this.refuse(`bad number of segments ${nseg}`);
      for (let i = 0; i < nseg; i++) {
        const s = REQ_SEG + i * SEG_SIZE;
        this.segGref[i] = dv.getUint32(s + SEG_GREF, true);
        this.segFirst[i] = req[s + SEG_FIRST]!;
        this.segLast[i] = req[s + SEG_LAST]!;
      }
      return nseg;
    }
    const nseg = dv.getUint16(IND_NR_SEGMENTS, true);
    if (nseg === 0 || nseg > MAX_INDIRECT_SEGMENTS) return this.refuse(`bad number of indirect segments ${nseg}`);
    const u8 = this.u8;
    for (let p = 0, i = 0; i < nseg; p++) {
      const gref = dv.getUint32(IND_GREFS + p * 4, true);
      // Read now, whole, so no pin outlives this call: a persistent grant stays kept, any other is looked up.
      let page: number, entry = -1;
      if (pgnt === null) page = this.gnttab.grantedPage(gref, this.backendDom, false);
      else {
        page = pgnt.use(gref);
        if (page === PGNT_FULL) page = this.gnttab.grantedPage(gref, this.backendDom, true);
        else if (page >= 0) entry = pgnt.entry;
      }
      if (page < 0) return this.refuse(`indirect page ${p}: grant ${gref}: status ${page}`);
      // Safe: `page` is a whole granted frame inside the domain's RAM; k < 512 keeps e + 8 within it.
      for (let k = 0; k < SEGS_PER_INDIRECT_FRAME && i < nseg; k++, i++) {
        const e = page + k * SEG_SIZE;
        this.segGref[i] = (u8[e]! | (u8[e + 1]! << 8) | (u8[e + 2]! << 16) | (u8[e + 3]! << 24)) >>> 0;
        this.segFirst[i] = u8[e + SEG_FIRST]!;
        this.segLast[i] = u8[e + SEG_LAST]!;
      }
      if (entry >= 0) pgnt!.put(entry);
    }
    return nseg;
  }

  /**
   * Maps the `nseg` loaded segments of a READ (write = false) or WRITE: each to segOff/segLen, sector and
   * total set, the range checked against `sectors`. `hold`: the pages are used after this call returns (the
   * I/O thread), so grants are pinned — through `pgnt` when persistent grants are in use, else for this
   * request in pins[base…] — and the caller releases them with release() when done; without `hold` (and
   * without persistent grants) pages are only looked up. Returns true, or false with everything released.
   */
  map(nseg: number, write: boolean, sectors: number, pgnt: PersistentGrants | null, hold: boolean,
    pins: Uint32Array, pents: Uint16Array, base: number): boolean {
    const gnttab = this.gnttab;
    // Persistent grants are mapped writable whatever the operation (Linux: GNTMAP_host_map without readonly).
    const pinWrite = pgnt !== null || !write;
    this.npins = 0;
    this.npents = 0;
    this.pinWrite = pinWrite;
    let total = 0;
    for (let i = 0; i < nseg; i++) {
      const first = this.segFirst[i]!, last = this.segLast[i]!;
      if (last >= SECTORS_PER_PAGE || last < first) return this.unmap(pgnt, pins, pents, base, `segment ${i}: sectors ${first}..${last}`);
      const gref = this.segGref[i]!;
      let page: number;
      if (pgnt !== null) {
        page = pgnt.use(gref);
        if (page === PGNT_FULL) {
          page = gnttab.pin(gref, this.backendDom, true);
          if (page >= 0) pins[base + this.npins++] = gref;
        } else if (page >= 0) pents[base + this.npents++] = pgnt.entry;
      } else if (hold) {
        page = gnttab.pin(gref, this.backendDom, pinWrite);
        if (page >= 0) pins[base + this.npins++] = gref;
      } else page = gnttab.grantedPage(gref, this.backendDom, pinWrite);
      if (page < 0) return this.unmap(pgnt, pins, pents, base, `segment ${i}: grant ${gref}: status ${page}`);
      this.segOff[i] = page + first * SECTOR_SIZE;
      this.segLen[i] = (last - first + 1) * SECTOR_SIZE;
      total += this.segLen[i]!;
    }
    const sector = readU64(this.view, REQ_SECTOR);
    if (!(sector + total / SECTOR_SIZE <= sectors)) return this.unmap(pgnt, pins, pents, base, `sectors ${sector}+${total >> SECTOR_SHIFT} beyond the disk`);
    this.sector = sector;
    this.total = total;
    return true;
  }

  /** Gives back what map() took for this request (pins[base…base+npins), pents[base…base+npents)). */
  release(pgnt: PersistentGrants | null, pins: Uint32Array, pents: Uint16Array, base: number): void {
    releaseGrants(this.gnttab, pgnt, pins, this.npins, this.pinWrite, pents, this.npents, base);
    this.npins = 0;
    this.npents = 0;
  }

  /** map() refuses: gives back what it took, says why; false. */
  private unmap(pgnt: PersistentGrants | null, pins: Uint32Array, pents: Uint16Array, base: number, why: string): boolean {
    this.release(pgnt, pins, pents, base);
    this.why = why;
    return false;
  }

  private refuse(why: string): number {
    this.why = why;
    return -1;
  }
}

/** Unpins a request's own pins and puts back its persistent entries (at completion or refusal). */
export function releaseGrants(gnttab: GrantTable, pgnt: PersistentGrants | null, pins: Uint32Array, npins: number, pinWrite: boolean,
  pents: Uint16Array, npents: number, base: number): void {
  for (let i = 0; i < npins; i++) gnttab.unpin(pins[base + i]!, pinWrite);
  if (pgnt !== null) for (let i = 0; i < npents; i++) pgnt.put(pents[base + i]!);
}
