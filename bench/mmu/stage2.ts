/**
 * What the stage-2 check costs the MMU (src/mmu/mmu.ts): the same 4-level page tables (64 MiB of 4 KiB pages)
 * translated by an Mmu without a stage-2 map and by one with the P2M's byte map set (all mapped), alternated
 * in one process. "miss": flush the TLB, then one read per page (a walk of 4 descriptors and a fill each);
 * "hit": reads of 4,096 pages already in the TLB. Prints min and median over 12 rounds.
 *
 * Run: `scripts/build.sh && node dist/bench/mmu/stage2.js`.
 */
import { Mmu } from "../../src/mmu/mmu.js";

const BASE = 0x40000000, RAM = 128 << 20, MAP = 64 << 20, PT = 96 << 20, PAGES = MAP / 4096;
const ram = new SharedArrayBuffer(RAM);
const dv = new DataView(ram);
let next = PT;
const alloc = (): number => { const a = next; next += 4096; return a; };
const root = alloc();
const w64 = (off: number, v: number): void => { dv.setUint32(off, v % 2 ** 32, true); dv.setUint32(off + 4, Math.floor(v / 2 ** 32), true); };
const r64 = (off: number): number => dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 2 ** 32;

/** Buffer offset of the level-`level` descriptor for va, making tables above it. */
function slot(va: number, level: number): number {
  let t = root;
  for (let l = 0; l < level; l++) {
    const da = t + (Math.floor(va / 2 ** (39 - 9 * l)) % 512) * 8;
    let d = r64(da);
    if ((d & 3) !== 3) { d = BASE + alloc() + 3; w64(da, d); }
    t = d - (d % 4096) - BASE;
  }
  return t + (Math.floor(va / 2 ** (39 - 9 * level)) % 512) * 8;
}
for (let p = 0; p < PAGES; p++) w64(slot(BASE + p * 4096, 3), BASE + p * 4096 + 0x403); // page, AF

function mmu(stage2: boolean): Mmu {
  const m = new Mmu(ram, BASE);
  if (stage2) m.stage2 = new Uint8Array(RAM / 4096).fill(1);
  // TCR: T0SZ = T1SZ = 16, IPS = 48 bits; MMU on.
  m.sctlr = 1; m.tcrLo = 16 | (16 << 16); m.tcrHi = 5; m.ttbr0Lo = BASE + root; m.ttbr0Hi = 0;
  m.regimeChanged(true);
  return m;
}

let sink = 0;
function miss(m: Mmu): number {
  const t = process.hrtime.bigint();
  for (let r = 0; r < 10; r++) {
    m.flushAll();
    for (let p = 0; p < PAGES; p++) sink += m.read32(BASE + p * 4096, 0);
  }
  return Number(process.hrtime.bigint() - t) / (10 * PAGES);
}
function hit(m: Mmu): number {
  const t = process.hrtime.bigint();
  for (let r = 0; r < 1000; r++) for (let p = 0; p < 4096; p++) sink += m.read32(BASE + p * 4096 + 8, 0);
  return Number(process.hrtime.bigint() - t) / (1000 * 4096);
}

const variants: [string, Mmu][] = [["no stage 2", mmu(false)], ["stage 2 map", mmu(true)]];
const res = new Map<string, number[][]>(variants.map(([n]) => [n, [[], []]]));
for (let k = 0; k < 12; k++) {
  for (const [name, m] of variants) { const r = res.get(name)!; r[0].push(miss(m)); r[1].push(hit(m)); }
}
for (const [name, [ms, hs]] of res) {
  ms.sort((a, b) => a - b); hs.sort((a, b) => a - b);
  console.log(`${name}: TLB miss ${ms[0].toFixed(1)} min / ${ms[6].toFixed(1)} median ns per access; ` +
    `hit ${hs[0].toFixed(2)} min / ${hs[6].toFixed(2)} median ns${sink === 1 ? " " : ""}`);
}
