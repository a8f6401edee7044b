/** The block back-end (blkback): disk image files ↔ the guest's xen-blkfront over io/blkif.h rings. */
export { BlkBack, attachBlkBack } from "./blk-back.js";
export type { BlkBackState, BlkBackStats, BlkDiskConfig } from "./blk-back.js";
export { BlkError, DiskImage } from "./disk-image.js";
export type { BlkErrorCode } from "./disk-image.js";
export { setBlkIoDoorbell } from "./io-queue.js";
export { newBlkShareBuffer, setBlkShare } from "./io-share.js";
