/**
 * Host files a domain is built from (kernel, ramdisk, disk images), opened without ever blocking the caller's
 * thread on what the path turns out to be: a FIFO would block open() or read() until some writer came, a
 * directory or /dev/zero would fail late or read for ever. Every open here is asynchronous (libuv's thread pool)
 * with O_NONBLOCK, so even a FIFO opens at once; the open file is then fstat'ed and anything but a regular file
 * is refused with a message saying what it is.
 */
import { constants, type Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

export type HostFileErrorCode =
  | "HOSTFILE_MISSING"     // no such file
  | "HOSTFILE_ACCESS"      // exists, but this process may not read (or write) it
  | "HOSTFILE_NOT_REGULAR" // a FIFO, directory, device or socket
  | "HOSTFILE_TOO_LARGE"   // larger than the caller allows
  | "HOSTFILE_IO";         // another error of open/fstat/read

export class HostFileError extends Error {
  constructor(readonly code: HostFileErrorCode, readonly path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HostFileError";
  }
}

/** What a non-regular file is, for messages ("is a FIFO (named pipe)"). */
export function describeKind(st: Stats): string {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  if (st.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

export interface OpenRegularOptions {
  /** Says what the file is for, first in every message ("kernel", "disk xvdb"). */
  what: string;
  /** Open read-write (a writable disk); default read-only. */
  write?: boolean;
  /** With `write`: create the file (mode 0600) when it does not exist (a save file); an existing one is kept. */
  create?: boolean;
  /** Largest size accepted, and the reason given when over it ("the domain's 64 MiB of RAM"). */
  maxBytes?: number;
  maxWhy?: string;
}

/**
 * Opens `path` as a regular file without blocking on it (see above); resolves to the handle and its stat, or
 * rejects with a HostFileError whose message says what is wrong and what would do.
 */
export async function openRegular(path: string, o: OpenRegularOptions): Promise<{ fh: FileHandle; st: Stats }> {
  const flags = (o.write ? constants.O_RDWR : constants.O_RDONLY) | constants.O_NONBLOCK | (o.write && o.create ? constants.O_CREAT : 0);
  let fh: FileHandle;
  try {
    fh = await open(path, flags, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const how = o.write ? "readable and writable" : "readable";
    if (code === "ENOENT") throw new HostFileError("HOSTFILE_MISSING", path, `${o.what} ${path}: ${o.create ? "its directory does not exist" : "no such file"}`, { cause: e });
    if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
      throw new HostFileError("HOSTFILE_ACCESS", path, `${o.what} ${path}: not ${how} by the hypervisor (${code}); check the file's mode and owner${o.write && !o.create ? ", or attach it read-only" : ""}`, { cause: e });
    }
    if (code === "EISDIR") throw new HostFileError("HOSTFILE_NOT_REGULAR", path, `${o.what} ${path}: is a directory; give a regular file`, { cause: e });
    if (code === "ENXIO") throw new HostFileError("HOSTFILE_NOT_REGULAR", path, `${o.what} ${path}: is a FIFO or socket with no peer; give a regular file`, { cause: e });
    throw new HostFileError("HOSTFILE_IO", path, `${o.what} ${path}: cannot open: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new HostFileError("HOSTFILE_NOT_REGULAR", path, `${o.what} ${path}: is ${describeKind(st)}; give a regular file`);
    }
    if (o.maxBytes !== undefined && st.size > o.maxBytes) {
      throw new HostFileError("HOSTFILE_TOO_LARGE", path,
        `${o.what} ${path}: too large (${mib(st.size)}; at most ${mib(o.maxBytes)}${o.maxWhy ? `, ${o.maxWhy}` : ""})`);
    }
    return { fh, st };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** Checks that `path` opens as a regular file as `openRegular` would, and closes it again. */
export async function checkRegular(path: string, o: OpenRegularOptions): Promise<Stats> {
  const { fh, st } = await openRegular(path, o);
  await fh.close().catch(() => undefined);
  return st;
}

/** Reads all `size` bytes of an open file into `into` (asynchronously); throws if the file shrank meanwhile. */
export async function readAll(fh: FileHandle, into: Uint8Array, path: string, what: string): Promise<void> {
  let off = 0;
  while (off < into.length) {
    const { bytesRead } = await fh.read(into, off, into.length - off, off);
    if (bytesRead === 0) throw new HostFileError("HOSTFILE_IO", path, `${what} ${path}: file shrank while being read (${off} of ${into.length} bytes)`);
    off += bytesRead;
  }
}

function mib(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(bytes % (1 << 20) === 0 ? 0 : 1)} MiB` : `${bytes} bytes`;
}
