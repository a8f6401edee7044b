/**
 * A CFI parallel NOR flash bank with the Intel/Sharp command set (CFI primary command set 0x0001; Intel
 * "3 Volt Intel StrataFlash / P30" datasheets, JEDEC JESD68 "Common Flash Interface"), as QEMU's virt board
 * has two of at physical 0 (hw/block/pflash_cfi01.c: 64 MiB banks, 256 KiB sectors, a 32-bit bank of two
 * interleaved x16 devices, manufacturer 0x89, device 0x18): the firmware's code and its variable store. EDK2's
 * NOR flash driver (ArmPlatformPkg NorFlashDxe, OvmfPkg VirtNorFlashDxe in later releases) drives it with READ ARRAY, READ STATUS, CLEAR STATUS, READ ID (block lock status), BLOCK
 * LOCK/UNLOCK, BLOCK ERASE, WORD PROGRAM and BUFFERED PROGRAM.
 *
 * ROMD: in read-array mode the bank's bytes are ordinary memory to the CPU (the board maps `bytes` — a view of
 * the domain memory — for reads and instruction fetches, so firmware executes in place); every write comes here
 * as MMIO. A command that changes what reads return (status, ID, CFI query) turns ROMD off — the board then
 * sends reads here too — and READ ARRAY turns it back on (onModeChange; QEMU's memory_region_rom_device_set_romd).
 *
 * Commands are taken from the low byte of the value written (both devices of the bank get the same command
 * from software that writes it to each 16-bit half, as EDK2 does); status, ID and CFI answers are replicated
 * in each device's half of a wider read, as two devices side by side answer. Programming only clears bits
 * (NOR: 1 → 0; erase sets a sector back to 0xff); a read-only bank (the firmware code) refuses program and
 * erase with the status error bits, changing nothing.
 */
import type { MmioDevice } from "../mmio.js";
import { reg64, type DtNode } from "../dt.js";

/** Intel command codes (first cycle). */
export const CMD_READ_ARRAY = 0xff, CMD_READ_ARRAY_ALT = 0x00, CMD_READ_STATUS = 0x70, CMD_CLEAR_STATUS = 0x50,
  CMD_READ_ID = 0x90, CMD_CFI_QUERY = 0x98, CMD_PROGRAM = 0x40, CMD_PROGRAM_ALT = 0x10, CMD_BUFFERED_PROGRAM = 0xe8,
  CMD_BLOCK_ERASE = 0x20, CMD_LOCK_SETUP = 0x60, CMD_CONFIRM = 0xd0, CMD_LOCK_BLOCK = 0x01, CMD_SUSPEND = 0xb0;
/** Status register bits (SR.7 ready, SR.5 erase error, SR.4 program error, SR.1 block locked). */
export const SR_READY = 0x80, SR_ERASE_ERR = 0x20, SR_PROGRAM_ERR = 0x10, SR_LOCKED = 0x02;
/** Both error bits together mean an improper command sequence (Intel: SR.4 and SR.5 set). */
const SR_SEQUENCE_ERR = SR_ERASE_ERR | SR_PROGRAM_ERR;

export interface CfiFlashOptions {
  /** The bank's contents (erased bytes are 0xff); its length is the bank size. */
  bytes: Uint8Array;
  /** Erase sector of the bank in bytes (QEMU virt: 256 KiB). */
  sectorSize: number;
  /** Bytes per bank access (4) and per device (2): the bank is bankWidth/deviceWidth interleaved devices. */
  bankWidth?: number;
  deviceWidth?: number;
  readOnly: boolean;
  /** Manufacturer and device codes (QEMU virt: 0x89, 0x18). */
  ids?: [number, number];
  /** ROMD switched: true = reads may bypass the device (read-array mode). */
  onModeChange?: (romd: boolean) => void;
  /** Bytes [offset, offset+length) changed (programmed or erased): persist them, drop decoded code there. */
  onChange?: (offset: number, length: number) => void;
}

/** Read modes. */
const M_ARRAY = 0, M_STATUS = 1, M_ID = 2, M_CFI = 3;
/** Write-cycle states after a first cycle that needs more. */
const W_IDLE = 0, W_PROGRAM = 1, W_ERASE = 2, W_LOCK = 3, W_BUF_COUNT = 4, W_BUF_DATA = 5, W_BUF_CONFIRM = 6;
/** Bytes of write buffer per device (CFI 0x2A = 11: 2 KiB, QEMU's value). */
const WRITE_BUFFER_BITS = 11;

export class CfiFlash implements MmioDevice {
  readonly size: number;
  readonly bytes: Uint8Array;
  private readonly sectorSize: number;
  private readonly bankWidth: number;
  private readonly deviceWidth: number;
  private readonly devices: number;
  private readonly readOnly: boolean;
  private readonly ids: [number, number];
  private readonly cfi: Uint8Array;
  private readonly locked: Uint8Array;
  private mode = M_ARRAY;
  private wstate = W_IDLE;
  private status = SR_READY;
  /** Buffered program: the address it started at, words still expected, and the staged writes. */
  private bufCount = 0;
  private bufN = 0;
  private readonly bufOff: Float64Array;
  private readonly bufVal: Uint32Array;
  private readonly bufSize: Uint8Array;
  private readonly onModeChange: (romd: boolean) => void;
  private readonly onChange: (offset: number, length: number) => void;
  /** Counts for tests and diagnostics. */
  readonly stats = { erases: 0, programs: 0, refused: 0, badSequences: 0 };

  constructor(o: CfiFlashOptions) {
    this.bytes = o.bytes;
    this.size = o.bytes.length;
    this.sectorSize = o.sectorSize;
    this.bankWidth = o.bankWidth ?? 4;
    this.deviceWidth = o.deviceWidth ?? 2;
    this.devices = this.bankWidth / this.deviceWidth;
    if (!Number.isInteger(this.devices) || this.devices < 1 || this.size % o.sectorSize !== 0 || (o.sectorSize & (o.sectorSize - 1)) !== 0) {
      throw new RangeError(`cfi-flash: bank of ${this.size} bytes, sector ${o.sectorSize}, width ${this.bankWidth}/${this.deviceWidth} is not a valid geometry`);
    }
    this.readOnly = o.readOnly;
    this.ids = o.ids ?? [0x89, 0x18];
    this.onModeChange = o.onModeChange ?? (() => {});
    this.onChange = o.onChange ?? (() => {});
    this.locked = new Uint8Array(this.size / o.sectorSize);
    this.cfi = this.cfiTable();
    // The most writes one buffered program can stage: the buffer bytes of all devices, in the smallest accesses.
    const maxWrites = (1 << WRITE_BUFFER_BITS) * this.devices;
    this.bufOff = new Float64Array(maxWrites);
    this.bufVal = new Uint32Array(maxWrites);
    this.bufSize = new Uint8Array(maxWrites);
  }

  /** In read-array mode (reads may bypass the device). */
  get romd(): boolean { return this.mode === M_ARRAY; }

  /**
   * The CFI query table of one device (JESD68 / Intel P30 datasheet "CFI"), indexed by the query offset in
   * device words; QEMU's pflash_cfi01 fills the same fields.
   */
  private cfiTable(): Uint8Array {
    const t = new Uint8Array(0x40);
    const deviceBytes = this.size / this.devices, sectorPerDevice = this.sectorSize / this.devices;
    const blocks = this.size / this.sectorSize;
    t.set([0x51, 0x52, 0x59], 0x10);           // "QRY"
    t.set([0x01, 0x00, 0x31, 0x00], 0x13);     // primary command set 0x0001 (Intel/Sharp), its extended table at 0x31
    t.set([0x00, 0x00, 0x00, 0x00], 0x17);     // no alternate command set
    t.set([0x45, 0x55, 0x00, 0x00], 0x1b);     // Vcc 4.5-5.5 V, no Vpp
    t.set([0x07, 0x07, 0x0a, 0x00], 0x1f);     // typical timeouts: word program 2^7 us, buffer 2^7 us, block erase 2^10 ms, no chip erase
    t.set([0x04, 0x04, 0x04, 0x00], 0x23);     // maximum timeouts: 2^4 times typical
    t[0x27] = Math.log2(deviceBytes);          // device size 2^n bytes
    t.set([0x02, 0x00], 0x28);                 // x8/x16 interface
    t.set([WRITE_BUFFER_BITS, 0x00], 0x2a);    // write buffer 2^n bytes per device
    t[0x2c] = 1;                               // one erase block region:
    t.set([(blocks - 1) & 0xff, (blocks - 1) >> 8], 0x2d); // blocks - 1
    t.set([(sectorPerDevice >> 8) & 0xff, sectorPerDevice >> 16], 0x2f); // block size / 256
    t.set([0x50, 0x52, 0x49, 0x31, 0x30], 0x31); // "PRI", version 1.0
    return t;
  }

  /** A device answer (status, ID, CFI byte) replicated into each device's lanes of a `size`-byte read. */
  private replicate(v: number, size: number): number {
    if (size <= this.deviceWidth) return v;
    let r = 0;
    for (let s = 0; s < size * 8; s += this.deviceWidth * 8) r |= v << s;
    return size === 8 ? r : r >>> 0;
  }

  /** Query offset in device words: bank address / bank width (each device sees the address without the lane bits). */
  private queryIndex(offset: number): number {
    return Math.floor(offset / this.bankWidth);
  }

  read(offset: number, size: number): number {
    switch (this.mode) {
      case M_STATUS:
        return this.replicate(this.status, size);
      case M_ID: {
        // Intel READ IDENTIFIER: word 0 manufacturer, 1 device, 2 the lock status of the addressed block.
        const i = this.queryIndex(offset) & 0xff;
        const v = i === 0 ? this.ids[0] : i === 1 ? this.ids[1] : i === 2 ? this.locked[Math.floor(offset / this.sectorSize)]! : 0;
        return this.replicate(v, size);
      }
      case M_CFI: {
        const i = this.queryIndex(offset);
        return this.replicate(i < this.cfi.length ? this.cfi[i]! : 0, size);
      }
      default: {
        // Read array (a read that reached the device anyway): the bytes, little-endian.
        const b = this.bytes;
        let v = 0;
        for (let k = Math.min(size, 4) - 1; k >= 0; k--) v = (v << 8) | b[offset + k]!;
        return v >>> 0;
      }
    }
  }

  write(offset: number, size: number, value: number, _hi: number): void {
    switch (this.wstate) {
      case W_PROGRAM:
        this.wstate = W_IDLE;
        this.program(offset, size, value);
        return;
      case W_ERASE:
        this.wstate = W_IDLE;
        if ((value & 0xff) === CMD_CONFIRM) this.erase(offset);
        else this.badSequence();
        return;
      case W_LOCK:
        this.wstate = W_IDLE;
        if ((value & 0xff) === CMD_CONFIRM) this.locked[Math.floor(offset / this.sectorSize)] = 0;
        else if ((value & 0xff) === CMD_LOCK_BLOCK) this.locked[Math.floor(offset / this.sectorSize)] = 1;
        else this.badSequence();
        this.setMode(M_STATUS);
        return;
      case W_BUF_COUNT: {
        // The word count - 1, per device (the low device's lane).
        const n = (value & (2 ** (this.deviceWidth * 8) - 1)) + 1;
        if (n * this.deviceWidth > 1 << WRITE_BUFFER_BITS) { this.wstate = W_IDLE; this.badSequence(); return; }
        this.bufCount = n;
        this.bufN = 0;
        this.wstate = W_BUF_DATA;
        return;
      }
      case W_BUF_DATA:
        if (this.bufN < this.bufOff.length) {
          this.bufOff[this.bufN] = offset; this.bufVal[this.bufN] = value >>> 0; this.bufSize[this.bufN] = Math.min(size, 4);
          this.bufN++;
        }
        // Each write is one word of the count (a bank-wide write carries that word for every device; the
        // router splits wider accesses into 4-byte ones).
        this.bufCount--;
        if (this.bufCount <= 0) this.wstate = W_BUF_CONFIRM;
        return;
      case W_BUF_CONFIRM:
        this.wstate = W_IDLE;
        if ((value & 0xff) === CMD_CONFIRM) this.commitBuffer();
        else this.badSequence();
        return;
      default:
        this.command(offset, value & 0xff);
    }
  }

  /** A first-cycle command. */
  private command(_offset: number, cmd: number): void {
    switch (cmd) {
      case CMD_READ_ARRAY:
      case CMD_READ_ARRAY_ALT:
        this.setMode(M_ARRAY);
        return;
      case CMD_READ_STATUS:
        this.setMode(M_STATUS);
        return;
      case CMD_CLEAR_STATUS:
        this.status = SR_READY;
        return;
      case CMD_READ_ID:
        this.setMode(M_ID);
        return;
      case CMD_CFI_QUERY:
        this.setMode(M_CFI);
        return;
      case CMD_PROGRAM:
      case CMD_PROGRAM_ALT:
        this.wstate = W_PROGRAM;
        this.setMode(M_STATUS);
        return;
      case CMD_BLOCK_ERASE:
        this.wstate = W_ERASE;
        this.setMode(M_STATUS);
        return;
      case CMD_LOCK_SETUP:
        this.wstate = W_LOCK;
        this.setMode(M_STATUS);
        return;
      case CMD_BUFFERED_PROGRAM:
        // The buffer is available at once (status ready: the extended status XSR.7 the software polls).
        this.wstate = W_BUF_COUNT;
        this.setMode(M_STATUS);
        return;
      case CMD_SUSPEND:
      case CMD_CONFIRM:
        // Suspend/resume: nothing is ever in progress here (every operation completes at once).
        return;
      default:
        // An unknown command: the device goes back to reading the array (QEMU does the same).
        this.setMode(M_ARRAY);
    }
  }

  private setMode(m: number): void {
    const was = this.mode === M_ARRAY;
    this.mode = m;
    if (was !== (m === M_ARRAY)) this.onModeChange(m === M_ARRAY);
  }

  private badSequence(): void {
    this.stats.badSequences++;
    this.status |= SR_SEQUENCE_ERR;
    this.setMode(M_STATUS);
  }

  /** Whether [offset, offset+len) may be changed; sets the status error bits (err) when not. */
  private writable(offset: number, len: number, err: number): boolean {
    if (offset < 0 || offset + len > this.size) { this.status |= err; return false; }
    if (this.readOnly) { this.stats.refused++; this.status |= err; return false; }
    const first = Math.floor(offset / this.sectorSize), last = Math.floor((offset + len - 1) / this.sectorSize);
    for (let s = first; s <= last; s++) {
      if (this.locked[s] !== 0) { this.stats.refused++; this.status |= err | SR_LOCKED; return false; }
    }
    return true;
  }

  /** Programs `size` bytes of `value` at `offset`: bits can only go from 1 to 0. */
  private program(offset: number, size: number, value: number): void {
    const n = Math.min(size, 4);
    if (this.writable(offset, n, SR_PROGRAM_ERR)) {
      this.andBytes(offset, n, value);
      this.stats.programs++;
      this.onChange(offset, n);
    }
    this.status |= SR_READY;
  }

  private andBytes(offset: number, n: number, value: number): void {
    for (let k = 0; k < n; k++) this.bytes[offset + k] = this.bytes[offset + k]! & ((value >>> (8 * k)) & 0xff);
  }

  private commitBuffer(): void {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < this.bufN; i++) {
      lo = Math.min(lo, this.bufOff[i]!); hi = Math.max(hi, this.bufOff[i]! + this.bufSize[i]!);
    }
    if (this.bufN > 0 && this.writable(lo, hi - lo, SR_PROGRAM_ERR)) {
      for (let i = 0; i < this.bufN; i++) this.andBytes(this.bufOff[i]!, this.bufSize[i]!, this.bufVal[i]!);
      this.stats.programs++;
      this.onChange(lo, hi - lo);
    }
    this.bufN = 0;
    this.status |= SR_READY;
    this.setMode(M_STATUS);
  }

  private erase(offset: number): void {
    const start = offset - (offset % this.sectorSize);
    if (this.writable(start, this.sectorSize, SR_ERASE_ERR)) {
      this.bytes.fill(0xff, start, start + this.sectorSize);
      this.stats.erases++;
      this.onChange(start, this.sectorSize);
    }
    this.status |= SR_READY;
    this.setMode(M_STATUS);
  }
}

/** A device tree node for flash banks side by side from `base` (QEMU virt: one node, a reg entry per bank). */
export function cfiFlashDtNode(base: number, bankBytes: number, banks: number, bankWidth = 4): DtNode {
  const reg: number[] = [];
  for (let k = 0; k < banks; k++) reg.push(...reg64(base + k * bankBytes, bankBytes));
  return { name: `flash@${base.toString(16)}`, props: { compatible: "cfi-flash", reg, "bank-width": [bankWidth] } };
}
