/**
 * Kernel module selection for the initramfs.
 *
 * Debian's linux-image package ships lib/modules/<ver>/kernel/**.ko but no modules.dep (depmod runs in the
 * postinst), so dependencies are read from each module's own `.modinfo` ELF section ("depends=a,b", "alias=…",
 * NUL-separated key=value strings, see Linux include/linux/moduleparam.h MODULE_INFO) and modules.dep/alias are
 * generated for just the modules we include. Compressed modules (.ko.xz/.ko.zst/.ko.gz; Debian 12 ships plain
 * .ko, later releases compress) are decompressed at build time: busybox insmod cannot be relied on to do it.
 */
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { ImageError } from "./errors.js";

const execFileP = promisify(execFile);

export interface KernelModule {
  /** Canonical module name (dashes as underscores, as the kernel and modprobe compare them). */
  name: string;
  /** Path of the plain .ko relative to lib/modules/<ver> (a compressed source loses its suffix). */
  relPath: string;
  /** Decompressed module bytes. */
  data: Buffer;
  /** Direct dependencies (canonical names) from modinfo "depends". */
  depends: string[];
  /** modinfo "alias" patterns. */
  aliases: string[];
}

export const canonicalModuleName = (n: string): string => n.replace(/-/g, "_");

const MODULE_SUFFIX = /\.ko(\.xz|\.zst|\.gz)?$/;

/** ELF64 little-endian section lookup: returns the bytes of section `want` or null (ELF spec, section header table). */
export function elfSection(elf: Uint8Array, want: string): Buffer | null {
  const b = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return null; // ELFCLASS64, ELFDATA2LSB
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a), shnum = b.readUInt16LE(0x3c), shstrndx = b.readUInt16LE(0x3e);
  if (shentsize < 64 || shoff + shnum * shentsize > b.length || shstrndx >= shnum) return null;
  const sh = (i: number): { name: number; off: number; size: number } => {
    const o = shoff + i * shentsize;
    return { name: b.readUInt32LE(o), off: Number(b.readBigUInt64LE(o + 24)), size: Number(b.readBigUInt64LE(o + 32)) };
  };
  const strtab = sh(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = sh(i);
    const nameAt = strtab.off + s.name;
    const end = b.indexOf(0, nameAt);
    if (end < 0) continue;
    if (b.toString("latin1", nameAt, end) === want) {
      return s.off + s.size <= b.length ? b.subarray(s.off, s.off + s.size) : null;
    }
  }
  return null;
}

/** Parse a module's .modinfo into key → values (keys like alias repeat). */
export function readModinfo(ko: Uint8Array): Map<string, string[]> {
  const sec = elfSection(ko, ".modinfo");
  if (!sec) throw new ImageError("EIMAGES_MODULE", "not an ELF64 kernel module (no .modinfo section)");
  const info = new Map<string, string[]>();
  for (const s of sec.toString("utf8").split("\0")) {
    const eq = s.indexOf("=");
    if (eq <= 0) continue;
    const k = s.slice(0, eq);
    info.set(k, [...(info.get(k) ?? []), s.slice(eq + 1)]);
  }
  return info;
}

async function decompress(path: string): Promise<Buffer> {
  if (path.endsWith(".ko")) return readFile(path);
  if (path.endsWith(".gz")) return gunzipSync(await readFile(path));
  const tool = path.endsWith(".xz") ? "xz" : "zstd";
  try {
    const { stdout } = await execFileP(tool, ["-dc", path], { encoding: "buffer", maxBuffer: 1 << 28 });
    return stdout;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    throw new ImageError(missing ? "EIMAGES_NO_TOOL" : "EIMAGES_MODULE",
      missing ? `'${tool}' is needed to decompress ${path} (apt-get install ${tool === "xz" ? "xz-utils" : "zstd"})` : `cannot decompress ${path}`,
      { cause: e });
  }
}

/** Map canonical name → absolute path of every module file under `modulesDir/kernel`. */
export async function indexModules(modulesDir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  const entries = await readdir(join(modulesDir, "kernel"), { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile() || !MODULE_SUFFIX.test(e.name)) continue;
    // Dirent.parentPath is Node ≥ 20.12; `path` is the older spelling of the same thing.
    const dir = (e as unknown as { parentPath?: string; path: string }).parentPath ?? (e as unknown as { path: string }).path;
    index.set(canonicalModuleName(e.name.replace(MODULE_SUFFIX, "")), join(dir, e.name));
  }
  return index;
}

/**
 * Resolve `wanted` modules and their dependency closure. Returned in load order: each module after all its
 * dependencies. A wanted module that is not a loadable module (absent, e.g. built in) is reported in `missing`.
 */
export async function resolveModules(modulesDir: string, wanted: readonly string[]): Promise<{ modules: KernelModule[]; missing: string[] }> {
  const index = await indexModules(modulesDir);
  const done = new Map<string, KernelModule>();
  const order: KernelModule[] = [];
  const missing: string[] = [];
  const visiting = new Set<string>();
  const visit = async (raw: string, requiredBy: string | null): Promise<void> => {
    const name = canonicalModuleName(raw);
    if (done.has(name)) return;
    if (visiting.has(name)) throw new ImageError("EIMAGES_MODULE", `module dependency cycle through ${name}`);
    const path = index.get(name);
    if (!path) {
      if (requiredBy) throw new ImageError("EIMAGES_MODULE", `module ${name} (needed by ${requiredBy}) not found under ${modulesDir}`);
      missing.push(name);
      return;
    }
    visiting.add(name);
    const data = await decompress(path);
    let info: Map<string, string[]>;
    try { info = readModinfo(data); } catch (e) {
      throw new ImageError("EIMAGES_MODULE", `${path}: cannot read module info`, { cause: e });
    }
    const depends = (info.get("depends")?.[0] ?? "").split(",").filter((s) => s !== "").map(canonicalModuleName);
    for (const d of depends) await visit(d, name);
    visiting.delete(name);
    const mod: KernelModule = {
      name, data, depends, aliases: info.get("alias") ?? [],
      relPath: relative(modulesDir, path).replace(/\.(xz|zst|gz)$/, ""),
    };
    done.set(name, mod);
    order.push(mod);
  };
  for (const w of wanted) await visit(w, null);
  return { modules: order, missing };
}

/**
 * modules.dep for `modules` (load order). Each line lists the module's full dependency closure such that the
 * last entry is loaded first: kmod and busybox modprobe both load dependencies from the end of the list.
 */
export function modulesDep(modules: readonly KernelModule[]): string {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const pos = new Map(modules.map((m, i) => [m.name, i]));
  return modules.map((m) => {
    const closure = new Set<string>();
    const add = (n: string): void => {
      for (const d of byName.get(n)?.depends ?? []) if (!closure.has(d)) { closure.add(d); add(d); }
    };
    add(m.name);
    // Later in load order = loaded later = listed earlier.
    const deps = [...closure].sort((a, b) => pos.get(b)! - pos.get(a)!).map((d) => byName.get(d)!.relPath);
    return `${m.relPath}:${deps.map((d) => " " + d).join("")}\n`;
  }).join("");
}

/** modules.alias in depmod's format: "alias <pattern> <module>". */
export function modulesAlias(modules: readonly KernelModule[]): string {
  return "# Aliases extracted from modules themselves.\n" +
    modules.flatMap((m) => m.aliases.map((a) => `alias ${a} ${m.name}\n`)).join("");
}
