/**
 * "newc" cpio archives (the initramfs format the Linux kernel unpacks, Documentation/driver-api/early-userspace/
 * buffer-format.rst). Each entry is a 110-byte ASCII header "070701" followed by 13 eight-digit hex fields
 *   ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
 * then the NUL-terminated name padded so header+name is a multiple of 4, then the data padded to 4. The archive
 * ends with an entry named "TRAILER!!!". Symlink data is the link target. Entries are written in order, so
 * parents must precede children (the kernel creates them as it goes).
 */
import { ImageError } from "./errors.js";

export const CPIO_NEWC_MAGIC = "070701";
export const CPIO_TRAILER = "TRAILER!!!";
const HEADER_LEN = 110;

/** File type bits of st_mode (POSIX <sys/stat.h>), as stored in the header's mode field. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export type CpioEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; data: Uint8Array; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "char" | "block"; path: string; major: number; minor: number; mode?: number };

export interface CpioOptions {
  /** Modification time for every entry (seconds); 0 by default so archives are reproducible. */
  mtime?: number;
  uid?: number;
  gid?: number;
}

const enc = new TextEncoder();

function hex8(v: number, what: string, path: string): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ImageError("EIMAGES_CPIO", `cpio: ${what} ${v} out of range for ${path}`);
  return v.toString(16).padStart(8, "0");
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** Encode `entries` (paths relative, no leading "/") plus the trailer into one newc archive. */
export function writeCpio(entries: readonly CpioEntry[], opts: CpioOptions = {}): Buffer {
  const parts: Uint8Array[] = [];
  let ino = 1;
  const seen = new Set<string>();
  const push = (path: string, mode: number, nlink: number, data: Uint8Array, rdev: [number, number], inode: number): void => {
    const name = enc.encode(path + "\0");
    const fields = [inode, mode, opts.uid ?? 0, opts.gid ?? 0, nlink, opts.mtime ?? 0, data.length, 0, 0, rdev[0], rdev[1], name.length, 0];
    const header = CPIO_NEWC_MAGIC + fields.map((f, i) => hex8(f, `field ${i}`, path)).join("");
    parts.push(enc.encode(header), name, new Uint8Array(pad4(HEADER_LEN + name.length)));
    if (data.length) parts.push(data, new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, "").replace(/\/+$/, "");
    if (path === "" || path.split("/").some((c) => c === ".." || c === "")) {
      throw new ImageError("EIMAGES_CPIO", `cpio: bad path ${JSON.stringify(e.path)}`);
    }
    if (seen.has(path)) throw new ImageError("EIMAGES_CPIO", `cpio: duplicate path ${path}`);
    seen.add(path);
    const none: [number, number] = [0, 0];
    switch (e.type) {
      case "dir": push(path, S_IFDIR | (e.mode ?? 0o755), 2, new Uint8Array(0), none, ino++); break;
      case "file": push(path, S_IFREG | (e.mode ?? 0o644), 1, e.data, none, ino++); break;
      case "symlink": push(path, S_IFLNK | 0o777, 1, enc.encode(e.target), none, ino++); break;
      case "char": case "block":
        push(path, (e.type === "char" ? S_IFCHR : S_IFBLK) | (e.mode ?? 0o600), 1, new Uint8Array(0), [e.major, e.minor], ino++);
        break;
    }
  }
  push(CPIO_TRAILER, 0, 1, new Uint8Array(0), [0, 0], 0);
  return Buffer.concat(parts);
}

/** One decoded entry of a newc archive (used by tests and for inspecting built initramfs images). */
export interface CpioRecord { path: string; mode: number; nlink: number; mtime: number; rdevMajor: number; rdevMinor: number; data: Buffer }

/** Decode a newc archive up to its trailer. */
export function readCpio(buf: Buffer): CpioRecord[] {
  const out: CpioRecord[] = [];
  let o = 0;
  for (;;) {
    if (o + HEADER_LEN > buf.length) throw new ImageError("EIMAGES_CPIO", `cpio: truncated header at ${o}`);
    const magic = buf.toString("latin1", o, o + 6);
    if (magic !== CPIO_NEWC_MAGIC) throw new ImageError("EIMAGES_CPIO", `cpio: bad magic ${JSON.stringify(magic)} at ${o}`);
    const f = (i: number): number => parseInt(buf.toString("latin1", o + 6 + i * 8, o + 14 + i * 8), 16);
    const [mode, nlink, mtime, size, rdevMajor, rdevMinor, namesize] = [f(1), f(4), f(5), f(6), f(9), f(10), f(11)];
    const nameStart = o + HEADER_LEN;
    const path = buf.toString("utf8", nameStart, nameStart + namesize - 1);
    const dataStart = nameStart + namesize + pad4(HEADER_LEN + namesize);
    if (dataStart + size > buf.length) throw new ImageError("EIMAGES_CPIO", `cpio: truncated data for ${path}`);
    if (path === CPIO_TRAILER) return out;
    out.push({ path, mode, nlink, mtime, rdevMajor, rdevMinor, data: buf.subarray(dataStart, dataStart + size) });
    o = dataStart + size + pad4(size);
  }
}
