/**
 * What follows guest RAM in a domain's memory (one shared WebAssembly.Memory: RAM from offset 0, then this
 * "tail"), in order, from ramBytes:
 *
 *   the state area (STATE_AREA_BYTES: vCPU state blocks, the GIC's state, the vCPU link: vcpu-link.ts)
 *   one TLB area per vCPU for the home thread's MMUs (src/mmu/mmu.ts TLB_AREA_BYTES; compiled code looks
 *     entries up there)
 *   one TLB area per vCPU 1..n-1 for the MMU of the vCPU's own thread when it runs on one (remote-vcpu.ts):
 *     the home keeps its copy of that vCPU (hypercalls, saving) with its own TLB, so neither sees the other's
 *   one compiling engine's area per vCPU (src/cpu/arm64/jit/engine.ts JIT_AREA_BYTES): area 0 is the home
 *     thread's engine, area k that of vCPU k's thread
 *
 * rounded up to a wasm page. Derived data only (nothing here is saved: docs/save-format.md keeps RAM and the
 * components' states), so a snapshot's memory is RAM + boardTailBytes(vcpus) wherever it is restored.
 */
import { TLB_AREA_BYTES } from "../mmu/mmu.js";
import { JIT_AREA_BYTES } from "../cpu/arm64/jit/engine.js";

export const WASM_PAGE = 65536;
/** The state area: one wasm page. */
export const STATE_AREA_BYTES = WASM_PAGE;

/** The home thread's TLB area for vCPU k. */
export function homeTlbAt(ramBytes: number, k: number): number {
  return ramBytes + STATE_AREA_BYTES + k * TLB_AREA_BYTES;
}

/** The TLB area of vCPU k's own thread (1 ≤ k < vcpus). */
export function threadTlbAt(ramBytes: number, vcpus: number, k: number): number {
  if (!Number.isInteger(k) || k < 1 || k >= vcpus) throw new RangeError(`threadTlbAt: vCPU ${k} has no thread of its own (1..${vcpus - 1})`);
  return ramBytes + STATE_AREA_BYTES + (vcpus + k - 1) * TLB_AREA_BYTES;
}

/** The compiling engine's area of thread k (0: the home; k ≥ 1: vCPU k's own thread). */
export function jitAreaAt(ramBytes: number, vcpus: number, k: number): number {
  return ramBytes + STATE_AREA_BYTES + (2 * vcpus - 1) * TLB_AREA_BYTES + k * JIT_AREA_BYTES;
}

/** Bytes of a domain memory after its RAM: a memory for `ramBytes` of RAM and `vcpus` vCPUs has ramBytes + this. */
export function boardTailBytes(vcpus: number): number {
  return Math.ceil((STATE_AREA_BYTES + (2 * vcpus - 1) * TLB_AREA_BYTES + vcpus * JIT_AREA_BYTES) / WASM_PAGE) * WASM_PAGE;
}
