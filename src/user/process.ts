/**
 * A user-mode process: loads a static AArch64 ELF into an AddressSpace, builds the initial stack (argv, envp,
 * auxv; Linux fs/binfmt_elf.c create_elf_tables), drops to EL0 through a real ERET, and stands in for the EL1
 * kernel through the CPU's onEl1 hook: system calls, demand paging, and fatal signals.
 */
import { fillRandom } from "./random.js";
import { JitEngine, soloJitMemory } from "../cpu/arm64/jit/engine.js";
import { Cpu, CodeCache, jitHot, sharedDecoder, EC_SVC, EC_DABT_LOWER, EC_IABT_LOWER, EC_UNKNOWN, EC_BRK, EC_PC_ALIGN, STOP_HALT } from "../cpu/arm64/cpu.js";
import { Mmu } from "../mmu/mmu.js";
import { ELR_EL1, ESR_EL1, FAR_EL1, SPSR_EL1, SCTLR_EL1, TCR_EL1, TTBR0_EL1, MAIR_EL1, CPACR_EL1 } from "../cpu/arm64/sysregs.js";
import { SP_EL0, PC2 } from "../cpu/arm64/state.js";
import { parseElf, PF_R, PF_W, PF_X } from "./elf.js";
import { AddressSpace, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE } from "./address-space.js";
import { Syscalls } from "./syscalls.js";
import { hex64 } from "../common/int64.js";

/** Where things go in the 47-bit user address space. */
const STACK_TOP = 0x7ffffffff000;
const STACK_SIZE = 64 * 1024 * 1024;
export const MMAP_TOP = 0x7fff00000000;
const PIE_BASE = 0x555555554000;

/** AT_* auxiliary vector tags (include/uapi/linux/auxvec.h). */
const AT_NULL = 0, AT_PHDR = 3, AT_PHENT = 4, AT_PHNUM = 5, AT_PAGESZ = 6, AT_BASE = 7, AT_FLAGS = 8,
  AT_ENTRY = 9, AT_UID = 11, AT_EUID = 12, AT_GID = 13, AT_EGID = 14, AT_PLATFORM = 15, AT_HWCAP = 16,
  AT_CLKTCK = 17, AT_SECURE = 23, AT_RANDOM = 25, AT_HWCAP2 = 26, AT_EXECFN = 31;
/** HWCAP_FP | HWCAP_ASIMD (arch/arm64/include/uapi/asm/hwcap.h): exactly what the CPU implements. */
const HWCAP = 0x3;

export interface ProcessOptions {
  memBytes: number;
  argv: string[];
  env: string[];
  execPath: string;
  image: Uint8Array;
}

/** Entries of a block before it is compiled, in the user-mode runner (see CodeCache.hot). */
const USER_HOT = 100;

export class UserProcess {
  readonly mmu: Mmu;
  readonly cpu: Cpu;
  /** The compiling engine hot code runs through (its stats: XENO_STATS=1 in run-user). */
  readonly jit: JitEngine;
  readonly as: AddressSpace;
  readonly sys: Syscalls;
  exitCode = -1;
  /** Signal that ended the process (0 if it exited). */
  signal = 0;

  readonly execPath: string;

  constructor(private readonly opts: ProcessOptions) {
    this.execPath = opts.execPath;
    // RAM, the state block and the TLB in one WebAssembly.Memory: hot code runs compiled (src/cpu/arm64/jit).
    const { memory, stateAt, tlbAt, jitAt } = soloJitMemory(opts.memBytes);
    this.mmu = new Mmu(memory.buffer, 0, undefined, opts.memBytes, tlbAt);
    this.jit = new JitEngine(memory, sharedDecoder(), false, jitAt);
    // A program's time is mostly its hot loops, unlike a kernel boot's lukewarm code: blocks compile after 100
    // entries instead of the machine's 1,000 (docs/cpu-internals.md: CoreMark-like −20 % CPU; XENO_JIT_HOT wins).
    const code = new CodeCache(this.mmu.ramSize >>> 12, this.jit, false, jitHot(USER_HOT));
    this.cpu = new Cpu(this.mmu, code, { buffer: memory.buffer, offset: stateAt });
    this.as = new AddressSpace(this.mmu);
    this.sys = new Syscalls(this);
    this.cpu.onEl1 = (c) => this.kernelEntry(c);
    this.load();
  }

  private load(): void {
    const { image, execPath } = this.opts;
    const elf = parseElf(execPath, image);
    const bias = elf.type === 3 ? PIE_BASE : 0;
    let end = 0;
    for (const s of elf.segments) {
      const start = Math.floor((s.vaddr + bias) / PAGE) * PAGE;
      const stop = Math.ceil((s.vaddr + bias + s.memsz) / PAGE) * PAGE;
      const prot = ((s.flags & PF_R) ? PROT_READ : 0) | ((s.flags & PF_W) ? PROT_WRITE : 0) | ((s.flags & PF_X) ? PROT_EXEC : 0);
      // Segments may share a boundary page: merge protections rather than dropping the earlier one's contents.
      const prev = this.as.findVma(start);
      if (prev !== undefined && prev.end > start) {
        this.as.protect(start, Math.min(prev.end, stop), prev.prot | prot);
        if (stop > prev.end) this.as.addVma(prev.end, stop, prot, "elf");
      } else this.as.addVma(start, stop, prot, "elf");
      if (!this.as.copyOut(s.vaddr + bias, image.subarray(s.offset, s.offset + s.filesz))) throw new Error("ELF load failed");
      end = Math.max(end, stop);
    }
    this.sys.setBrk(end);
    this.as.addVma(STACK_TOP - STACK_SIZE, STACK_TOP, PROT_READ | PROT_WRITE, "stack");
    const sp = this.buildStack(elf.entry + bias, elf.phdrVaddr >= 0 ? elf.phdrVaddr + bias : 0, elf.phentsize, elf.phnum);
    this.enterUser(elf.entry + bias, sp);
  }

  /** Lays out strings, then argc/argv/envp/auxv at a 16-byte aligned SP (AArch64 Linux ABI). */
  private buildStack(entry: number, phdr: number, phent: number, phnum: number): number {
    const { argv, env, execPath } = this.opts;
    let top = STACK_TOP - 16;
    const put = (bytes: Uint8Array): number => {
      top -= bytes.length;
      if (!this.as.copyOut(top, bytes)) throw new Error("stack setup failed");
      return top;
    };
    const str = (s: string): number => put(Buffer.from(s + "\0", "utf8"));
    const execfn = str(execPath);
    const platform = str("aarch64");
    const rnd = new Uint8Array(16);
    fillRandom(rnd);
    const random = put(rnd);
    const argvPtrs = argv.map(str);
    const envPtrs = env.map(str);
    const aux: [number, number][] = [
      [AT_PHDR, phdr], [AT_PHENT, phent], [AT_PHNUM, phnum], [AT_PAGESZ, PAGE], [AT_BASE, 0], [AT_FLAGS, 0],
      [AT_ENTRY, entry], [AT_UID, 0], [AT_EUID, 0], [AT_GID, 0], [AT_EGID, 0], [AT_PLATFORM, platform],
      [AT_HWCAP, HWCAP], [AT_CLKTCK, 100], [AT_SECURE, 0], [AT_RANDOM, random], [AT_HWCAP2, 0],
      [AT_EXECFN, execfn], [AT_NULL, 0],
    ];
    const words: number[] = [argv.length, ...argvPtrs, 0, ...envPtrs, 0];
    for (const [k, v] of aux) words.push(k, v);
    top = Math.floor((top - words.length * 8) / 16) * 16;
    const buf = Buffer.alloc(words.length * 8);
    words.forEach((w, k) => buf.writeBigUInt64LE(BigInt(w), k * 8));
    if (!this.as.copyOut(top, buf)) throw new Error("stack setup failed");
    return top;
  }

  /** Turns the MMU on with our page tables and ERETs to EL0 at the entry point. */
  private enterUser(entry: number, sp: number): void {
    const c = this.cpu, s = c.sys, m = this.mmu;
    // MAIR attr0 = Normal WB; TCR: T0SZ=16, EPD1 (no TTBR1 walks), TG0=4K, IPS=48-bit, AS=16-bit ASIDs, TBI0.
    const tcrLo = 16 | (1 << 23) | (16 << 16), tcrHi = 5 | (1 << 4) | (1 << 5);
    const root = this.as.rootPa;
    s[MAIR_EL1] = 0xff;
    s[TCR_EL1] = tcrLo; s[TCR_EL1 + 1] = tcrHi;
    s[TTBR0_EL1] = root | 0; s[TTBR0_EL1 + 1] = (1 << 16) | Math.floor(root / 2 ** 32); // ASID 1
    // M C SA SA0 I DZE UCT nTWI nTWE UCI + RES1 bits, as Linux sets for EL0 use (arch/arm64 INIT_SCTLR_EL1_MMU_ON):
    // EL0 may read CTR_EL0, use DC ZVA and cache maintenance, and WFI/WFE do not trap.
    s[SCTLR_EL1] = 0x34d5d81d | 0;
    s[CPACR_EL1] = 3 << 20; // FPEN: no FP/SIMD traps
    m.sctlr = s[SCTLR_EL1]; m.tcrLo = tcrLo; m.tcrHi = tcrHi;
    m.ttbr0Lo = s[TTBR0_EL1]; m.ttbr0Hi = s[TTBR0_EL1 + 1];
    m.regimeChanged(true);
    c.setBankedSp(SP_EL0, sp % 2 ** 32 | 0, Math.floor(sp / 2 ** 32));
    s[SPSR_EL1] = 0; // EL0t, DAIF clear
    s[ELR_EL1] = entry % 2 ** 32 | 0; s[ELR_EL1 + 1] = Math.floor(entry / 2 ** 32);
    c.eret();
    c.jumped = 0;
  }

  /** The onEl1 hook: ESR/ELR/FAR are set as for a real exception entry. */
  private kernelEntry(c: Cpu): void {
    const s = c.sys;
    const esr = s[ESR_EL1];
    const ec = esr >>> 26;
    // Resume at ELR (for SVC that is the next instruction) unless the handler ends the process.
    c.r[PC2] = s[ELR_EL1]; c.r[PC2 + 1] = s[ELR_EL1 + 1];
    if (ec === EC_SVC) { this.sys.dispatch(c); return; }
    if (ec === EC_DABT_LOWER || ec === EC_IABT_LOWER) {
      const fsc = esr & 0x3f;
      const far = (s[FAR_EL1 + 1] >>> 0) * 2 ** 32 + (s[FAR_EL1] >>> 0);
      const va = far % 2 ** 56; // TBI0: the tag byte is not part of the address
      if (fsc >= 4 && fsc <= 7) {
        const v = this.as.findVma(va);
        const write = (esr >>> 6) & 1;
        const ok = v !== undefined && (ec === EC_IABT_LOWER ? (v.prot & PROT_EXEC) !== 0 : write ? (v.prot & PROT_WRITE) !== 0 : (v.prot & PROT_READ) !== 0);
        if (ok && this.as.pageFor(Math.floor(va / PAGE)) >= 0) return; // populated: retry the access
      }
      this.fatal(11, `${ec === EC_IABT_LOWER ? "instruction" : "data"} abort at 0x${va.toString(16)} (FSC 0x${fsc.toString(16)})`);
      return;
    }
    if (ec === EC_UNKNOWN) {
      const pcLo = s[ELR_EL1], pcHi = s[ELR_EL1 + 1];
      let word = "?";
      try { word = (this.mmu.read32(pcLo, pcHi) >>> 0).toString(16).padStart(8, "0"); } catch { /* unreadable */ }
      this.fatal(4, `undefined instruction ${word}`);
      return;
    }
    if (ec === EC_BRK) { this.fatal(5, "BRK"); return; }
    if (ec === EC_PC_ALIGN) { this.fatal(7, "PC alignment fault"); return; }
    this.fatal(11, `unhandled exception class 0x${ec.toString(16)} (ESR 0x${(esr >>> 0).toString(16)})`);
  }

  /** Ends the process with a signal: like a kernel delivering an unhandled fatal signal. */
  fatal(sig: number, why: string): void {
    const c = this.cpu, s = c.sys;
    const names: Record<number, string> = { 4: "Illegal instruction", 5: "Trace/breakpoint trap", 6: "Aborted", 7: "Bus error", 11: "Segmentation fault" };
    process.stderr.write(`xeno: ${why} at pc ${hex64(s[ELR_EL1], s[ELR_EL1 + 1])}\n` +
      `xeno: uncaught target signal ${sig} (${names[sig] ?? "signal"})\n`);
    if (process.env.XENO_TRACE_REGS) {
      for (let k = 0; k < 31; k++) process.stderr.write(`  x${k} ${hex64(c.r[2 * k], c.r[2 * k + 1])}\n`);
    }
    this.signal = sig;
    this.exit(128 + sig);
  }

  exit(code: number): void {
    this.exitCode = code;
    this.cpu.stop = STOP_HALT;
    this.cpu.jumped = 2;
  }

  /** Runs until exit. */
  run(): number {
    const c = this.cpu;
    while (this.exitCode < 0) {
      c.run(1 << 22);
      if (c.stop === 1 || c.stop === 3) c.stop = 0; // WFI/WFE in user mode: nothing to wait for; continue
    }
    return this.exitCode;
  }
}
