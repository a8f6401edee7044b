/**
 * Pre-screening against xeno's decoder. xeno's user-mode runner has no signal delivery, so a guest's first
 * UNDEFINED instruction ends the whole binary; with a partial instruction set that would hide almost every
 * sequence. So before running, each unit's assembled words are looked up in xeno's own decode table (the compiled
 * `sharedDecoder()` in dist/, loaded dynamically, best effort): units containing a word that decodes to nothing are
 * reported as UNDEFINED failures and left out of the binaries that are actually run. Instructions whose handler
 * refuses them at run time are still caught by the run-and-restart loop (run.ts).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Sequence } from "../random-gen.js";
import { runProc } from "./run.js";

const NM = "aarch64-linux-gnu-nm", OBJCOPY = "aarch64-linux-gnu-objcopy";

export interface UnitCode { addr: number; words: number[] }

/** The address and instruction words of every unit of every sequence in `bin` (built by emitProgram from `seqs`). */
export async function unitWords(bin: string, seqs: readonly Sequence[]): Promise<UnitCode[][]> {
  const nm = await runProc(NM, [bin], { timeoutMs: 60_000 });
  if (nm.code !== 0) throw new Error(`${NM} failed: ${nm.stderr}`);
  const sym = new Map<string, number>();
  for (const line of nm.stdout.toString().split("\n")) {
    const m = /^([0-9a-f]+) \w (\S+)$/.exec(line);
    if (m) sym.set(m[2]!, parseInt(m[1]!, 16));
  }
  const textFile = bin + ".text";
  const oc = await runProc(OBJCOPY, ["-O", "binary", "-j", ".text", bin, textFile], { timeoutMs: 60_000 });
  if (oc.code !== 0) throw new Error(`${OBJCOPY} failed: ${oc.stderr}`);
  const text = readFileSync(textFile), base = sym.get("_start")!;
  return seqs.map((s, i) => {
    let addr = sym.get(`g_${i}`)!;
    const units = s.units.map((u) => {
      const code: UnitCode = { addr, words: [] };
      for (const l of u.lines) if (!l.endsWith(":")) { code.words.push(text.readUInt32LE(addr - base)); addr += 4; }
      return code;
    });
    if (addr !== sym.get(`e_${i}`)) throw new Error(`sequence ${i}: instruction count does not match the assembly`);
    return units;
  });
}

export interface DecodeOracle { nameOf(word: number): string }

/** xeno's decoder from the compiled tree, or undefined when it cannot be loaded (then nothing is screened). */
export async function loadXenoDecoder(root: string): Promise<DecodeOracle | undefined> {
  try {
    const mod = (await import(pathToFileURL(path.join(root, "dist/src/cpu/arm64/cpu.js")).href)) as
      { sharedDecoder?: () => DecodeOracle };
    const d = mod.sharedDecoder?.();
    return d && typeof d.nameOf === "function" ? d : undefined;
  } catch {
    return undefined;
  }
}
