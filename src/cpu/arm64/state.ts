/**
 * Layout of an AArch64 vCPU's architectural state: one fixed block of VCPU_STATE_BYTES per vCPU, which the
 * board places in the domain's shared WebAssembly.Memory next to guest RAM (src/machine/board.ts), so a
 * context can be copied, saved, or moved to another thread, and generated code can address it directly. The
 * interpreter works on it through typed-array views (Cpu.r, Cpu.v*, Cpu.sys).
 *
 * The block (byte offsets; little-endian; 64-bit values as lo, hi 32-bit words):
 *   0x000  r       Int32 x 72: the general-purpose file below
 *   0x200  V       32 x 16 bytes: V0..V31
 *   0x400  PSTATE  Int32 x 16 at PS_* (NZCV, DAIF, EL, SPSel, FPCR, FPSR, the exclusive monitor, the event
 *                  register, PSTATE.IL). The interpreter keeps these in Cpu fields while it runs and writes
 *                  them here when run() returns (Cpu.storePstate); Cpu.loadPstate reads them back (restore).
 *                  The exclusive monitor is the exception: Cpu.exclOff … read and write these words directly,
 *                  because compiled exclusives (jit/translate.ts) use them too.
 *   0x7f8  scratch one word the MMU's single-copy atomic doubleword loads leave a high word in (src/mmu/
 *                  atomic64.ts; not state: never saved)
 *   0x800  sys     Int32 x SYS_SLOTS: system registers at the slots of sysregs.ts (a saved state keys them by
 *                  encoding instead, vcpu-state.ts, so this order may change between builds)
 *

 * General-purpose file `r` (Int32Array, two slots per 64-bit register: lo at 2n, hi at 2n+1):
 *   slots 0..30  X0..X30
 *   slot  31     XZR: always zero (writers skip d = 31; see setX)
 *   slot  32     SP of the current exception level / SPSel (the "live" SP)
 *   slot  33     PC: the address of the instruction being executed
 *   slot  34     SP_EL0 bank, slot 35 SP_EL1 bank (valid while not live)
 *
 * Vector file: 32 x 128-bit V registers in one 512-byte buffer with i32/f32/f64/u8/u16 views (little-endian
 * host assumed, as on x86-64 and arm64 hosts): Vn's byte k is vu8[16n + k]; Dn is vf64[2n]; Sn is vf32[4n].
 */
export const SP = 32;
export const PC = 33;
export const SP_EL0 = 34;
export const SP_EL1 = 35;
/** Slot index (into r, already doubled) of register n where 31 means SP. */
export const SP2 = SP * 2;
export const PC2 = PC * 2;
export const R_SLOTS = 36 * 2;

/** Bytes of one vCPU's state block (a multiple of 4 KiB) and the offsets of its parts. */
export const VCPU_STATE_BYTES = 0x1000;
export const ST_R = 0x000, ST_V = 0x200, ST_PSTATE = 0x400, ST_SCRATCH = 0x7f8, ST_SYS = 0x800;
/** Int32 word indices in the PSTATE area. */
export const PS_NZCV = 0, PS_DAIF = 1, PS_EL = 2, PS_SPSEL = 3, PS_FPCR = 4, PS_FPSR = 5, PS_EXCL_OFF = 6,
  PS_EXCL_SIZE = 7, PS_EXCL_LO = 8, PS_EXCL_HI = 9, PS_EVENT = 10, PS_IL = 11, PS_WORDS = 16;
/**
 * Scratch words of compiled code (not state, never saved; src/cpu/arm64/jit): a slow-path load's high word, and
 * the stop word (bit 0: stop chaining blocks — an interrupt line moved or code was written; bit 1, STOP_FAULT: a
 * slow path faulted), set by slow paths and cleared by the run loop.
 */
export const PS_JIT_HI = 12, PS_JIT_STOP = 13;
/**
 * The exclusive monitor's second doubleword after a 128-bit LDXP (the first is PS_EXCL_LO/HI): what STXP of two
 * X registers compares the high half with. Kept with the rest of the monitor (one doubleword, 8-aligned) so
 * compiled pairs (jit/translate.ts) use it too; not saved (vcpu-state.ts saves the first doubleword only).
 */
export const PS_EXCL_PAIR = 14;

/** NZCV as a 4-bit number in Cpu.nzcv. */
export const N = 8, Z = 4, C = 2, V = 1;

/** DAIF as a 4-bit number in Cpu.daif (D=8, A=4, I=2, F=1), i.e. PSTATE bits 9:6 shifted down by 6. */
export const DAIF_D = 8, DAIF_A = 4, DAIF_I = 2, DAIF_F = 1;

/**
 * COND[(cond << 4) | nzcv] = 1 when condition `cond` (Arm ARM C1.2.4, encodings 0..15) holds for flags nzcv.
 */
export const COND = new Uint8Array(256);
for (let cond = 0; cond < 16; cond++) {
  for (let f = 0; f < 16; f++) {
    const n = (f >> 3) & 1, z = (f >> 2) & 1, c = (f >> 1) & 1, v = f & 1;
    let r: boolean;
    switch (cond >> 1) {
      case 0: r = z === 1; break; // EQ
      case 1: r = c === 1; break; // CS
      case 2: r = n === 1; break; // MI
      case 3: r = v === 1; break; // VS
      case 4: r = c === 1 && z === 0; break; // HI
      case 5: r = n === v; break; // GE
      case 6: r = n === v && z === 0; break; // GT
      default: r = true; // AL (0b1110 and 0b1111 both "always")
    }
    if ((cond & 1) === 1 && cond !== 15) r = !r;
    COND[(cond << 4) | f] = r ? 1 : 0;
  }
}

/** Cpu.jumped values: 0 sequential; 1 branch (same translation regime); 2 context changed (re-translate PC). */
export const JUMP_BRANCH = 1, JUMP_CONTEXT = 2;
