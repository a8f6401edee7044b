/**
 * bench/io: block I/O inside the guest — the stock Debian kernel's xen-blkfront against Xeno's blkback
 * (`xeno create -c` with `disk = [...]`, /dev/xvda) vs its virtio-blk against QEMU TCG
 * (`qemu-system-aarch64 -M virt -cpu cortex-a72`, virtio-blk-pci, /dev/vda); same kernel, initramfs, command
 * line, memory and raw image file; sessions alternated, median of N runs each, ratio Xeno/QEMU throughput.
 *
 *   node dist/bench/io/run.js [--runs N] [--mib MiB] [--reads N] [--area MiB] [--timeout SEC] [--only xeno|qemu]
 *                             [--cpu-prof DIR] [--vcpus N] [--append ARGS] [--ab VAR=VALUE] [--disk-opts OPTS]
 *
 * A/B of a blkback feature: `--ab VAR=VALUE` adds a third side, Xeno with that environment variable set
 * (XENO_BLK_PERSISTENT=0, XENO_BLK_MAX_RING_ORDER=0, XENO_BLK_MAX_QUEUES=1, XENO_BLK_SYNC=1), alternated with
 * the others; `--vcpus` and `--append` (extra kernel arguments, e.g. xen_blkfront.max_ring_page_order=4)
 * apply to every side; `--disk-opts` is added to Xeno's disk spec (e.g. `rate=20MB/s` or `iops=500`, the
 * disk's I/O limit); `--parallel N` runs N random readers at once (queue depth N; IOPS summed).
 *
 * Fair sharing: `--pair` boots two Xeno domains at once instead (A and B, each its own image): B writes its
 * area once, then measures random 4 KiB reads --runs times alone, then again --runs times while A writes flat
 * out in a loop (seqwrite of --mib MiB, O_DIRECT, again and again); the result is B's contended/solo IOPS.
 * `--disk-opts` then applies to A's disk only (e.g. `rate=20MB/s`: the per-disk limit as the answer to a
 * noisy neighbour).
 *
 * Tests (bench/io/blkbench.c, a static aarch64 program; O_DIRECT on the whole device, timed inside the guest with
 * CLOCK_MONOTONIC around the I/O only, never the boot):
 *   seqwrite  --mib MiB (default 256, all of --area) in 1 MiB pwrites from offset 0, then fsync (inside the timing)
 *   seqread   the same range in 1 MiB preads
 *   randread  --reads (default 5000) 4 KiB preads at random 4 KiB offsets in that range (queue depth 1: IOPS)
 * Reads check a per-block stamp that this session's seqwrite wrote, so a misdirected read fails the run. The
 * sizes are larger than Xeno needs so that QEMU's side lasts more than a few hundred milliseconds.
 *
 * The program reaches the guest without touching the initramfs: it sits in the disk image's tail, after the
 * --area MiB (default 256) that the tests use, and the guest copies it out with
 *   dd if=DEV bs=4096 skip=S count=C | head -c BYTES > /tmp/blkbench
 * (its md5 is checked against the host's). The tests never go past --mib ≤ --area, so the tail survives.
 *
 * Each guest is driven through its console (stdin/stdout): spawn, wait for XENO-GUEST-READY, wait for the disk
 * node, fetch the program, run the three tests as three commands, `poweroff -f`. Besides the guest's own timing,
 * the host's wall time per command (typing it to its end marker, so including program start and console latency)
 * is reported as a cross-check of the guest clock. QEMU runs with its default cache mode for raw files
 * (writeback: host page cache, flush = fdatasync), the same as blkback's pread/pwrite + fdatasync.
 *
 * Timings never decide pass/fail; record results in docs/benchmarks.md.
 */
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { framedCommand, framedOutput } from "../../test/xen/run-machine.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const OUT = path.join(ROOT, "build/bench-io");
const CMDLINE = "console=ttyAMA0 rdinit=/init";
const TESTS = ["seqwrite", "seqread", "randread"] as const;
type TestName = typeof TESTS[number];

interface Options { runs: number; mib: number; reads: number; area: number; timeoutSec: number; only?: "xeno" | "qemu"; cpuProf?: string;
  vcpus: number; append: string; ab?: [string, string]; diskOpts: string; pair: boolean; parallel: number }

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 3, mib: 256, reads: 5000, area: 256, timeoutSec: 900, vcpus: 1, append: "", diskOpts: "", pair: false, parallel: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = (): number => {
      const n = Number(val());
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a}: a positive integer please`);
      return n;
    };
    if (a === "--runs") o.runs = int();
    else if (a === "--mib") o.mib = int();
    else if (a === "--reads") o.reads = int();
    else if (a === "--area") o.area = int();
    else if (a === "--timeout") o.timeoutSec = int();
    else if (a === "--only") {
      const v = val();
      if (v !== "xeno" && v !== "qemu") throw new Error("--only xeno|qemu");
      o.only = v;
    } else if (a === "--cpu-prof") o.cpuProf = path.resolve(val());
    else if (a === "--vcpus") o.vcpus = int();
    else if (a === "--append") o.append = val();
    else if (a === "--disk-opts") o.diskOpts = val();
    else if (a === "--pair") o.pair = true;
    else if (a === "--parallel") o.parallel = int();
    else if (a === "--ab") {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(val());
      if (!m) throw new Error("--ab VAR=VALUE");
      o.ab = [m[1], m[2]];
    }
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: node dist/bench/io/run.js [--runs N] [--mib MiB] [--reads N] [--area MiB] [--timeout SEC] " +
        "[--only xeno|qemu] [--cpu-prof DIR] [--vcpus N] [--append ARGS] [--ab VAR=VALUE] [--disk-opts OPTS] [--pair] [--parallel N]\n");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.mib > o.area) throw new Error(`--mib ${o.mib} is larger than the test area (--area ${o.area})`);
  return o;
}

const md5 = (b: Uint8Array): string => createHash("md5").update(b).digest("hex");

/** Compiles blkbench.c once per source version (build/bench-io/blkbench-<hash>). */
function compileBlkbench(): string {
  const src = path.join(ROOT, "bench/io/blkbench.c");
  const tag = createHash("sha256").update(fs.readFileSync(src)).digest("hex").slice(0, 12);
  const out = path.join(OUT, `blkbench-${tag}`);
  if (!fs.existsSync(out)) {
    execFileSync("aarch64-linux-gnu-gcc", ["-static", "-O2", "-s", "-o", `${out}.tmp`, src], { stdio: "inherit" });
    fs.renameSync(`${out}.tmp`, out);
  }
  return out;
}

/** Where the program sits in the image: 4 KiB blocks from `skip`, `bytes` long. */
interface Payload { skip: number; count: number; bytes: number; md5: string }

/**
 * The raw image: --area MiB of pseudo-random bytes (written out, not a sparse file, so neither side pays for
 * the host file system allocating blocks), then the program, padded to 4 KiB.
 */
function makeImage(file: string, areaMiB: number, prog: Buffer): Payload {
  const fd = fs.openSync(file, "w");
  try {
    const chunk = randomBytes(1 << 20);
    for (let m = 0; m < areaMiB; m++) fs.writeSync(fd, chunk, 0, chunk.length, m * chunk.length);
    const padded = Buffer.alloc(Math.ceil(prog.length / 4096) * 4096);
    prog.copy(padded);
    fs.writeSync(fd, padded, 0, padded.length, areaMiB << 20);
    fs.fsyncSync(fd);
    return { skip: (areaMiB << 20) / 4096, count: padded.length / 4096, bytes: prog.length, md5: md5(prog) };
  } finally {
    fs.closeSync(fd);
  }
}

/** A guest driven through its console: stdout is collected, commands typed on stdin. */
class ConsoleGuest {
  private out = "";
  private err = "";
  private exited: number | null | undefined = undefined;
  private waiters: (() => void)[] = [];
  private n = 0;
  readonly p: ChildProcessWithoutNullStreams;

  constructor(readonly label: string, cmd: string, args: string[], env?: Record<string, string>) {
    this.p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
    const wake = (): void => { for (const w of this.waiters.splice(0)) w(); };
    this.p.stdout.on("data", (d: Buffer) => { this.out += d.toString("latin1"); wake(); });
    this.p.stderr.on("data", (d: Buffer) => { this.err = (this.err + d.toString("latin1")).slice(-4000); });
    this.p.stdin.on("error", () => {});
    this.p.on("exit", (code) => { this.exited = code; wake(); });
  }

  /** Resolves when `done(output)` holds; rejects on timeout or when the process exits first. */
  async until(done: (out: string) => boolean, what: string, timeoutSec: number): Promise<void> {
    const deadline = Date.now() + timeoutSec * 1000;
    for (;;) {
      if (done(this.out)) return;
      if (this.exited !== undefined) throw new Error(`${this.label} exited (${this.exited}) waiting for ${what}; stderr: ${this.err.trim().slice(-600)}; console: ${this.out.slice(-600)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label}: no ${what} after ${timeoutSec} s; console: ${this.out.slice(-600)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Types one shell command; resolves with its output and the host's wall seconds from typing to its end. */
  async sh(cmd: string, timeoutSec: number): Promise<{ text: string; secs: number }> {
    const k = ++this.n + 1000, from = this.out.length;
    const t0 = performance.now();
    this.p.stdin.write(framedCommand(cmd, k));
    await this.until((o) => framedOutput(o.slice(from), k) !== undefined, `the end of: ${cmd}`, timeoutSec);
    const secs = (performance.now() - t0) / 1000;
    return { text: framedOutput(this.out.slice(from), k)!, secs };
  }

  /** `poweroff -f`, then waits for the process to end (SIGKILL after 120 s). */
  async poweroff(): Promise<void> {
    if (this.exited === undefined) this.p.stdin.write("poweroff -f\n");
    try { await this.until(() => this.exited !== undefined, "exit after poweroff -f", 120); }
    catch (e) { this.p.kill("SIGKILL"); throw e; }
  }

  kill(): void { if (this.exited === undefined) this.p.kill("SIGKILL"); }
}

interface TestResult { rate: number; hostRate: number; guestSecs: number; hostSecs: number }
interface Session { boot: number; guestSide: number; tests: Record<TestName, TestResult> }

/** One boot of one hypervisor: boot, fetch the program, run the three tests, power off. */
async function session(label: string, cmd: string, args: string[], dev: string, o: Options, pay: Payload, tag: number,
  env?: Record<string, string>): Promise<Session> {
  const g = new ConsoleGuest(label, cmd, args, env);
  const progress = (m: string): void => { process.stderr.write(`  ${label}: ${m}\n`); };
  try {
    const t0 = performance.now();
    await g.until((out) => out.includes(GUEST_READY_MARKER), "guest ready marker", o.timeoutSec);
    const boot = (performance.now() - t0) / 1000;
    progress(`marker after ${boot.toFixed(1)} s`);
    const t1 = performance.now();
    // blkfront / virtio-blk probe asynchronously: wait for the node.
    const present = await g.sh(`for i in $(seq 1 300); do [ -b ${dev} ] && break; sleep 1; done; [ -b ${dev} ] && echo DEV-OK`, o.timeoutSec);
    if (!/^DEV-OK$/m.test(present.text)) throw new Error(`${label}: ${dev} did not appear: ${present.text}`);
    const fetched = await g.sh(`dd if=${dev} bs=4096 skip=${pay.skip} count=${pay.count} 2>/dev/null | head -c ${pay.bytes} > /tmp/blkbench; ` +
      "chmod +x /tmp/blkbench; md5sum /tmp/blkbench", o.timeoutSec);
    if (!fetched.text.includes(`${pay.md5}  /tmp/blkbench`)) throw new Error(`${label}: program copied out of ${dev} has the wrong md5: ${fetched.text}`);
    progress(`${dev} present, blkbench fetched (${(present.secs + fetched.secs).toFixed(1)} s)`);
    const tests = {} as Record<TestName, TestResult>;
    for (const t of TESTS) {
      const one = `/tmp/blkbench ${dev} ${t} ${o.mib} ${tag}${t === "randread" ? ` ${o.reads}` : ""}`;
      // --parallel N: N random readers at once (queue depth N), their operations summed over the slowest's time.
      const par = t === "randread" ? o.parallel : 1;
      const r = await g.sh(par === 1 ? one : `for i in $(seq 1 ${par}); do ${one} > /tmp/rr$i 2>&1 & done; wait; cat /tmp/rr*`, o.timeoutSec);
      const ms = [...r.text.matchAll(/BLKBENCH test=(\w+) bytes=(\d+) ops=(\d+) ns=(\d+) MBps=([\d.]+) iops=([\d.]+) ok=1/g)];
      if (ms.length !== par || ms.some((m) => m[1] !== t)) throw new Error(`${label}: ${t} failed: ${r.text.trim()}`);
      const bytes = ms.reduce((a, m) => a + Number(m[2]), 0), ops = ms.reduce((a, m) => a + Number(m[3]), 0);
      const guestSecs = Math.max(...ms.map((m) => Number(m[4]))) / 1e9;
      const perSec = t === "randread" ? ops : bytes / 2 ** 20;
      tests[t] = { rate: perSec / guestSecs, hostRate: perSec / r.secs, guestSecs, hostSecs: r.secs };
      progress(`${t} ${tests[t].rate.toFixed(t === "randread" ? 0 : 1)} ${t === "randread" ? "IOPS" : "MiB/s"} ` +
        `(guest ${guestSecs.toFixed(2)} s, host ${r.secs.toFixed(2)} s)`);
    }
    const guestSide = (performance.now() - t1) / 1000;
    await g.poweroff();
    return { boot, guestSide, tests };
  } finally {
    g.kill();
  }
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(", ");

/** Boots a guest, waits for its disk and fetches blkbench (as session() does). */
async function bootWithProgram(g: ConsoleGuest, dev: string, o: Options, pay: Payload): Promise<void> {
  await g.until((out) => out.includes(GUEST_READY_MARKER), "guest ready marker", o.timeoutSec);
  const present = await g.sh(`for i in $(seq 1 300); do [ -b ${dev} ] && break; sleep 1; done; [ -b ${dev} ] && echo DEV-OK`, o.timeoutSec);
  if (!/^DEV-OK$/m.test(present.text)) throw new Error(`${g.label}: ${dev} did not appear`);
  const fetched = await g.sh(`dd if=${dev} bs=4096 skip=${pay.skip} count=${pay.count} 2>/dev/null | head -c ${pay.bytes} > /tmp/blkbench; ` +
    "chmod +x /tmp/blkbench; md5sum /tmp/blkbench", o.timeoutSec);
  if (!fetched.text.includes(`${pay.md5}  /tmp/blkbench`)) throw new Error(`${g.label}: blkbench copied out with the wrong md5`);
}

/** One blkbench test in guest g: its rate (IOPS for randread, MiB/s otherwise). */
async function bench(g: ConsoleGuest, args: string, o: Options): Promise<number> {
  const r = await g.sh(`/tmp/blkbench /dev/xvda ${args}`, o.timeoutSec);
  const m = /BLKBENCH test=(\w+) bytes=(\d+) ops=(\d+) ns=(\d+) MBps=([\d.]+) iops=([\d.]+) ok=1/.exec(r.text);
  if (!m) throw new Error(`${g.label}: blkbench ${args} failed: ${r.text.trim()}`);
  const secs = Number(m[4]) / 1e9;
  return m[1] === "randread" ? Number(m[3]) / secs : Number(m[2]) / 2 ** 20 / secs;
}

/** --pair: B's random reads alone and next to A writing flat out (see the file comment). */
async function pairMode(o: Options, img: { kernel: string; initrd: string; kernelVersion: string }, prog: Buffer, dir: string): Promise<void> {
  const cfgOf = (name: string, disk: string, opts: string): string => {
    const cfg = path.join(dir, `${name}.cfg`);
    fs.writeFileSync(cfg, `name = "${name}"\nmemory = 256\nvcpus = ${o.vcpus}\nkernel = "${img.kernel}"\nramdisk = "${img.initrd}"\n` +
      `cmdline = "${o.append ? `${CMDLINE} ${o.append}` : CMDLINE}"\ndisk = [ 'format=raw, vdev=xvda, access=rw, ${opts ? `${opts}, ` : ""}target=${disk}' ]\n` +
      `on_poweroff = "destroy"\non_reboot = "destroy"\n`);
    return cfg;
  };
  const diskA = path.join(dir, "a.img"), diskB = path.join(dir, "b.img");
  const pay = makeImage(diskA, o.area, prog);
  makeImage(diskB, o.area, prog);
  const xeno = (cfg: string): string[] => [path.join(ROOT, "dist/src/cli/main.js"), "create", "--standalone", "-c", cfg];
  const loadStart = load();
  process.stderr.write(`bench/io --pair: A writes flat out${o.diskOpts ? ` (A's disk: ${o.diskOpts})` : ""}, B reads at random; load ${loadStart}\n`);
  const a = new ConsoleGuest("A", process.execPath, xeno(cfgOf("bench-io-a", diskA, o.diskOpts)));
  const b = new ConsoleGuest("B", process.execPath, xeno(cfgOf("bench-io-b", diskB, "")));
  try {
    await Promise.all([bootWithProgram(a, "/dev/xvda", o, pay), bootWithProgram(b, "/dev/xvda", o, pay)]);
    await bench(b, `seqwrite ${o.mib} 7`, o);
    const solo: number[] = [], busy: number[] = [];
    for (let k = 0; k < o.runs; k++) solo.push(await bench(b, `randread ${o.mib} 7 ${o.reads}`, o));
    process.stderr.write(`  B alone: ${solo.map((x) => x.toFixed(0)).join(", ")} IOPS\n`);
    // A's writer: seqwrite again and again in the background, each pass's rate appended to /tmp/w.log.
    await a.sh(`(while :; do /tmp/blkbench /dev/xvda seqwrite ${o.mib} 9 >> /tmp/w.log; done) > /dev/null 2>&1 & echo $! > /tmp/w.pid`, o.timeoutSec);
    await new Promise((r) => setTimeout(r, 3000));
    for (let k = 0; k < o.runs; k++) busy.push(await bench(b, `randread ${o.mib} 7 ${o.reads}`, o));
    const w = await a.sh("kill $(cat /tmp/w.pid); sleep 1; cat /tmp/w.log", o.timeoutSec);
    const wrates = [...w.text.matchAll(/MBps=([\d.]+)/g)].map((m) => Number(m[1]) * 1e6 / 2 ** 20);
    process.stderr.write(`  B next to A: ${busy.map((x) => x.toFixed(0)).join(", ")} IOPS; A's passes: ${wrates.map((x) => x.toFixed(1)).join(", ")} MiB/s\n`);
    const ms = median(solo), mb = median(busy);
    console.log(`bench/io --pair (${img.kernelVersion}, 256 MiB, ${o.vcpus} vCPU each; A: seqwrite ${o.mib} MiB in a loop${o.diskOpts ? `, disk ${o.diskOpts}` : ""}; ` +
      `B: ${o.reads} random 4 KiB reads), medians of ${o.runs}; load ${loadStart} → ${load()}:`);
    console.log(`  B alone ${ms.toFixed(0)} IOPS; B next to A ${mb.toFixed(0)} IOPS: ${(100 * mb / ms).toFixed(0)} % of solo; ` +
      `A wrote ${wrates.length ? median(wrates).toFixed(1) : "n/a"} MiB/s (median of ${wrates.length} passes)`);
    await Promise.all([a.poweroff(), b.poweroff()]);
  } finally {
    a.kill();
    b.kill();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  fs.mkdirSync(OUT, { recursive: true });
  const img = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const prog = fs.readFileSync(compileBlkbench());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xeno-bench-io-"));
  try {
    if (o.pair) { await pairMode(o, img, prog, dir); return; }
    const disk = path.join(dir, "disk.img");
    const pay = makeImage(disk, o.area, prog);
    const cfg = path.join(dir, "bench-io.cfg");
    const cmdline = o.append ? `${CMDLINE} ${o.append}` : CMDLINE;
    const diskOpts = o.diskOpts ? `${o.diskOpts}, ` : "";
    fs.writeFileSync(cfg, `name = "bench-io"\nmemory = 256\nvcpus = ${o.vcpus}\nkernel = "${img.kernel}"\nramdisk = "${img.initrd}"\n` +
      `cmdline = "${cmdline}"\ndisk = [ 'format=raw, vdev=xvda, access=rw, ${diskOpts}target=${disk}' ]\non_poweroff = "destroy"\non_reboot = "destroy"\n`);
    const node = o.cpuProf ? [`--cpu-prof`, `--cpu-prof-dir=${o.cpuProf}`] : [];
    const xeno = [...node, path.join(ROOT, "dist/src/cli/main.js"), "create", "--standalone", "-c", cfg];
    const qemu = ["-M", "virt", "-cpu", "cortex-a72", "-m", "256", "-smp", String(o.vcpus), "-nographic", "-no-reboot", "-nic", "none",
      "-kernel", img.kernel, "-initrd", img.initrd, "-append", cmdline,
      "-drive", `file=${disk},if=none,format=raw,id=d0`, "-device", "virtio-blk-pci,drive=d0"];
    const sides: { name: string; cmd: string; args: string[]; dev: string; runs: Session[]; env?: Record<string, string> }[] = [
      { name: "xeno", cmd: process.execPath, args: xeno, dev: "/dev/xvda", runs: [] as Session[] },
      ...(o.ab ? [{ name: `xeno ${o.ab[0]}=${o.ab[1]}`, cmd: process.execPath, args: xeno, dev: "/dev/xvda", runs: [] as Session[],
        env: { [o.ab[0]]: o.ab[1] } }] : []),
      { name: "qemu", cmd: "qemu-system-aarch64", args: qemu, dev: "/dev/vda", runs: [] as Session[] },
    ].filter((s) => o.only === undefined || s.name.startsWith(o.only));
    const loadStart = load();
    process.stderr.write(`bench/io: ${o.runs} runs each, alternated; image ${disk} (${o.area} MiB + ${pay.count * 4} KiB program); load ${loadStart}\n`);
    let tag = 0;
    for (let k = 0; k < o.runs; k++) {
      for (const s of sides) {
        process.stderr.write(`run ${k + 1}/${o.runs} ${s.name}:\n`);
        s.runs.push(await session(s.name, s.cmd, s.args, s.dev, o, pay, ++tag, s.env));
      }
    }
    const unit = (t: TestName): string => t === "randread" ? "IOPS" : "MiB/s";
    const fmt = (v: number | undefined, t: TestName): string => v === undefined ? "n/a" : `${v.toFixed(t === "randread" ? 0 : 1)} ${unit(t)}`;
    const med = (s: typeof sides[number] | undefined, f: (x: Session) => number): number | undefined => s && s.runs.length ? median(s.runs.map(f)) : undefined;
    const x = sides.find((s) => s.name === "xeno"), q = sides.find((s) => s.name === "qemu");
    const rows: string[][] = [["test", "Xeno (blkfront→blkback)", "QEMU TCG (virtio-blk)", "ratio Xeno/QEMU", "host-timed Xeno", "host-timed QEMU"]];
    const desc: Record<TestName, string> = { seqwrite: `seq write 1 MiB, ${o.mib} MiB + fsync`, seqread: `seq read 1 MiB, ${o.mib} MiB`,
      randread: `rand read 4 KiB ×${o.reads}${o.parallel > 1 ? ` ×${o.parallel} readers` : ""}` };
    for (const t of TESTS) {
      const mx = med(x, (r) => r.tests[t].rate), mq = med(q, (r) => r.tests[t].rate);
      rows.push([desc[t], fmt(mx, t), fmt(mq, t), mx !== undefined && mq !== undefined ? `${(mx / mq).toFixed(2)}x` : "n/a",
        fmt(med(x, (r) => r.tests[t].hostRate), t), fmt(med(q, (r) => r.tests[t].hostRate), t)]);
    }
    const secs = (v: number | undefined): string => v === undefined ? "n/a" : `${v.toFixed(1)} s`;
    rows.push(["boot to marker (not in the above)", secs(med(x, (r) => r.boot)), secs(med(q, (r) => r.boot)), "", "", ""]);
    rows.push(["guest side: marker → tests done", secs(med(x, (r) => r.guestSide)), secs(med(q, (r) => r.guestSide)), "", "", ""]);
    const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    console.log(`block I/O (${img.kernelVersion}, 256 MiB, ${o.vcpus} vCPU, O_DIRECT, queue depth 1${o.append ? `, +"${o.append}"` : ""}` +
      `${o.diskOpts ? `, Xeno disk ${o.diskOpts}` : ""}), median of ${o.runs}; load ${loadStart} → ${load()}:`);
    for (const r of rows) console.log(`  ${r.map((c, i) => c.padEnd(w[i])).join("  ")}`);
    const ab = sides.find((s) => s.name.startsWith("xeno ") && s.runs.length > 0);
    if (ab !== undefined && x !== undefined && x.runs.length > 0) {
      console.log(`  A/B: ${ab.name} vs xeno (defaults), medians:`);
      for (const t of TESTS) {
        const a = med(x, (r) => r.tests[t].rate)!, b = med(ab, (r) => r.tests[t].rate)!;
        console.log(`    ${desc[t].padEnd(w[0])}  xeno ${fmt(a, t)}  ${ab.name} ${fmt(b, t)}  (defaults/${ab.name.slice(5)}: ${(a / b).toFixed(2)}x)`);
      }
    }
    for (const s of sides) {
      for (const t of TESTS) console.log(`  ${s.name} ${t} runs: ${s.runs.map((r) => r.tests[t].rate.toFixed(t === "randread" ? 0 : 1)).join(", ")}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/io: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
