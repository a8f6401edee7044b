/**
 * Linux system calls for the user-mode runner (arm64 numbers: include/uapi/asm-generic/unistd.h). Arguments in
 * x0..x5, number in x8, result (or -errno) in x0. Just enough Linux for static glibc programs and busybox
 * applets; unknown calls return -ENOSYS with a one-line trace.
 */
import * as fs from "node:fs";
import { constants as osc } from "node:os";
import { fillRandom } from "./random.js";
import type * as Tty from "node:tty";
import { createRequire } from "node:module";
import type { Cpu } from "../cpu/arm64/cpu.js";
import type { UserProcess } from "./process.js";
import { MMAP_TOP } from "./process.js";

/**
 * isatty(3) for a host fd. node:tty is loaded only for a character device (a terminal, or /dev/null and the
 * like, which node:tty then tells apart): loading it brings node:net and Node's streams, 12-30 ms, and glibc's
 * stdio asks TCGETS of stdout at the first printf, so every program printing into a pipe or file paid it.
 */
let tty: typeof Tty | null = null;
function isatty(fd: number): boolean {
  try { if (!fs.fstatSync(fd).isCharacterDevice()) return false; } catch { return false; }
  return (tty ??= createRequire(import.meta.url)("node:tty") as typeof Tty).isatty(fd);
}
import { PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, USER_TOP } from "./address-space.js";

const E = osc.errno;
const ENOSYS = 38;
const AT_FDCWD = -100;
const TWO32 = 2 ** 32;

/** arm64 open(2) flags (include/uapi/asm-generic/fcntl.h + arch/arm64 overrides) → names. */
const O_ACCMODE = 3, O_CREAT = 0o100, O_EXCL = 0o200, O_TRUNC = 0o1000, O_APPEND = 0o2000,
  O_DIRECTORY = 0o40000, O_NOFOLLOW = 0o100000;

const SYSCALL_NAMES: Record<number, string> = {};

interface FileDesc { host: number; path: string; flags: number; dir?: { entries: string[]; pos: number }; }

/** Slow syscalls sleep with Atomics.wait on this (no busy loops). */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export class Syscalls {
  private readonly fds = new Map<number, FileDesc>();
  private brkStart = 0;
  private brkCur = 0;
  private readonly warned = new Set<number>();
  private readonly table: ((c: Cpu) => number)[] = [];

  constructor(private readonly p: UserProcess) {
    for (const fd of [0, 1, 2]) this.fds.set(fd, { host: fd, path: `<fd ${fd}>`, flags: fd === 0 ? 0 : 1 });
    this.install();
  }

  setBrk(end: number): void { this.brkStart = this.brkCur = end; }

  dispatch(c: Cpu): void {
    const nr = c.r[16];
    const h = nr >= 0 && nr < this.table.length ? this.table[nr] : undefined;
    let res: number;
    if (h === undefined) {
      if (!this.warned.has(nr)) {
        this.warned.add(nr);
        process.stderr.write(`xeno: unimplemented syscall ${nr}${SYSCALL_NAMES[nr] ? ` (${SYSCALL_NAMES[nr]})` : ""} -> -ENOSYS\n`);
      }
      res = -ENOSYS;
    } else {
      try { res = h(c); } catch (e) { res = -errnoOf(e); }
    }
    if (this.p.exitCode >= 0) return;
    c.r[0] = res | 0;
    c.r[1] = res < 0 ? -1 : Math.floor(res / TWO32);
  }

  // ---------------------------------------------------------------------------------------------------------

  private install(): void {
    const t = this.table;
    const def = (nr: number, name: string, f: (c: Cpu) => number): void => { t[nr] = f; SYSCALL_NAMES[nr] = name; };
    const as = this.p.as;
    const a = (c: Cpu, k: number): number => (c.r[2 * k + 1] >>> 0) * TWO32 + (c.r[2 * k] >>> 0); // unsigned
    const ai = (c: Cpu, k: number): number => c.r[2 * k]; // int (low 32 bits, signed)
    const fd = (n: number): FileDesc => {
      const f = this.fds.get(n);
      if (f === undefined) throw errno("EBADF");
      return f;
    };
    const path = (c: Cpu, k: number): string => {
      const s = as.readCString(a(c, k));
      if (s === null) throw errno("EFAULT");
      return s;
    };
    const at = (dirfd: number, p: string): string => {
      if (p.startsWith("/") || dirfd === AT_FDCWD) return p;
      return fd(dirfd).path + "/" + p;
    };
    const put = (va: number, b: Uint8Array): number => { if (!as.copyOut(va, b)) throw errno("EFAULT"); return 0; };

    def(17, "getcwd", (c) => {
      const b = Buffer.from(process.cwd() + "\0");
      if (b.length > a(c, 1)) return -E.ERANGE;
      put(a(c, 0), b);
      return b.length;
    });
    def(23, "dup", (c) => this.newFdObj({ ...fd(ai(c, 0)) }));
    def(24, "dup3", (c) => {
      const from = fd(ai(c, 0)), to = ai(c, 1);
      if (to < 0) return -E.EBADF;
      this.closeFd(to);
      this.fds.set(to, { ...from });
      return to;
    });
    def(25, "fcntl", (c) => {
      const f = fd(ai(c, 0)), cmd = ai(c, 1);
      switch (cmd) {
        case 0: case 1030: { // F_DUPFD, F_DUPFD_CLOEXEC
          let n = ai(c, 2);
          while (this.fds.has(n)) n++;
          this.fds.set(n, { ...f });
          return n;
        }
        case 1: case 2: return 0; // F_GETFD / F_SETFD
        case 3: return f.flags; // F_GETFL
        case 4: return 0; // F_SETFL
        default: return -E.EINVAL;
      }
    });
    def(29, "ioctl", (c) => {
      const f = fd(ai(c, 0)), req = ai(c, 1) >>> 0;
      if (req === 0x5401 || req === 0x5413) { // TCGETS, TIOCGWINSZ
        if (!isatty(f.host)) return -E.ENOTTY;
        if (req === 0x5413) {
          const b = Buffer.alloc(8);
          b.writeUInt16LE(process.stdout.rows ?? 24, 0);
          b.writeUInt16LE(process.stdout.columns ?? 80, 2);
          return put(a(c, 2), b);
        }
        // struct termios (include/uapi/asm-generic/termbits.h): iflag oflag cflag lflag, line, cc[NCCS = 19]: 36
        // bytes, what TCGETS copies out (60 overran glibc's kernel_termios on the guest's stack: "stack smashing
        // detected" for `busybox tty` on a terminal, until 2026-12-08).
        const b = Buffer.alloc(36);
        b.writeUInt32LE(0x500, 0); b.writeUInt32LE(0x5, 4); b.writeUInt32LE(0xbf, 8); b.writeUInt32LE(0x8a3b, 12);
        return put(a(c, 2), b);
      }
      return -E.ENOTTY;
    });
    def(34, "mkdirat", (c) => { fs.mkdirSync(at(ai(c, 0), path(c, 1)), { mode: ai(c, 2) }); return 0; });
    def(35, "unlinkat", (c) => {
      const p = at(ai(c, 0), path(c, 1));
      if (ai(c, 2) & 0x200) fs.rmdirSync(p); else fs.unlinkSync(p);
      return 0;
    });
    def(38, "renameat", (c) => { fs.renameSync(at(ai(c, 0), path(c, 1)), at(ai(c, 2), path(c, 3))); return 0; });
    def(276, "renameat2", (c) => { fs.renameSync(at(ai(c, 0), path(c, 1)), at(ai(c, 2), path(c, 3))); return 0; });
    def(46, "ftruncate", (c) => { fs.ftruncateSync(fd(ai(c, 0)).host, a(c, 1)); return 0; });
    def(48, "faccessat", (c) => { fs.accessSync(at(ai(c, 0), path(c, 1)), ai(c, 2)); return 0; });
    def(49, "chdir", (c) => { process.chdir(path(c, 0)); return 0; });
    def(52, "fchmod", (c) => { fs.fchmodSync(fd(ai(c, 0)).host, ai(c, 1)); return 0; });
    def(53, "fchmodat", (c) => { fs.chmodSync(at(ai(c, 0), path(c, 1)), ai(c, 2)); return 0; });
    def(54, "fchownat", () => 0);
    def(55, "fchown", () => 0);
    def(56, "openat", (c) => {
      const p = at(ai(c, 0), path(c, 1));
      const fl = ai(c, 2), mode = ai(c, 3);
      let host = fl & O_ACCMODE;
      if (fl & O_CREAT) host |= fs.constants.O_CREAT;
      if (fl & O_EXCL) host |= fs.constants.O_EXCL;
      if (fl & O_TRUNC) host |= fs.constants.O_TRUNC;
      if (fl & O_APPEND) host |= fs.constants.O_APPEND;
      if (fl & O_DIRECTORY) host |= fs.constants.O_DIRECTORY;
      if (fl & O_NOFOLLOW) host |= fs.constants.O_NOFOLLOW;
      const h = fs.openSync(p, host, mode);
      const f: FileDesc = { host: h, path: p, flags: fl };
      const st = fs.fstatSync(h);
      if (st.isDirectory()) f.dir = { entries: [".", "..", ...fs.readdirSync(p)], pos: 0 };
      if (st.isFile()) this.positions.set(h, 0);
      return this.newFdObj(f);
    });
    def(57, "close", (c) => { fd(ai(c, 0)); this.closeFd(ai(c, 0)); return 0; });
    def(61, "getdents64", (c) => {
      const f = fd(ai(c, 0));
      if (f.dir === undefined) return -E.ENOTDIR;
      const max = a(c, 2);
      const out: Buffer[] = [];
      let used = 0;
      while (f.dir.pos < f.dir.entries.length) {
        const name = f.dir.entries[f.dir.pos];
        const nb = Buffer.from(name + "\0");
        const reclen = Math.ceil((19 + nb.length) / 8) * 8;
        if (used + reclen > max) break;
        const rec = Buffer.alloc(reclen);
        let ino = 1, type = 0;
        try {
          const st = fs.lstatSync(f.path + "/" + name);
          ino = Number(st.ino) || 1;
          type = st.isDirectory() ? 4 : st.isSymbolicLink() ? 10 : st.isFile() ? 8 : 0;
        } catch { /* vanished */ }
        rec.writeBigUInt64LE(BigInt(ino), 0);
        rec.writeBigInt64LE(BigInt(f.dir.pos + 1), 8);
        rec.writeUInt16LE(reclen, 16);
        rec.writeUInt8(type, 18);
        nb.copy(rec, 19);
        out.push(rec);
        used += reclen;
        f.dir.pos++;
      }
      if (used === 0 && f.dir.pos < f.dir.entries.length) return -E.EINVAL;
      put(a(c, 1), Buffer.concat(out));
      return used;
    });
    def(62, "lseek", (c) => {
      const f = fd(ai(c, 0));
      const off = c.r[3] * TWO32 + (c.r[2] >>> 0);
      return this.seek(f, off, ai(c, 2));
    });
    def(63, "read", (c) => this.read(fd(ai(c, 0)), a(c, 1), a(c, 2), -1));
    def(64, "write", (c) => this.write(fd(ai(c, 0)), a(c, 1), a(c, 2), -1));
    def(65, "readv", (c) => this.vec(c, false));
    def(66, "writev", (c) => this.vec(c, true));
    def(67, "pread64", (c) => this.read(fd(ai(c, 0)), a(c, 1), a(c, 2), a(c, 3)));
    def(68, "pwrite64", (c) => this.write(fd(ai(c, 0)), a(c, 1), a(c, 2), a(c, 3)));
    def(71, "sendfile", (c) => {
      const out = fd(ai(c, 0)), inp = fd(ai(c, 1)), offPtr = a(c, 2), count = Math.min(a(c, 3), 1 << 24);
      const buf = Buffer.alloc(count);
      let n: number;
      if (offPtr !== 0) {
        const ob = Buffer.alloc(8);
        if (!as.copyIn(offPtr, 8, ob)) return -E.EFAULT;
        const off = Number(ob.readBigInt64LE(0));
        n = fs.readSync(inp.host, buf, 0, count, off);
        ob.writeBigInt64LE(BigInt(off + n), 0);
        put(offPtr, ob);
      } else {
        const pos = this.positions.get(inp.host);
        n = fs.readSync(inp.host, buf, 0, count, pos ?? null);
        if (pos !== undefined) this.positions.set(inp.host, pos + n);
      }
      let done = 0;
      while (done < n) done += fs.writeSync(out.host, buf, done, n - done, null);
      return n;
    });
    def(78, "readlinkat", (c) => {
      let p = at(ai(c, 0), path(c, 1));
      if (p === "/proc/self/exe") p = fs.realpathSync(this.p.execPath);
      const b = Buffer.from(p === this.p.execPath ? p : fs.readlinkSync(p));
      const n = Math.min(b.length, a(c, 3));
      put(a(c, 2), b.subarray(0, n));
      return n;
    });
    def(79, "newfstatat", (c) => {
      const p = path(c, 1), flags = ai(c, 3);
      let st: fs.BigIntStats;
      if (p === "" && (flags & 0x1000)) st = fs.fstatSync(fd(ai(c, 0)).host, { bigint: true }); // AT_EMPTY_PATH
      else {
        const full = at(ai(c, 0), p);
        st = (flags & 0x100) ? fs.lstatSync(full, { bigint: true }) : fs.statSync(full, { bigint: true }); // AT_SYMLINK_NOFOLLOW
      }
      return put(a(c, 2), statBuf(st));
    });
    def(80, "fstat", (c) => put(a(c, 1), statBuf(fs.fstatSync(fd(ai(c, 0)).host, { bigint: true }))));
    def(82, "fsync", (c) => { fd(ai(c, 0)); return 0; });
    def(83, "fdatasync", (c) => { fd(ai(c, 0)); return 0; });
    def(88, "utimensat", () => 0);
    def(93, "exit", (c) => { this.p.exit(ai(c, 0) & 0xff); return 0; });
    def(94, "exit_group", (c) => { this.p.exit(ai(c, 0) & 0xff); return 0; });
    def(96, "set_tid_address", () => 1000);
    def(98, "futex", () => 0);
    def(99, "set_robust_list", () => 0);
    def(101, "nanosleep", (c) => { this.sleepTs(a(c, 0)); return 0; });
    def(115, "clock_nanosleep", (c) => { this.sleepTs(a(c, 2)); return 0; });
    def(113, "clock_gettime", (c) => put(a(c, 1), timespec(ai(c, 0))));
    def(114, "clock_getres", (c) => { if (a(c, 1) !== 0) put(a(c, 1), tsBuf(0n, 1n)); return 0; });
    def(123, "sched_getaffinity", (c) => { const b = Buffer.alloc(8); b[0] = 1; put(a(c, 2), b); return 8; });
    def(124, "sched_yield", () => 0);
    def(129, "kill", (c) => this.killSelf(ai(c, 1)));
    def(130, "tkill", (c) => this.killSelf(ai(c, 1)));
    def(131, "tgkill", (c) => this.killSelf(ai(c, 2)));
    def(134, "rt_sigaction", (c) => { if (a(c, 2) !== 0) put(a(c, 2), Buffer.alloc(32)); return 0; });
    def(135, "rt_sigprocmask", (c) => { if (a(c, 2) !== 0) put(a(c, 2), Buffer.alloc(8)); return 0; });
    def(153, "times", (c) => { if (a(c, 0) !== 0) put(a(c, 0), Buffer.alloc(32)); return Math.floor(performance.now() / 10); });
    def(160, "uname", (c) => {
      const b = Buffer.alloc(65 * 6);
      ["Linux", "xeno", "6.1.0", "#1 SMP xeno", "aarch64", "(none)"].forEach((s, k) => b.write(s, k * 65));
      return put(a(c, 0), b);
    });
    def(163, "getrlimit", (c) => put(a(c, 1), rlimit(ai(c, 0))));
    def(261, "prlimit64", (c) => { if (a(c, 3) !== 0) put(a(c, 3), rlimit(ai(c, 1))); return 0; });
    def(165, "getrusage", (c) => put(a(c, 1), Buffer.alloc(144)));
    def(166, "umask", () => 0o022);
    def(167, "prctl", () => -E.EINVAL);
    def(169, "gettimeofday", (c) => {
      if (a(c, 0) === 0) return 0;
      const now = BigInt(Date.now()) * 1000n;
      return put(a(c, 0), tsBuf(now / 1000000n, now % 1000000n));
    });
    def(172, "getpid", () => 1000);
    def(173, "getppid", () => 1);
    def(174, "getuid", () => process.getuid?.() ?? 0);
    def(175, "geteuid", () => process.geteuid?.() ?? 0);
    def(176, "getgid", () => process.getgid?.() ?? 0);
    def(177, "getegid", () => process.getegid?.() ?? 0);
    def(178, "gettid", () => 1000);
    def(179, "sysinfo", (c) => {
      const b = Buffer.alloc(112);
      b.writeBigUInt64LE(BigInt(Math.floor(performance.now() / 1000)), 0);
      b.writeBigUInt64LE(BigInt(this.p.mmu.ramSize), 32); // totalram
      b.writeBigUInt64LE(BigInt(this.p.mmu.ramSize / 2), 40); // freeram
      b.writeUInt16LE(1, 80); // procs
      b.writeUInt32LE(1, 104); // mem_unit
      return put(a(c, 0), b);
    });
    def(214, "brk", (c) => this.brk(a(c, 0)));
    def(215, "munmap", (c) => {
      const addr = a(c, 0), len = pageUp(a(c, 1));
      if (addr % PAGE !== 0 || len === 0 || addr + len > USER_TOP) return -E.EINVAL;
      as.unmap(addr, addr + len);
      return 0;
    });
    def(216, "mremap", (c) => this.mremap(a(c, 0), a(c, 1), a(c, 2), ai(c, 3)));
    def(222, "mmap", (c) => this.mmap(a(c, 0), a(c, 1), ai(c, 2), ai(c, 3), ai(c, 4), a(c, 5)));
    def(226, "mprotect", (c) => {
      const addr = a(c, 0), len = pageUp(a(c, 1));
      if (addr % PAGE !== 0) return -E.EINVAL;
      return as.protect(addr, addr + len, ai(c, 2) & 7) ? 0 : -E.ENOMEM;
    });
    def(233, "madvise", () => 0);
    def(278, "getrandom", (c) => {
      const n = Math.min(a(c, 1), 1 << 20);
      const b = Buffer.alloc(n);
      fillRandom(b);
      put(a(c, 0), b);
      return n;
    });
    def(291, "statx", () => -ENOSYS);
    def(293, "rseq", () => -ENOSYS);
    def(439, "faccessat2", (c) => { fs.accessSync(at(ai(c, 0), path(c, 1)), ai(c, 2)); return 0; });
  }

  // ---------------------------------------------------------------------------------------------------------

  private newFdObj(f: FileDesc): number {
    let n = 0;
    while (this.fds.has(n)) n++;
    this.fds.set(n, f);
    return n;
  }

  private closeFd(n: number): void {
    const f = this.fds.get(n);
    if (f === undefined) return;
    this.fds.delete(n);
    // Close the host descriptor unless another guest fd (dup) or our own stdio still uses it.
    if (f.host > 2 && ![...this.fds.values()].some((g) => g.host === f.host)) {
      fs.closeSync(f.host);
      this.positions.delete(f.host);
    }
  }

  private positions = new Map<number, number>();

  private seek(f: FileDesc, off: number, whence: number): number {
    const st = fs.fstatSync(f.host);
    if (!st.isFile() && !st.isBlockDevice()) return -E.ESPIPE;
    const cur = this.positions.get(f.host) ?? 0; // inherited stdio files: position unknown to us, assume 0
    const pos = whence === 0 ? off : whence === 1 ? cur + off : whence === 2 ? st.size + off : -1;
    if (pos < 0 || whence > 2) return -E.EINVAL;
    this.positions.set(f.host, pos);
    return pos;
  }

  private read(f: FileDesc, va: number, len: number, at: number): number {
    if (f.dir) return -E.EISDIR;
    const n0 = Math.min(len, 1 << 20);
    const buf = Buffer.alloc(n0);
    const pos = at >= 0 ? at : this.positions.get(f.host);
    let n: number;
    for (;;) {
      try { n = fs.readSync(f.host, buf, 0, n0, pos ?? null); break; }
      catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") { Atomics.wait(sleeper, 0, 0, 5); continue; }
        if (code === "EOF") { n = 0; break; }
        throw e;
      }
    }
    if (at < 0 && pos !== undefined) this.positions.set(f.host, pos + n);
    if (!this.p.as.copyOut(va, buf.subarray(0, n))) return -E.EFAULT;
    return n;
  }

  private write(f: FileDesc, va: number, len: number, at: number): number {
    if (len > 1 << 24) len = 1 << 24;
    const buf = Buffer.alloc(len);
    if (!this.p.as.copyIn(va, len, buf)) return -E.EFAULT;
    const append = (f.flags & O_APPEND) !== 0;
    const pos = at >= 0 ? at : append ? undefined : this.positions.get(f.host);
    let done = 0;
    while (done < len) {
      try { done += fs.writeSync(f.host, buf, done, len - done, pos === undefined ? null : pos + done); }
      catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") { Atomics.wait(sleeper, 0, 0, 5); continue; }
        if (code === "EPIPE" && done === 0) throw e;
        if (done > 0) break;
        throw e;
      }
    }
    if (at < 0 && pos !== undefined) this.positions.set(f.host, pos + done);
    return done;
  }

  private vec(c: Cpu, isWrite: boolean): number {
    const f = this.fds.get(c.r[0]);
    if (f === undefined) return -E.EBADF;
    const iov = (c.r[3] >>> 0) * TWO32 + (c.r[2] >>> 0), cnt = c.r[4];
    if (cnt < 0 || cnt > 1024) return -E.EINVAL;
    const b = Buffer.alloc(16 * cnt);
    if (!this.p.as.copyIn(iov, b.length, b)) return -E.EFAULT;
    let total = 0;
    for (let k = 0; k < cnt; k++) {
      const base = Number(b.readBigUInt64LE(16 * k)), len = Number(b.readBigUInt64LE(16 * k + 8));
      if (len === 0) continue;
      const n = isWrite ? this.write(f, base, len, -1) : this.read(f, base, len, -1);
      if (n < 0) return total > 0 ? total : n;
      total += n;
      if (n < len) break;
    }
    return total;
  }

  private brk(want: number): number {
    if (want === 0 || want < this.brkStart) return this.brkCur;
    const oldEnd = pageUp(this.brkCur), newEnd = pageUp(want);
    if (newEnd > oldEnd) {
      if (this.p.as.vmas.some((v) => v.start < newEnd && v.end > oldEnd)) return this.brkCur;
      // Extend the heap VMA (merged with an existing one ending at oldEnd if present).
      const heap = this.p.as.vmas.find((v) => v.name === "heap" && v.end === oldEnd);
      if (heap !== undefined) heap.end = newEnd;
      else this.p.as.addVma(oldEnd, newEnd, PROT_READ | PROT_WRITE, "heap");
    } else if (newEnd < oldEnd) {
      this.p.as.unmap(newEnd, oldEnd);
    }
    this.brkCur = want;
    return want;
  }

  private mmap(addr: number, len: number, prot: number, flags: number, fdn: number, off: number): number {
    const MAP_FIXED = 0x10, MAP_ANON = 0x20, MAP_FIXED_NOREPLACE = 0x100000;
    if (len === 0 || off % PAGE !== 0) return -E.EINVAL;
    const size = pageUp(len);
    if (size > 2 ** 40) return -E.ENOMEM;
    let start: number;
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
      if (addr % PAGE !== 0 || addr + size > USER_TOP) return -E.EINVAL;
      if ((flags & MAP_FIXED_NOREPLACE) && this.p.as.vmas.some((v) => v.start < addr + size && v.end > addr)) return -E.EEXIST;
      start = addr;
    } else {
      start = this.p.as.findFree(size, MMAP_TOP);
      if (start < 0) return -E.ENOMEM;
    }
    const f = (flags & MAP_ANON) ? undefined : this.fds.get(fdn);
    if (!(flags & MAP_ANON) && f === undefined) return -E.EBADF;
    this.p.as.addVma(start, start + size, prot & (PROT_READ | PROT_WRITE | PROT_EXEC), "mmap");
    if (f !== undefined) {
      // Private file mapping: copy the file's bytes in now (no sharing of later writes; MAP_SHARED unsupported
      // for writes back to the file).
      const buf = Buffer.alloc(len);
      const n = fs.readSync(f.host, buf, 0, len, off);
      const saved = this.p.as.vmas.find((v) => v.start === start);
      if (saved !== undefined) { const pr = saved.prot; saved.prot = PROT_READ | PROT_WRITE; this.p.as.copyOut(start, buf.subarray(0, n)); saved.prot = pr; }
    }
    return start;
  }

  /** mremap without MREMAP_FIXED: shrink, grow in place, or move when MREMAP_MAYMOVE allows. */
  private mremap(old: number, oldLen: number, newLen: number, flags: number): number {
    const MREMAP_MAYMOVE = 1;
    if (old % PAGE !== 0 || newLen === 0) return -E.EINVAL;
    oldLen = pageUp(oldLen); newLen = pageUp(newLen);
    const v = this.p.as.findVma(old);
    if (v === undefined || old + oldLen > v.end) return -E.EFAULT;
    if (newLen <= oldLen) { if (newLen < oldLen) this.p.as.unmap(old + newLen, old + oldLen); return old; }
    // Grow in place when the following range is free.
    if (!this.p.as.vmas.some((w) => w.start < old + newLen && w.end > old + oldLen)) {
      this.p.as.addVma(old + oldLen, old + newLen, v.prot, v.name);
      return old;
    }
    if (!(flags & MREMAP_MAYMOVE)) return -E.ENOMEM;
    const to = this.p.as.findFree(newLen, MMAP_TOP);
    if (to < 0) return -E.ENOMEM;
    this.p.as.addVma(to, to + newLen, v.prot, v.name);
    this.p.as.movePages(old, to, oldLen);
    this.p.as.unmap(old, old + oldLen);
    return to;
  }

  private sleepTs(va: number): void {
    const b = Buffer.alloc(16);
    if (va === 0 || !this.p.as.copyIn(va, 16, b)) throw errno("EFAULT");
    const ms = Number(b.readBigInt64LE(0)) * 1000 + Number(b.readBigInt64LE(8)) / 1e6;
    if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
  }

  private killSelf(sig: number): number {
    if (sig === 0) return 0;
    const names: Record<number, string> = { 6: "SIGABRT", 9: "SIGKILL", 15: "SIGTERM" };
    this.p.fatal(sig, `killed by ${names[sig] ?? `signal ${sig}`}`);
    return 0;
  }
}

function pageUp(n: number): number { return Math.ceil(n / PAGE) * PAGE; }

function errno(code: string): Error {
  const e = new Error(code) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

function errnoOf(e: unknown): number {
  const code = (e as NodeJS.ErrnoException)?.code;
  const n = code !== undefined ? (E as Record<string, number>)[code] : undefined;
  if (n === undefined) throw e;
  return n;
}

function tsBuf(sec: bigint, nsec: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigInt64LE(sec, 0);
  b.writeBigInt64LE(nsec, 8);
  return b;
}

const T0 = process.hrtime.bigint();
function timespec(clock: number): Buffer {
  if (clock === 0 || clock === 5 || clock === 8) { // REALTIME, REALTIME_COARSE, BOOTTIME-ish
    const ns = BigInt(Date.now()) * 1000000n + ((process.hrtime.bigint() - T0) % 1000000n);
    return tsBuf(ns / 1000000000n, ns % 1000000000n);
  }
  const ns = process.hrtime.bigint();
  return tsBuf(ns / 1000000000n, ns % 1000000000n);
}

function rlimit(res: number): Buffer {
  const b = Buffer.alloc(16);
  const inf = 0xffffffffffffffffn;
  const v = res === 3 ? 8n * 1024n * 1024n : res === 7 ? 1024n : inf; // STACK, NOFILE
  b.writeBigUInt64LE(v, 0);
  b.writeBigUInt64LE(res === 7 ? 4096n : inf, 8);
  return b;
}

/** struct stat for arm64 (include/uapi/asm-generic/stat.h), 128 bytes. */
function statBuf(st: fs.BigIntStats): Buffer {
  const b = Buffer.alloc(128);
  b.writeBigUInt64LE(st.dev, 0);
  b.writeBigUInt64LE(st.ino, 8);
  b.writeUInt32LE(Number(st.mode), 16);
  b.writeUInt32LE(Number(st.nlink), 20);
  b.writeUInt32LE(Number(st.uid), 24);
  b.writeUInt32LE(Number(st.gid), 28);
  b.writeBigUInt64LE(st.rdev, 32);
  b.writeBigInt64LE(st.size, 48);
  b.writeInt32LE(Number(st.blksize), 56);
  b.writeBigInt64LE(st.blocks, 64);
  const t = (ns: bigint, o: number): void => { b.writeBigInt64LE(ns / 1000000000n, o); b.writeBigInt64LE(ns % 1000000000n, o + 8); };
  t(st.atimeNs, 72); t(st.mtimeNs, 88); t(st.ctimeNs, 104);
  return b;
}
