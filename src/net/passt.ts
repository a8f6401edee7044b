/**
 * The bridge's uplink to the host: Debian's `passt` (user-mode networking for VMs: ARP, DHCP, and a
 * translation of the guest's TCP/UDP/ICMP to ordinary host sockets) attached to the switch as one more port.
 *
 * How passt is run, and why (behaviour of passt 0.0~git20230309 as packaged in Debian 12):
 * - `-s DIR/passt.sock -1` (--one-off): passt listens on a socket in a private directory made for this start
 *   (mkdtemp, mode 0700, owned by the user passt will run as: started as root, passt drops to user nobody
 *   *before* bind(), and in a root-owned directory its bind fails with EACCES, which it ignores), the daemon
 *   connects and then removes the directory, and passt exits when that connection closes, so a crashed daemon
 *   leaves no passt behind. Why not `-F 3` (one end of the socketpair libuv makes for a child's
 *   "pipe" stdio, no socket file): passt raises SO_SNDBUF/SO_RCVBUF to the host's maximum only on a socket it
 *   accepts (tap_sock_unix_new); an -F socket keeps net.core.wmem_default (208 KiB), and passt *drops* the
 *   frames a full socket does not take ("dropped N frames due to short send") after advancing its TCP
 *   sequence, then resends everything from the guest's duplicate ACK on: host → guest TCP was 85 % resends
 *   (docs/benchmarks.md, session 25). `XENO_PASST_TAP=fd` in the daemon's environment still runs `-F 3` (A/B).
 * - `-f -e`: foreground, log to stderr (we prefix its lines into the daemon log; its "Failed to send N bytes
 *   to syslog" noise, printed when there is no /dev/log, is filtered out).
 * - `-4 -a ADDR -n PREFIX -g GW -M MAC`: a fixed IPv4-only segment, by default 10.0.2.15/24 via 10.0.2.2 as in
 *   QEMU's slirp, and passt's MAC fixed at 9a:55:9a:55:9a:55 (the MAC later passt versions default to)
 *   instead of the host NIC's, so nothing depends on the host's addresses. IPv6 is off: passt's NDP/RA/DHCPv6
 *   would need the same guarding as ARP/DHCP (uplink-guard.ts) and is not done yet.
 * - The gateway address is mapped to the host: a guest's TCP connection or UDP datagram to 10.0.2.2 reaches
 *   the host's 127.0.0.1 (passt's default; --no-map-gw turns it off).
 * - `-t [ADDR/]HOST:GUEST` / `-u ...` forward host ports to the guest's address; `-u none` unless UDP forwards
 *   are given, because passt otherwise also forwards UDP for every forwarded TCP port number.
 * - ICMP echo goes through "ping" sockets, which need net.ipv4.ping_group_range to include passt's group
 *   (Debian's default "1 0" excludes everyone), so ping from a guest usually gets no answer; TCP and UDP work.
 *
 * Readiness: the daemon connects as soon as the socket accepts (polled); port forwards are bound only when
 * passt reaches its main loop, so the uplink then sends an ARP probe (sender IP 0.0.0.0, RFC 5227) for the gateway and counts passt as up
 * when the reply comes back; the reply is consumed, not switched. passt takes the probe's source MAC as the
 * guest's (it follows the last sender), so the probe uses the current owner's MAC when there is one.
 *
 * If passt exits it is restarted with exponential backoff (0.25 s doubling to 30 s; reset once it has run for
 * a minute). Connections through the old passt are lost; guests see resets or timeouts, as after a NAT reboot.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, chownSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type { Duplex } from "node:stream";
import { NetError } from "./errors.js";
import {
  ARP_LEN, ARP_OP_REPLY, ARP_OP_REQUEST, ETHERTYPE_ARP, ETH_HEADER_LEN, MAC_BROADCAST, formatMac,
  macAt, parseArp, parseIpv4, parseMac, writeMac,
} from "./ethernet.js";
import { StreamPort } from "./stream-port.js";
import type { SwitchPort } from "./switch.js";
import { UplinkGuard, type UplinkGuardStats } from "./uplink-guard.js";
import type { UplinkState } from "./uplink-status.js";

export const DEFAULT_GUEST_ADDRESS = "10.0.2.15";
export const DEFAULT_PREFIX_LENGTH = 24;
export const DEFAULT_GATEWAY = "10.0.2.2";
export const DEFAULT_PASST_MAC = "9a:55:9a:55:9a:55";
/** Locally administered unicast MAC for readiness probes sent while the uplink has no owner. */
const PROBE_MAC = 0x0a_58_65_6e_6f_01;

/** A host→guest port forward: host ports [hostFirst, hostLast] on hostAddress (all if absent) to guest ports
 * starting at guestFirst. */
export interface PortForward {
  proto: "tcp" | "udp";
  hostAddress?: string;
  hostFirst: number;
  hostLast: number;
  guestFirst: number;
}

/** `tcp:[ADDR/]HOSTPORT[-LAST][:GUESTPORT]` (or udp:) → PortForward; throws NET_BAD_OPTION. */
export function parseForward(spec: string): PortForward {
  const m = /^(tcp|udp):(?:([0-9.]+)\/)?(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(spec);
  const bad = (why: string): NetError =>
    new NetError("NET_BAD_OPTION", `--forward '${spec}': ${why} (expected tcp|udp:[ADDR/]HOSTPORT[-LAST][:GUESTPORT])`);
  if (m === null) throw bad("malformed");
  const port = (s: string): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw bad(`port ${s} out of range`);
    return n;
  };
  const hostFirst = port(m[3]!);
  const hostLast = m[4] === undefined ? hostFirst : port(m[4]);
  const guestFirst = m[5] === undefined ? hostFirst : port(m[5]);
  if (hostLast < hostFirst) throw bad("empty range");
  if (guestFirst + (hostLast - hostFirst) > 65535) throw bad("guest range beyond 65535");
  if (m[2] !== undefined) parseIpv4(m[2]);
  return { proto: m[1] as "tcp" | "udp", ...(m[2] === undefined ? {} : { hostAddress: m[2] }), hostFirst, hostLast, guestFirst };
}

/** The passt spelling of a forward: `[ADDR/]FIRST[-LAST]:GFIRST[-GLAST]`. */
export function passtPortSpec(f: PortForward): string {
  const range = (a: number, b: number): string => (a === b ? `${a}` : `${a}-${b}`);
  const addr = f.hostAddress === undefined ? "" : `${f.hostAddress}/`;
  return `${addr}${range(f.hostFirst, f.hostLast)}:${range(f.guestFirst, f.guestFirst + f.hostLast - f.hostFirst)}`;
}

export interface PasstOptions {
  /** The passt executable; default "passt" on PATH. */
  binary?: string;
  /** The one guest address passt serves (DHCP yiaddr, port forward target). Default 10.0.2.15. */
  address?: string;
  /** Default 24. */
  prefixLength?: number;
  /** Default 10.0.2.2; mapped to the host's loopback. */
  gateway?: string;
  /** passt's MAC. Default 9a:55:9a:55:9a:55. */
  mac?: string;
  /** DNS servers to hand out by DHCP (passt -D); default: passt's, from /etc/resolv.conf. */
  dns?: string[];
  /** An address whose UDP port 53 passt forwards to the host's first resolver (passt --dns-forward). */
  dnsForward?: string;
  /** Default true; false passes --no-dhcp. */
  dhcp?: boolean;
  forwards?: PortForward[];
  /** Pin the uplink owner (see uplink-guard.ts). */
  ownerMac?: string;
  /** More passt arguments, verbatim. */
  extraArgs?: string[];
  /** Drop passt's informational lines (-q). */
  quiet?: boolean;
  /**
   * How long to wait for passt to answer the readiness probe; default 15000 ms. passt answers within
   * milliseconds on an idle host, but at load average ~20 on two cores 5 s was seen to run out (test/net).
   */
  readyTimeoutMs?: number;
  /**
   * When set, a missing passt binary is not an error: start() resolves false and the uplink looks for the binary
   * every this many ms, starting passt once it is installed (bridge-main's --uplink auto: 10 s). Unset, start()
   * rejects with NET_PASST_NOT_FOUND.
   */
  missingRetryMs?: number;
}

/**
 * The passt command line for these options (without the binary): listening on `socketPath` for one client
 * (`-s PATH -1`), or with fd 3 as its connected socket (`-F 3`) when there is none.
 */
export function passtArgs(o: PasstOptions, socketPath?: string): string[] {
  const tap = socketPath === undefined ? ["-F", "3"] : ["-s", socketPath, "-1"];
  const a = ["-f", "-e", ...tap, "-4",
    "-a", o.address ?? DEFAULT_GUEST_ADDRESS, "-n", String(o.prefixLength ?? DEFAULT_PREFIX_LENGTH),
    "-g", o.gateway ?? DEFAULT_GATEWAY, "-M", o.mac ?? DEFAULT_PASST_MAC];
  for (const d of o.dns ?? []) a.push("-D", d);
  if (o.dnsForward !== undefined) a.push("--dns-forward", o.dnsForward);
  if (o.dhcp === false) a.push("--no-dhcp");
  const fw = o.forwards ?? [];
  for (const f of fw) a.push(f.proto === "tcp" ? "-t" : "-u", passtPortSpec(f));
  if (!fw.some((f) => f.proto === "udp")) a.push("-u", "none");
  if (o.quiet) a.push("-q");
  a.push(...(o.extraArgs ?? []));
  return a;
}

export interface PasstUplinkHooks {
  /** A frame from passt for the switch. */
  onFrame(frame: Buffer): void;
  log(line: string): void;
  /** Whether a MAC is a live station on the switch (for the guard's ownership). */
  isPresent(mac: number): boolean;
  /** passt's state changed (the daemon publishes it for the commands joining the bridge: uplink-status.ts). */
  onState?(state: UplinkState, detail?: string, retryMs?: number): void;
}

export interface PasstUplinkStats {
  running: boolean;
  pid: number | undefined;
  starts: number;
  exits: number;
  owner: string;
  guard: UplinkGuardStats;
}

const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 30_000;
const STABLE_RUN_MS = 60_000;
const PROBE_INTERVAL_MS = 200;
const STOP_GRACE_MS = 2000;
/** How often the daemon tries to connect to passt's socket until passt listens. */
const CONNECT_RETRY_MS = 20;
/** While passt is missing, a reminder in the log every this many looks (10 min at 10 s): bounded log volume. */
const MISSING_REMIND_EVERY = 60;

/** The uplink as a switch port: frames the guard allows go to passt; frames from passt go to hooks.onFrame. */
export class PasstUplink implements SwitchPort {
  readonly name = "uplink(passt)";
  readonly guard: UplinkGuard;
  /** The command line of the last start (its -s path changes per start). */
  private args: string[];
  /** Run passt with -F 3 (XENO_PASST_TAP=fd) instead of -s in a private directory. */
  private readonly tapFd = process.env["XENO_PASST_TAP"] === "fd";
  private readonly gatewayIp: number;
  /** passt's MAC (its -M), which the daemon pins to this port in the switch. */
  readonly passtMac: number;
  private child: ChildProcess | undefined;
  private port: StreamPort | undefined;
  private ready = false;
  private stopping = false;
  private starts = 0;
  private exits = 0;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Looking for a missing binary (missingRetryMs). */
  private missingTimer: NodeJS.Timeout | undefined;
  /** Why the last attempt failed, for onState's "down". */
  private lastFailure = "";
  /** Settles the current start attempt: true when the probe is answered, false when passt exits first. */
  private settle: ((up: boolean) => void) | undefined;

  constructor(private readonly opts: PasstOptions, private readonly hooks: PasstUplinkHooks) {
    this.args = passtArgs(opts, this.tapFd ? undefined : join(tmpdir(), "xeno-passt-XXXXXX", "passt.sock"));
    this.gatewayIp = parseIpv4(opts.gateway ?? DEFAULT_GATEWAY);
    parseIpv4(opts.address ?? DEFAULT_GUEST_ADDRESS);
    this.passtMac = parseMac(opts.mac ?? DEFAULT_PASST_MAC);
    const arpTargets = [this.gatewayIp];
    if (opts.dnsForward !== undefined) arpTargets.push(parseIpv4(opts.dnsForward));
    this.guard = new UplinkGuard({
      passtMac: this.passtMac, arpTargets, isPresent: hooks.isPresent,
      ...(opts.ownerMac === undefined ? {} : { ownerMac: parseMac(opts.ownerMac) }),
      onOwner: (mac) => hooks.log(`uplink: ${formatMac(mac)} now owns the passt uplink (${opts.address ?? DEFAULT_GUEST_ADDRESS})`),
    });
  }

  /** The passt command line, for logs and tests. */
  get commandLine(): string[] {
    return [this.opts.binary ?? "passt", ...this.args];
  }

  /**
   * Start passt and wait for it to answer. Resolves true when it is up, false when this first attempt failed
   * (logged; retried with backoff in the background). Rejects with NET_PASST_NOT_FOUND when there is no passt
   * binary: that is an installation problem, not something a retry fixes.
   */
  start(): Promise<boolean> {
    this.stopping = false;
    return this.spawnOnce();
  }

  private spawnOnce(): Promise<boolean> {
    const bin = this.opts.binary ?? "passt";
    return new Promise<boolean>((resolve, reject) => {
      let settled = false;
      let probe: NodeJS.Timeout | undefined;
      let timeout: NodeJS.Timeout | undefined;
      const done = (up: boolean, err?: Error): void => {
        if (settled) return;
        settled = true;
        clearInterval(probe);
        clearTimeout(timeout);
        this.settle = undefined;
        if (err !== undefined) reject(err);
        else resolve(up);
      };
      this.settle = (up) => done(up);
      this.starts++;
      this.hooks.onState?.("starting");
      let child: ChildProcess;
      let dir: string | undefined;
      try {
        if (!this.tapFd) dir = passtSocketDir();
        this.args = passtArgs(this.opts, dir === undefined ? undefined : join(dir, "passt.sock"));
        child = spawn(bin, this.args, { stdio: ["ignore", "pipe", "pipe", ...(this.tapFd ? ["pipe" as const] : [])] });
      } catch (e) {
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
        done(false, new NetError("NET_PASST_FAILED", `cannot run ${bin}: ${(e as Error).message}`, { cause: e }));
        return;
      }
      this.child = child;
      const stderrTail: string[] = [];
      const onLines = (chunk: Buffer): void => {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (line.trim() === "" || /^Failed to send \d+ bytes to syslog/.test(line)) continue;
          stderrTail.push(line);
          if (stderrTail.length > 20) stderrTail.shift();
          this.hooks.log(`passt[${child.pid ?? "?"}]: ${line}`);
        }
      };
      child.stdout?.on("data", onLines);
      child.stderr?.on("data", onLines);
      child.once("error", (e: NodeJS.ErrnoException) => {
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true }); // (a spawn that failed has no "exit")
        this.child = undefined;
        if (e.code === "ENOENT" && this.opts.missingRetryMs !== undefined) {
          done(false);
          this.waitForBinary(bin, this.opts.missingRetryMs);
        } else if (e.code === "ENOENT") {
          done(false, new NetError("NET_PASST_NOT_FOUND",
            `passt not found ('${bin}'): install it with apt-get install passt`, { cause: e }));
        } else {
          this.hooks.log(`passt: cannot run ${bin}: ${e.message}`);
          this.lastFailure = `cannot run ${bin}: ${e.message}`;
          done(false);
          this.scheduleRestart();
        }
      });
      const startedAt = performance.now();
      child.once("exit", (code, signal) => {
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
        if (this.child === child) this.child = undefined;
        this.port?.close();
        this.port = undefined;
        this.ready = false;
        if (this.stopping || this.missingTimer !== undefined) return; // (a spawn that failed with ENOENT: waitForBinary)
        this.exits++;
        const ran = performance.now() - startedAt;
        this.hooks.log(`passt[${child.pid}] exited (${signal ?? `code ${code}`}) after ${(ran / 1000).toFixed(1)} s` +
          (ran < 5000 && stderrTail.length > 0 ? `; last output: ${stderrTail.slice(-3).join(" | ")}` : ""));
        if (ran > STABLE_RUN_MS) this.failures = 0;
        this.lastFailure = `passt exited (${signal ?? `code ${code}`}) after ${(ran / 1000).toFixed(1)} s` +
          (stderrTail.length > 0 ? `, saying: ${stderrTail[stderrTail.length - 1]}` : "");
        done(false);
        this.scheduleRestart();
      });
      if (child.pid === undefined) return; // spawn failed: the "error" event settles
      const attach = (sock: Duplex): void => {
        this.port = new StreamPort(`passt[${child.pid}]`, sock, {
          onFrame: (f) => this.fromPasst(f),
          onClose: (err) => {
            if (err !== undefined && !this.stopping) this.hooks.log(`passt[${child.pid}]: socket: ${err.message}`);
          },
        });
        const sendProbe = (): void => {
          this.port?.send(this.probeFrame());
        };
        sendProbe();
        probe = setInterval(sendProbe, PROBE_INTERVAL_MS);
      };
      if (dir === undefined) {
        const sock = child.stdio[3] as Duplex | null;
        if (sock === null) {
          child.kill("SIGKILL");
          done(false, new NetError("NET_PASST_FAILED", "no socketpair for passt's fd 3"));
          return;
        }
        attach(sock);
      } else {
        // passt binds and listens during its setup; until then connect() fails (ENOENT, ECONNREFUSED): try again.
        const sockDir = dir, path = join(sockDir, "passt.sock");
        const tryConnect = (): void => {
          if (settled || this.child !== child) return;
          const s: Socket = connect(path);
          s.once("error", () => { s.destroy(); if (this.port === undefined) setTimeout(tryConnect, CONNECT_RETRY_MS); });
          s.once("connect", () => {
            if (settled || this.child !== child) { s.destroy(); return; }
            // Connected: the path is no longer needed (an unlinked socket keeps its connections), and with it
            // gone no one else can reach passt, and nothing is left in $TMPDIR if this process exits first.
            rmSync(sockDir, { recursive: true, force: true });
            attach(s);
          });
        };
        tryConnect();
      }
      timeout = setTimeout(() => {
        this.hooks.log(`passt[${child.pid}] did not answer its ARP probe within ${this.readyTimeoutMs} ms; killing it`);
        this.lastFailure = `passt did not answer within ${this.readyTimeoutMs / 1000} s`;
        child.kill("SIGKILL");
      }, this.readyTimeoutMs);
    });
  }

  private get readyTimeoutMs(): number {
    return this.opts.readyTimeoutMs ?? 15_000;
  }

  /** ARP request for the gateway with sender IP 0.0.0.0 (an RFC 5227 probe, which passt answers). */
  private probeFrame(): Uint8Array {
    const src = this.guard.ownerMac ?? PROBE_MAC;
    const f = new Uint8Array(ETH_HEADER_LEN + ARP_LEN);
    writeMac(f, 0, MAC_BROADCAST);
    writeMac(f, 6, src);
    f[12] = ETHERTYPE_ARP >> 8; f[13] = ETHERTYPE_ARP & 0xff;
    const o = ETH_HEADER_LEN;
    f.set([0, 1, 0x08, 0x00, 6, 4, 0, ARP_OP_REQUEST], o); // Ethernet, IPv4, hlen 6, plen 4, request
    writeMac(f, o + 8, src); // sender MAC; sender IP stays 0.0.0.0; target MAC stays 0
    const g = this.gatewayIp;
    f.set([g >>> 24, (g >>> 16) & 0xff, (g >>> 8) & 0xff, g & 0xff], o + 24);
    return f;
  }

  private fromPasst(frame: Buffer): void {
    if (frame.length >= ETH_HEADER_LEN + ARP_LEN) {
      const arp = parseArp(frame);
      // The probe's answer: a reply for the gateway to sender IP 0.0.0.0. No station asks with 0.0.0.0 except
      // in RFC 5227 address probing, which is not about the gateway, so this one is ours.
      if (arp !== undefined && arp.op === ARP_OP_REPLY && arp.targetIp === 0 && arp.senderIp === this.gatewayIp) {
        if (!this.ready) {
          this.ready = true;
          this.hooks.log(`passt[${this.child?.pid ?? "?"}] up: ${this.commandLine.join(" ")}`);
          this.hooks.onState?.("up");
          this.settle?.(true);
        }
        return;
      }
    }
    if (macAt(frame, 6) !== this.passtMac) return; // passt only ever sends as itself
    this.hooks.onFrame(frame);
  }

  private scheduleRestart(): void {
    if (this.stopping || this.restartTimer !== undefined) return;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.failures);
    this.failures++;
    this.hooks.log(`passt: restarting in ${delay} ms`);
    this.hooks.onState?.("down", `${this.lastFailure || "passt failed"}; next try in ${(delay / 1000).toFixed(1)} s`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawnOnce().catch((e: unknown) => {
        this.hooks.log(`passt: ${(e as Error).message}`);
        this.scheduleRestart();
      });
    }, delay);
    this.restartTimer.unref();
  }

  /**
   * The binary is not installed: look for it every `everyMs` (a PATH lookup, no process started) and start passt
   * once it is there, so installing passt later brings the uplink up without restarting the bridge. Logged when
   * the wait begins, every MISSING_REMIND_EVERY looks, and when the binary appears.
   */
  private waitForBinary(bin: string, everyMs: number): void {
    if (this.stopping || this.missingTimer !== undefined) return;
    this.hooks.log(`passt: '${bin}' not found; running without an uplink to the host, looking for passt every ` +
      `${everyMs / 1000} s (install it with: apt-get install --no-install-recommends passt)`);
    this.hooks.onState?.("missing", `'${bin}' not found`, everyMs);
    let looks = 0;
    const look = (): void => {
      this.missingTimer = undefined;
      if (this.stopping) return;
      const found = findExecutable(bin);
      if (found === undefined) {
        if (++looks % MISSING_REMIND_EVERY === 0) {
          this.hooks.log(`passt: still not installed after ${Math.round((looks * everyMs) / 60_000)} min; still looking every ${everyMs / 1000} s`);
        }
        this.missingTimer = setTimeout(look, everyMs);
        this.missingTimer.unref();
        return;
      }
      this.hooks.log(`passt: found ${found}; starting the uplink`);
      this.failures = 0;
      this.spawnOnce().catch((e: unknown) => {
        this.hooks.log(`passt: ${(e as Error).message}`);
        this.scheduleRestart();
      });
    };
    this.missingTimer = setTimeout(look, everyMs);
    this.missingTimer.unref();
  }

  /** SwitchPort: a frame from the switch, passed to passt if the guard allows it and passt is up. */
  send(frame: Uint8Array): boolean {
    if (!this.ready || this.port === undefined) return false;
    if (!this.guard.allow(frame)) return false;
    return this.port.send(frame);
  }

  get isReady(): boolean {
    return this.ready;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  stats(): PasstUplinkStats {
    return {
      running: this.ready, pid: this.child?.pid, starts: this.starts, exits: this.exits,
      owner: this.guard.describeOwner(), guard: { ...this.guard.stats },
    };
  }

  /** Stop passt (SIGTERM, SIGKILL after 2 s) and stop restarting it. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    if (this.missingTimer !== undefined) clearTimeout(this.missingTimer);
    this.missingTimer = undefined;
    this.settle?.(false);
    const child = this.child;
    this.port?.close();
    this.port = undefined;
    this.ready = false;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      child.once("exit", () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill("SIGTERM");
    });
    this.child = undefined;
  }
}

/**
 * A fresh directory for passt's socket: mode 0700 (mkdtemp), owned by the user passt will run as — as root,
 * passt switches to user nobody before it binds (conf_ugid: getpwnam("nobody")), so the directory is given to
 * nobody and its group; otherwise passt keeps our user, who owns it already. Root (the daemon) connects anyway.
 */
function passtSocketDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "xeno-passt-"));
  if (process.getuid?.() === 0) {
    let uid = 65534, gid = 65534;
    try {
      const m = /^nobody:[^:]*:(\d+):(\d+):/m.exec(readFileSync("/etc/passwd", "utf8"));
      if (m !== null) { uid = Number(m[1]); gid = Number(m[2]); }
    } catch { /* keep 65534, Debian's nobody:nogroup */ }
    chownSync(dir, uid, gid);
  }
  return dir;
}

/** For logs: "10.0.2.15/24 via 10.0.2.2, passt MAC 9a:55:9a:55:9a:55". */
export function describePasst(o: PasstOptions): string {
  return `${o.address ?? DEFAULT_GUEST_ADDRESS}/${o.prefixLength ?? DEFAULT_PREFIX_LENGTH} via ` +
    `${o.gateway ?? DEFAULT_GATEWAY} (the host's loopback), passt MAC ${o.mac ?? DEFAULT_PASST_MAC}`;
}

/** `bin` if it contains a slash and is executable, else its first executable match on PATH; undefined if none. */
function findExecutable(bin: string, path = process.env.PATH ?? ""): string | undefined {
  const candidates = bin.includes("/") ? [bin] : path.split(delimiter).filter((d) => d !== "").map((d) => join(d, bin));
  for (const c of candidates) {
    try { accessSync(c, constants.X_OK); return c; } catch { /* next */ }
  }
  return undefined;
}
