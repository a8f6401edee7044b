/**
 * bench/net: TCP throughput between the guest and the host — the stock Debian kernel's xen-netfront against
 * Xeno's netback, a bridge daemon (src/net) and its passt uplink (`xeno create -c` with
 * `vif = [ 'mac=…, bridge=benchbr' ]`) vs its virtio-net against QEMU TCG (`qemu-system-aarch64 -M virt
 * -cpu cortex-a72`, virtio-net-pci) with passt as QEMU's uplink too (`-netdev stream` to `passt -s SOCK`, the
 * same passt options as the bridge daemon's) or, with --qemu-uplink slirp, QEMU's own user-mode stack. Same
 * kernel, initramfs, memory; sessions alternated, median of N runs each, ratio Xeno/QEMU throughput.
 *
 *   node dist/bench/net/run.js [--runs N] [--mib MiB] [--qemu-mib MiB] [--timeout SEC] [--only xeno|qemu]
 *                              [--qemu-uplink passt|slirp] [--cpu-prof DIR] [--xeno-variant NAME:K=V[,K=V…]]…
 *                              [--netfront-queues N]
 *
 * --xeno-variant (repeatable) runs Xeno once per variant in each round, with those environment variables set
 * for `xeno create` and the bridge daemon — an A/B of a feature switch in one invocation, e.g.
 * `--xeno-variant off:XENO_NET_RX_GSO=0,XENO_NET_BATCH=0 --xeno-variant on:` (NAME: with nothing after it
 * changes nothing). Without it there is one Xeno side, with the caller's environment. --netfront-queues N puts
 * xen_netfront.max_queues=N on the Xeno guest's command line (a 1-vCPU guest's netfront takes one queue otherwise),
 * so `--netfront-queues 2 --xeno-variant q1:XENO_NET_QUEUES=1 --xeno-variant q2:` compares 1 and 2 queues.
 *
 * Both guests get the same static setup on the console (eth0 10.0.2.15/24, default route via 10.0.2.2, which
 * passt and slirp both map to the host's loopback; MTU 1500, no offloads on either side's wire). The transfers
 * use busybox nc's -e, so the sending or receiving program holds the socket itself (no pipe through nc):
 *   guest → host  `nc 10.0.2.2 PORT -e /tmp/tx`, /tmp/tx runs `dd if=/dev/zero bs=65536 count=…` to a Node TCP
 *                 server on the host's 127.0.0.1:PORT that counts the bytes; timed on the host from the first
 *                 byte to the guest's FIN;
 *   host → guest  `nc -l -p 5001 -e /tmp/rx`, /tmp/rx runs `dd of=/dev/null bs=65536`, reached through a passt
 *                 port forward (bridge-main --forward tcp:HOSTPORT:5001; passt -t HOSTPORT:5001; slirp hostfwd);
 *                 the host connects, writes --mib MiB in 64 KiB writes and ends; timed from connect() to the
 *                 close that follows the guest's dd exiting (so every byte reached the guest's program).
 * Byte counts are checked on both sides (the host's counter; dd's full 64 KiB records in the guest, with
 * iflag=fullblock on the receiving dd), and the guest's own timing of its dd (/proc/uptime before and after,
 * 10 ms ticks) is reported as a cross-check. --mib (default 8) is for Xeno, --qemu-mib (default
 * 64) for QEMU, so that both transfers last long enough to time (Xeno's CPU is an interpreter).
 *
 * Xeno: the bridge daemon is started by this program (it needs the port forward) in a private XENO_RUN_DIR with
 * `--uplink passt --uplink-owner 00:16:3e:00:00:0a`, then `xeno create` joins it; it is stopped (SIGTERM through
 * <dir>/net/benchbr.pid) after each session. passt learns the guest's MAC from its first frame, so the guest
 * pings the gateway once before any transfer.
 *
 * Per transfer the guest's counters are read before and after (eth0 rx/tx frames, Tcp RetransSegs, TcpExt
 * TCPOFOQueue), and for Xeno the bridge's (SIGUSR1 → its stats line: frames switched to the vif's port and
 * tail-dropped there), so frames lost between the bridge and the guest's eth0 (netback's rx path) show up —
 * with receive-side GSO the guest counts one packet per joined run of segments, so the difference is then
 * mostly joining, not loss (the guest's TCP retransmit and out-of-order counters tell loss apart).
 * A host → guest transfer that fails (e.g. reset by passt) is reported and left out of the medians.
 *
 * Timings never decide pass/fail; record results in docs/benchmarks.md.
 */
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { framedCommand, framedOutput } from "../../test/xen/run-machine.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const BRIDGE = "benchbr";
const XENO_MAC = "00:16:3e:00:00:0a";
const GUEST_PORT = 5001;
const CHUNK = 65536;
/** The bridge daemon's passt options (src/net/passt.ts passtArgs), minus its -s PATH -1: QEMU's passt gets the same. */
const PASST_NET = ["-4", "-a", "10.0.2.15", "-n", "24", "-g", "10.0.2.2", "-M", "9a:55:9a:55:9a:55", "-u", "none"];
const DIRS = ["guest→host", "host→guest"] as const;
type Dir = typeof DIRS[number];

interface Options {
  runs: number; mib: number; qemuMib: number; timeoutSec: number; only?: "xeno" | "qemu";
  qemuUplink: "passt" | "slirp"; cpuProf?: string;
  /** xen_netfront.max_queues=N on the Xeno guest's command line (netfront's own default: one per vCPU, here 1). */
  netfrontQueues?: number;
  /** Xeno variants: a name and environment overrides (empty: one plain Xeno side). */
  variants: { name: string; env: Record<string, string> }[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 2, mib: 8, qemuMib: 64, timeoutSec: 600, qemuUplink: "passt", variants: [] };
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
    else if (a === "--qemu-mib") o.qemuMib = int();
    else if (a === "--timeout") o.timeoutSec = int();
    else if (a === "--netfront-queues") o.netfrontQueues = int();
    else if (a === "--only") {
      const v = val();
      if (v !== "xeno" && v !== "qemu") throw new Error("--only xeno|qemu");
      o.only = v;
    } else if (a === "--qemu-uplink") {
      const v = val();
      if (v !== "passt" && v !== "slirp") throw new Error("--qemu-uplink passt|slirp");
      o.qemuUplink = v;
    } else if (a === "--cpu-prof") o.cpuProf = path.resolve(val());
    else if (a === "--xeno-variant") {
      const v = val(), colon = v.indexOf(":");
      if (colon < 1) throw new Error("--xeno-variant NAME:K=V[,K=V…]");
      const env: Record<string, string> = {};
      for (const kv of v.slice(colon + 1).split(",").filter((x) => x !== "")) {
        const eq = kv.indexOf("=");
        if (eq < 1) throw new Error(`--xeno-variant: ${kv} is not K=V`);
        env[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      o.variants.push({ name: v.slice(0, colon), env });
    }
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: node dist/bench/net/run.js [--runs N] [--mib MiB] [--qemu-mib MiB] [--timeout SEC] " +
        "[--only xeno|qemu] [--qemu-uplink passt|slirp] [--cpu-prof DIR] [--xeno-variant NAME:K=V[,K=V…]]… [--netfront-queues N]\n");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** A guest driven through its console: stdout is collected, commands typed on stdin (as bench/io). */
class ConsoleGuest {
  private out = "";
  private err = "";
  private exited: number | null | undefined = undefined;
  private waiters: (() => void)[] = [];
  private n = 0;
  readonly p: ChildProcessWithoutNullStreams;

  constructor(readonly label: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
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

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitForPath(p: string, what: string, ms: number, log: () => string): Promise<void> {
  for (const t0 = Date.now(); !fs.existsSync(p); await sleep(100)) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: ${p} did not appear in ${ms / 1000} s; log: ${log().slice(-800)}`);
  }
}

/** A helper process (bridge daemon, passt) whose output is kept for error messages. */
interface Helper { p: ChildProcess; log: () => string; stats: string[] }

function helper(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Helper {
  const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env });
  let log = "", part = "";
  const stats: string[] = [];
  const keep = (d: Buffer): void => {
    const text = d.toString("latin1");
    log = (log + text.replace(/^Failed to send \d+ bytes to syslog\n/gm, "")).slice(-8000);
    const lines = (part + text).split("\n");
    part = lines.pop() ?? "";
    for (const l of lines) { const m = / stats (\{.*\})$/.exec(l); if (m) stats.push(m[1]); }
  };
  p.stdout!.on("data", keep);
  p.stderr!.on("data", keep);
  return { p, log: () => log, stats };
}

/** Frames the bridge sent to the vif's port, and those it tail-dropped there (SIGUSR1 → its stats line). */
interface BridgeCount { toVif: number; tailDropped: number }

async function bridgeCount(d: Helper): Promise<BridgeCount | undefined> {
  const n = d.stats.length;
  if (d.p.pid === undefined) return undefined;
  process.kill(d.p.pid, "SIGUSR1");
  for (let i = 0; i < 50 && d.stats.length === n; i++) await sleep(40);
  if (d.stats.length === n) return undefined;
  const st = JSON.parse(d.stats[d.stats.length - 1]) as { ports: { name: string; txFrames: number; txDropped: number }[] };
  const vif = st.ports.filter((p) => p.name.startsWith("vif#"));
  return { toVif: vif.reduce((a, p) => a + p.txFrames, 0), tailDropped: vif.reduce((a, p) => a + p.txDropped, 0) };
}

async function stop(p: ChildProcess, pid?: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once("exit", () => r()));
  if (pid !== undefined) { try { process.kill(pid, "SIGTERM"); } catch { /* already gone */ } } else p.kill("SIGTERM");
  await Promise.race([gone, sleep(5000)]);
  if (p.exitCode === null && p.signalCode === null) { p.kill("SIGKILL"); await gone; }
}

/**
 * Guest → host: a one-connection TCP server on 127.0.0.1 counting bytes; resolves with the bytes and the seconds
 * from the first byte to the guest's FIN. `ready` is the listening port.
 */
function sink(timeoutSec: number): { port: Promise<number>; result: Promise<{ bytes: number; secs: number }>; close: () => void } {
  const srv = net.createServer();
  let timer: NodeJS.Timeout | undefined;
  const result = new Promise<{ bytes: number; secs: number }>((resolve, reject) => {
    timer = setTimeout(() => { srv.close(); reject(new Error(`guest→host: no complete transfer within ${timeoutSec} s`)); }, timeoutSec * 1000);
    srv.on("connection", (s) => {
      srv.close();
      let bytes = 0, t0 = 0;
      s.on("data", (d: Buffer) => { if (bytes === 0) t0 = performance.now(); bytes += d.length; });
      s.on("end", () => { const secs = (performance.now() - t0) / 1000; clearTimeout(timer); s.end(); resolve({ bytes, secs }); });
      s.on("error", (e) => { clearTimeout(timer); reject(e); });
    });
  });
  const port = new Promise<number>((r) => srv.listen(0, "127.0.0.1", () => r((srv.address() as net.AddressInfo).port)));
  return { port, result, close: () => { clearTimeout(timer); srv.close(); } };
}

/**
 * Host → guest: connects to the forwarded port, writes `bytes` in 64 KiB writes (honouring backpressure) and
 * ends; resolves with the seconds from connect() to the socket's close (the guest's program exited after EOF).
 */
function push(port: number, bytes: number, timeoutSec: number): Promise<{ written: number; secs: number }> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.alloc(CHUNK);
    const t0 = performance.now();
    let written = 0, failed: Error | undefined;
    const s = net.connect({ port, host: "127.0.0.1" });
    const timer = setTimeout(() => { s.destroy(new Error(`host→guest: not done within ${timeoutSec} s (${written} bytes written)`)); }, timeoutSec * 1000);
    const pump = (): void => {
      while (written < bytes) {
        const n = Math.min(CHUNK, bytes - written);
        written += n;
        if (!s.write(n === CHUNK ? buf : buf.subarray(0, n))) { s.once("drain", pump); return; }
      }
      s.end();
    };
    s.on("connect", pump);
    s.on("data", () => {});
    s.on("error", (e) => { failed = e; });
    s.on("close", () => {
      clearTimeout(timer);
      if (failed) reject(failed); else resolve({ written, secs: (performance.now() - t0) / 1000 });
    });
  });
}

/** The guest's eth0 frame counters and TCP counters (/proc/net/snmp, /proc/net/netstat). */
type Counters = Map<string, number>;

async function counters(g: ConsoleGuest, timeoutSec: number): Promise<Counters> {
  const r = await g.sh("echo eth0: rx tx; echo eth0: $(cat /sys/class/net/eth0/statistics/rx_packets) " +
    "$(cat /sys/class/net/eth0/statistics/tx_packets); grep '^Tcp:' /proc/net/snmp; grep '^TcpExt:' /proc/net/netstat", timeoutSec);
  const lines = r.text.split("\n").map((l) => l.trim().split(/\s+/));
  const c: Counters = new Map();
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [h, v] = [lines[i], lines[i + 1]];
    for (let k = 1; k < h.length; k++) if (v[k] !== undefined) c.set(`${h[0].replace(/:$/, "")}.${h[k]}`, Number(v[k]));
  }
  return c;
}

/** What happened on the wire during one transfer (deltas). */
interface Diag {
  guestRxFrames: number; guestTxFrames: number; retransSegs: number; ofoQueue: number;
  /** Xeno: frames the bridge switched to the vif, and frames of those that never reached the guest's eth0. */
  bridgeToVif?: number; lostBeforeGuest?: number; tailDropped?: number;
}

function diag(a: Counters, b: Counters, ba?: BridgeCount, bb?: BridgeCount): Diag {
  const d = (k: string): number => (b.get(k) ?? NaN) - (a.get(k) ?? NaN);
  const out: Diag = { guestRxFrames: d("eth0.rx"), guestTxFrames: d("eth0.tx"), retransSegs: d("Tcp.RetransSegs"), ofoQueue: d("TcpExt.TCPOFOQueue") };
  if (ba && bb) {
    out.bridgeToVif = bb.toVif - ba.toVif;
    out.lostBeforeGuest = out.bridgeToVif - out.guestRxFrames;
    out.tailDropped = bb.tailDropped - ba.tailDropped;
  }
  return out;
}

const diagText = (x: Diag): string => `guest eth0 rx ${x.guestRxFrames} / tx ${x.guestTxFrames} frames, TCP retransmits by the guest ` +
  `${x.retransSegs}, out-of-order segments queued by the guest ${x.ofoQueue}` +
  (x.bridgeToVif === undefined ? "" : `; bridge → vif ${x.bridgeToVif} frames, ${x.lostBeforeGuest} more than eth0 counted ` +
    "(lost, or joined into GSO packets by netback), " +
    `${x.tailDropped} tail-dropped in the bridge`);

/** One transfer; a failed one (e.g. reset by passt) has NaN rates and `failed` set, and counts in no median. */
interface DirResult { rate: number; guestRate: number; secs: number; bytes: number; diag: Diag; failed?: string }
interface Session { boot: number; dirs: Record<Dir, DirResult> }

/**
 * A guest script for nc -e: the dd, timed with /proc/uptime (10 ms ticks; Debian's busybox dd prints no time),
 * its record counts and the times to /tmp/NAME.log.
 */
const script = (name: string, dd: string): string =>
  `printf '%s\\n' '#!/bin/sh' 'read a b < /proc/uptime' '${dd} 2>/tmp/${name}.log' 'read c d < /proc/uptime' ` +
  `'echo UPTIME $a $c >> /tmp/${name}.log' > /tmp/${name}; chmod +x /tmp/${name}; `;

/** Parses a script's log: bytes in full 64 KiB records (partial records make it undefined) and the guest's seconds. */
function ddLog(text: string): { bytes: number; secs: number } | undefined {
  const r = /(\d+)\+(\d+) records in/.exec(text), t = /UPTIME ([\d.]+) ([\d.]+)/.exec(text);
  if (!r || !t || r[2] !== "0") return undefined;
  return { bytes: Number(r[1]) * CHUNK, secs: Math.max(Number(t[2]) - Number(t[1]), 0.01) };
}

const MB = 1e6;

/** One boot of one hypervisor: boot, configure eth0, guest → host, host → guest, power off. */
async function session(label: string, g: ConsoleGuest, mib: number, fwdPort: number, o: Options,
  bridge?: () => Promise<BridgeCount | undefined>): Promise<Session> {
  const progress = (m: string): void => { process.stderr.write(`  ${label}: ${m}\n`); };
  const bytes = mib * 2 ** 20, count = bytes / CHUNK;
  const t0 = performance.now();
  await g.until((out) => out.includes(GUEST_READY_MARKER), "guest ready marker", o.timeoutSec);
  const boot = (performance.now() - t0) / 1000;
  progress(`marker after ${boot.toFixed(1)} s`);
  const up = await g.sh("for i in $(seq 1 300); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done; " +
    "ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 && echo NET-OK; " +
    script("tx", `dd if=/dev/zero bs=${CHUNK} count=${count}`) + script("rx", `dd of=/dev/null bs=${CHUNK} iflag=fullblock`) +
    "ping -c 1 -W 3 10.0.2.2 >/dev/null 2>&1; true", o.timeoutSec);
  if (!/^NET-OK$/m.test(up.text)) throw new Error(`${label}: eth0 setup failed: ${up.text}`);
  progress(`eth0 up (${up.secs.toFixed(1)} s)`);
  const dirs = {} as Record<Dir, DirResult>;

  const snap = async (): Promise<[Counters, BridgeCount | undefined]> => [await counters(g, o.timeoutSec), await bridge?.()];

  // Guest → host.
  const s = sink(o.timeoutSec);
  try {
    const [c0, b0] = await snap();
    const port = await s.port;
    const cmd = g.sh(`nc 10.0.2.2 ${port} -e /tmp/tx; cat /tmp/tx.log`, o.timeoutSec);
    const r = await s.result;
    const out = await cmd;
    const dd = ddLog(out.text);
    if (r.bytes !== bytes) throw new Error(`${label}: guest→host: the host received ${r.bytes} bytes, not ${bytes}; guest: ${out.text}`);
    if (!dd || dd.bytes !== bytes) throw new Error(`${label}: guest→host: the guest's dd says: ${out.text}`);
    const [c1, b1] = await snap();
    dirs["guest→host"] = { rate: bytes / MB / r.secs, guestRate: bytes / MB / dd.secs, secs: r.secs, bytes, diag: diag(c0, c1, b0, b1) };
  } finally {
    s.close();
  }
  progress(`guest→host ${dirs["guest→host"].rate.toFixed(2)} MB/s (${mib} MiB in ${dirs["guest→host"].secs.toFixed(2)} s; ` +
    `guest dd ${dirs["guest→host"].guestRate.toFixed(2)} MB/s); ${diagText(dirs["guest→host"].diag)}`);

  // Host → guest: a background listener, a moment for it to listen, the transfer, then `wait` and dd's count.
  const [c0, b0] = await snap();
  await g.sh(`rm -f /tmp/rx.log; nc -l -p ${GUEST_PORT} -e /tmp/rx >/dev/null 2>&1 & sleep 1`, o.timeoutSec);
  const w = await push(fwdPort, bytes, o.timeoutSec).catch((e: Error) => e);
  const out = await g.sh("wait; cat /tmp/rx.log", o.timeoutSec);
  const dd = ddLog(out.text);
  const [c1, b1] = await snap();
  if (w instanceof Error || !dd || dd.bytes !== bytes) {
    const failed = `${w instanceof Error ? w.message : `wrote ${w.written} bytes`}; the guest's dd says: ${out.text.replace(/\n/g, " | ")}`;
    dirs["host→guest"] = { rate: NaN, guestRate: NaN, secs: NaN, bytes, diag: diag(c0, c1, b0, b1), failed };
    progress(`host→guest FAILED: ${failed}; ${diagText(dirs["host→guest"].diag)}`);
    await g.poweroff();
    return { boot, dirs };
  }
  dirs["host→guest"] = { rate: bytes / MB / w.secs, guestRate: bytes / MB / dd.secs, secs: w.secs, bytes, diag: diag(c0, c1, b0, b1) };
  progress(`host→guest ${dirs["host→guest"].rate.toFixed(2)} MB/s (${mib} MiB in ${w.secs.toFixed(2)} s; ` +
    `guest dd ${dirs["host→guest"].guestRate.toFixed(2)} MB/s); ${diagText(dirs["host→guest"].diag)}`);
  await g.poweroff();
  return { boot, dirs };
}

/** Xeno: the bridge daemon with the forward, then `xeno create` joining it; the daemon stopped afterwards. */
async function xenoSession(o: Options, cfg: string, runDir: string, profDir: string | undefined,
  extraEnv: Record<string, string> = {}): Promise<Session> {
  const fwd = await freePort();
  const env = { ...process.env, ...extraEnv, XENO_RUN_DIR: runDir };
  const prof = profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [];
  const d = helper(process.execPath, [...prof, path.join(ROOT, "dist/src/net/bridge-main.js"), "--name", BRIDGE, "--run-dir", runDir,
    "--uplink", "passt", "--forward", `tcp:${fwd}:${GUEST_PORT}`, "--uplink-owner", XENO_MAC], env);
  const pidFile = path.join(runDir, "net", `${BRIDGE}.pid`);
  let g: ConsoleGuest | undefined;
  try {
    await waitForPath(path.join(runDir, "net", `${BRIDGE}.sock`), "bridge daemon", 15_000, d.log);
    g = new ConsoleGuest("xeno", process.execPath, [...prof, path.join(ROOT, "dist/src/cli/main.js"), "create", "--standalone", "-c", cfg], env);
    return await session("xeno", g, o.mib, fwd, o, () => bridgeCount(d));
  } catch (e) {
    throw new Error(`${(e as Error).message}\nbridge daemon log: ${d.log().slice(-1500)}`);
  } finally {
    g?.kill();
    let pid: number | undefined;
    try { pid = Number(fs.readFileSync(pidFile, "utf8").trim()) || undefined; } catch { /* not written */ }
    await stop(d.p, pid);
  }
}

/** QEMU: passt listening on a socket in a directory it can bind in (it drops to nobody; --one-off: it exits with QEMU), or slirp. */
async function qemuSession(o: Options, img: { kernel: string; initrd: string }, dir: string): Promise<Session> {
  const fwd = await freePort();
  let passt: Helper | undefined;
  let netdev: string;
  if (o.qemuUplink === "passt") {
    const sdir = fs.mkdtempSync(path.join(dir, "passt-"));
    fs.chmodSync(sdir, 0o777);
    const sock = path.join(sdir, "passt.sock");
    passt = helper("passt", ["-f", "-e", "--one-off", "-s", sock, ...PASST_NET, "-t", `${fwd}:${GUEST_PORT}`]);
    await waitForPath(sock, "passt", 10_000, passt.log);
    netdev = `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`;
  } else netdev = `user,id=n0,net=10.0.2.0/24,host=10.0.2.2,hostfwd=tcp:127.0.0.1:${fwd}-:${GUEST_PORT}`;
  const args = ["-M", "virt", "-cpu", "cortex-a72", "-m", "256", "-smp", "1", "-nographic", "-no-reboot",
    "-kernel", img.kernel, "-initrd", img.initrd, "-append", "console=ttyAMA0 rdinit=/init",
    "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile="];
  const g = new ConsoleGuest("qemu", "qemu-system-aarch64", args);
  try {
    return await session("qemu", g, o.qemuMib, fwd, o);
  } catch (e) {
    throw new Error(`${(e as Error).message}${passt ? `\npasst log: ${passt.log().slice(-1500)}` : ""}`);
  } finally {
    g.kill();
    if (passt) await stop(passt.p);
  }
}

function median(v: number[]): number {
  const s = v.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(", ");

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const img = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xeno-bench-net-"));
  fs.chmodSync(dir, 0o755);
  try {
    const runDir = path.join(dir, "run");
    const cfg = path.join(dir, "bench-net.cfg");
    fs.writeFileSync(cfg, `name = "bench-net"\nmemory = 256\nvcpus = 1\nkernel = "${img.kernel}"\nramdisk = "${img.initrd}"\n` +
      `vif = [ 'mac=${XENO_MAC}, bridge=${BRIDGE}' ]\non_poweroff = "destroy"\non_reboot = "destroy"\n` +
      (o.netfrontQueues !== undefined ? `extra = "xen_netfront.max_queues=${o.netfrontQueues}"\n` : ""));
    const variants = o.variants.length > 0 ? o.variants : [{ name: "", env: {} }];
    const sides = [
      ...variants.map((v) => ({ name: "xeno", label: v.name === "" ? "xeno" : `xeno[${v.name}]`,
        run: () => xenoSession(o, cfg, runDir, o.cpuProf, v.env), runs: [] as Session[] })),
      { name: "qemu", label: "qemu", run: () => qemuSession(o, img, dir), runs: [] as Session[] },
    ].filter((s) => o.only === undefined || s.name === o.only);
    if (o.variants.length > 0) {
      process.stderr.write(`Xeno variants: ${o.variants.map((v) => `${v.name} ${JSON.stringify(v.env)}`).join("; ")}\n`);
    }
    const loadStart = load();
    const qemuNet = o.qemuUplink === "passt" ? "virtio-net → -netdev stream → passt" : "virtio-net → -netdev user (slirp)";
    process.stderr.write(`bench/net: ${o.runs} runs each, alternated; Xeno ${o.mib} MiB, QEMU ${o.qemuMib} MiB per transfer; ` +
      `QEMU uplink ${o.qemuUplink}; load ${loadStart}\n`);
    for (let k = 0; k < o.runs; k++) {
      for (const s of sides) {
        process.stderr.write(`run ${k + 1}/${o.runs} ${s.label}:\n`);
        s.runs.push(await s.run());
      }
    }
    const q = sides.find((s) => s.name === "qemu");
    const med = (s: typeof sides[number] | undefined, f: (x: Session) => number): number | undefined => s && s.runs.length ? median(s.runs.map(f)) : undefined;
    const fmt = (v: number | undefined): string => v === undefined ? "n/a" : Number.isNaN(v) ? "all failed" : `${v.toFixed(2)} MB/s`;
    const secs = (v: number | undefined): string => v === undefined ? "n/a" : `${v.toFixed(1)} s`;
    const rows: string[][] = [["direction", "Xeno (netfront→netback→bridge→passt)", `QEMU TCG (${qemuNet})`, "ratio Xeno/QEMU",
      "guest-timed Xeno", "guest-timed QEMU"]];
    const xenos = sides.filter((s) => s.name === "xeno");
    for (const x of xenos.length > 0 ? xenos : [undefined]) {
      const tag = x === undefined || x.label === "xeno" ? "" : ` ${x.label}`;
      for (const d of DIRS) {
        const mx = med(x, (r) => r.dirs[d].rate), mq = med(q, (r) => r.dirs[d].rate);
        rows.push([`${d} TCP${tag}`, fmt(mx), fmt(mq), mx !== undefined && mq !== undefined ? `${(mx / mq).toFixed(2)}x` : "n/a",
          fmt(med(x, (r) => r.dirs[d].guestRate)), fmt(med(q, (r) => r.dirs[d].guestRate))]);
      }
      rows.push([`boot to marker${tag} (not in the above)`, secs(med(x, (r) => r.boot)), secs(med(q, (r) => r.boot)), "", "", ""]);
    }
    const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    console.log(`TCP throughput (${img.kernelVersion}, 256 MiB, 1 vCPU, MTU 1500; MB = 10^6 bytes; Xeno ${o.mib} MiB, ` +
      `QEMU ${o.qemuMib} MiB per transfer), median of ${o.runs}; load ${loadStart} → ${load()}:`);
    for (const r of rows) console.log(`  ${r.map((c, i) => c.padEnd(w[i])).join("  ")}`);
    console.log(`  uplinks: Xeno bridge daemon (${BRIDGE}) → passt (-s, unix socket; -F 3, a socketpair, where XENO_PASST_TAP=fd); QEMU ${o.qemuUplink === "passt" ? "passt -s (unix socket), same passt options" : "slirp (-netdev user, hostfwd)"}`);
    for (const s of sides) {
      for (const d of DIRS) {
        console.log(`  ${s.label} ${d} runs: ${s.runs.map((r) => r.dirs[d].failed ? "failed" : r.dirs[d].rate.toFixed(2)).join(", ")} MB/s`);
        s.runs.forEach((r, k) => console.log(`    run ${k + 1}: ${r.dirs[d].failed ? `FAILED (${r.dirs[d].failed}); ` : ""}${diagText(r.dirs[d].diag)}`));
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/net: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
