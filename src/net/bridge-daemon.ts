/**
 * The bridge daemon: one per bridge name, joining the vifs of domains run by separate `xeno create` processes
 * (and anything else speaking QEMU's stream netdev framing) on one L2 segment, with passt as the uplink to the
 * host. See docs/networking.md for the whole picture.
 *
 *   vif (xeno create A) ─┐                        ┌─ passt (-s, a private socket) ── host sockets
 *   vif (xeno create B) ─┼─ unix socket ── switch ┤
 *   qemu -netdev stream ─┘  <run>/net/<br>.sock    (LearningSwitch; UplinkGuard in front of passt)
 *
 * The socket is `${XENO_RUN_DIR:-/run/xeno}/net/<bridge>.sock`. Each connection is a switch port; frames go
 * both ways as a 4-byte big-endian length and the frame (framing.ts). The daemon owns its socket path:
 * - a second daemon for the same bridge finds the socket answering and fails with NET_BRIDGE_IN_USE, before it
 *   starts a passt of its own;
 * - a stale socket (a file no one listens on, left by a killed daemon) is replaced, under a short lock file so
 *   two daemons starting together cannot both replace it;
 * - every 2 s the daemon checks that the path is still its socket (same inode) and shuts down if it was removed
 *   or replaced, rather than living on unreachable with its passt holding the forwarded host ports.
 * A client that sends a bad length prefix is dropped (logged); the others carry on. close() (SIGTERM in
 * bridge-main) drops the clients, stops passt and removes the socket and pid files — each only if still its own.
 *
 * Closing a listening net.Server unlinks the path it was bound to (libuv does, unconditionally), which would
 * remove the socket of a daemon that replaced this one. So the daemon binds a private name in the same directory
 * and renames the bound socket onto the bridge path (atomically replacing a stale file); libuv then unlinks only
 * the private name, which no longer exists, and the bridge path is removed by shutdown(), under the lock, if its
 * inode is still this daemon's.
 */

import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { NetError } from "./errors.js";
import { PasstUplink, describePasst, type PasstOptions, type PasstUplinkStats } from "./passt.js";
import { bridgeSocketPath, checkBridgeName, siblingPath } from "./paths.js";
import { PcapWriter } from "./pcap.js";
import { StreamPort } from "./stream-port.js";
import { removeUplinkStatus, writeUplinkStatus, type UplinkStatus } from "./uplink-status.js";
import { listenPrivate, RUN_DIR_MODE } from "../common/private-socket.js";
import { LearningSwitch, type PortStats, type SwitchOptions, type SwitchPort, type SwitchStats } from "./switch.js";

/** Fair egress on the clients' ports (stream-port.ts); $XENO_NET_FAIR=0 in the daemon's environment: plain tail drop (A/B). */
const NET_FAIR = process.env.XENO_NET_FAIR !== "0";

/** An in-process port's handle on the switch (BridgeDaemon.attach). */
export interface LocalAttachment {
  /** A frame from the port into the switch. */
  input(frame: Uint8Array): void;
  /** Detach the port (idempotent). */
  detach(): void;
}

export interface BridgeDaemonOptions {
  /** Bridge name (xl's bridge= in a vif spec), e.g. xenbr0. */
  name: string;
  /** Overrides the socket path (default bridgeSocketPath(name, env, runDir)). */
  socketPath?: string;
  /** Overrides $XENO_RUN_DIR. */
  runDir?: string;
  /** passt uplink options; absent means no uplink (a host-only segment between guests). */
  uplink?: PasstOptions;
  switch?: SwitchOptions;
  /** Exit after this long with no client (0 or absent: never). ensureBridge starts daemons with 60 s. */
  idleExitMs?: number;
  /** Per-client egress queue limit before tail drop (default 1 MiB). */
  maxQueuedBytes?: number;
  /** Aborting it before the daemon has claimed its socket makes start() fail with NET_START_ABORTED (bridge-main:
   * a SIGTERM during startup), so a daemon told to stop never takes the bridge over. */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface BridgeStats {
  name: string;
  socketPath: string;
  clients: number;
  switch: SwitchStats;
  ports: Array<{ name: string } & PortStats>;
  uplink?: PasstUplinkStats;
}

const SELF_CHECK_MS = 2000;
const SWEEP_MS = 30_000;
const LOCK_STALE_MS = 10_000;
const LOCK_WAIT_MS = 12_000; // longer than LOCK_STALE_MS, so a lock left by a crashed starter is broken, not waited out
let privateNames = 0;

export class BridgeDaemon {
  readonly name: string;
  readonly socketPath: string;
  readonly switch: LearningSwitch;
  readonly uplink: PasstUplink | undefined;
  /** Resolves once the daemon has shut down (close(), idle exit, or its socket path was taken away). */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly log: (line: string) => void;
  private readonly clients = new Set<StreamPort>();
  private readonly locals = new Set<SwitchPort>();
  private server: Server | undefined;
  private inode = -1;
  private wrotePidFile = false;
  private nextClient = 1;
  private timers: NodeJS.Timeout[] = [];
  private idleTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  /** Set first thing in shutdown(), while `closing` is not assigned yet (the clients it closes re-arm the idle
   * timer from their onClose, synchronously). */
  private stopping = false;
  /** The uplink's state as published in `<bridge>.uplink` (uplink-status.ts) once the socket is ours. */
  private uplinkState: Omit<UplinkStatus, "pid" | "since">;
  /** $XENO_NET_PCAP=DIR: every port's ingress frames captured there (pcap.ts; debugging). */
  private readonly pcap: PcapWriter | null;

  private constructor(private readonly opts: BridgeDaemonOptions) {
    this.name = checkBridgeName(opts.name);
    this.socketPath = opts.socketPath ?? bridgeSocketPath(opts.name, process.env, opts.runDir);
    this.log = opts.log ?? (() => {});
    this.switch = new LearningSwitch(opts.switch);
    this.closed = new Promise((r) => (this.resolveClosed = r));
    const pcapDir = process.env["XENO_NET_PCAP"];
    this.pcap = pcapDir === undefined || pcapDir === "" ? null : new PcapWriter(pcapDir, this.name);
    if (opts.uplink !== undefined) {
      this.uplink = new PasstUplink(opts.uplink, {
        onFrame: (f) => { this.pcap?.write(this.uplink!.name, f); this.switch.receive(this.uplink!, f); },
        log: this.log,
        isPresent: (mac) => this.switch.lookup(mac) !== undefined,
        onState: (state, detail, retryMs) => {
          this.uplinkState = { state, ...(detail === undefined ? {} : { detail }), ...(retryMs === undefined ? {} : { retryMs }) };
          if (this.inode !== -1 && !this.stopping) this.publishUplink();
        },
      });
    }
    this.uplinkState = { state: opts.uplink === undefined ? "none" : "starting" };
  }

  /**
   * Start a daemon: claim the socket path (NET_BRIDGE_IN_USE if another daemon answers on it), start passt and
   * wait for it (NET_PASST_NOT_FOUND if it is not installed; a passt that fails otherwise is retried in the
   * background while the switch works without it), then listen.
   */
  static async start(opts: BridgeDaemonOptions): Promise<BridgeDaemon> {
    const d = new BridgeDaemon(opts);
    try {
      await d.startup();
    } catch (e) {
      await d.close();
      throw e;
    }
    return d;
  }

  private async startup(): Promise<void> {
    const path = this.socketPath;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: RUN_DIR_MODE });
    } catch (e) {
      throw new NetError("NET_SOCKET_PATH", `${path}: cannot create its directory: ${(e as Error).message}`, { cause: e });
    }
    // Fail fast, before starting passt, when a daemon is already there; the check is repeated under the lock.
    if (await socketAnswers(path)) throw inUse(this.name, path);
    this.checkAborted();
    if (this.uplink !== undefined) {
      this.switch.addPort(this.uplink);
      this.switch.addStatic(this.uplink.passtMac, this.uplink);
      this.log(`bridge ${this.name}: starting passt uplink, ${describePasst(this.opts.uplink!)}`);
      // A stop request while passt starts cuts the wait short (stop() makes start() resolve false).
      const stopUplink = (): void => void this.uplink?.stop();
      this.opts.signal?.addEventListener("abort", stopUplink, { once: true });
      let up: boolean;
      try {
        up = await this.uplink.start();
      } finally {
        this.opts.signal?.removeEventListener("abort", stopUplink);
      }
      this.checkAborted();
      if (!up) this.log(`bridge ${this.name}: passt is not up yet; the switch runs without uplink meanwhile`);
    }
    await this.listen(path);
    this.timers.push(setInterval(() => this.selfCheck(), SELF_CHECK_MS), setInterval(() => this.switch.sweep(), SWEEP_MS));
    for (const t of this.timers) t.unref();
    this.armIdle();
    this.log(`bridge ${this.name}: listening on ${path}`);
  }

  private checkAborted(): void {
    if (this.opts.signal?.aborted) throw new NetError("NET_START_ABORTED", `bridge ${this.name}: start aborted`);
  }

  /** Listen on a private name, then, under the lock, rename the socket onto `path` if no daemon answers there. */
  private async listen(path: string): Promise<void> {
    const priv = join(dirname(path), `.${process.pid}-${++privateNames}.tmp`);
    try {
      unlinkSync(priv); // left by a dead process that had our pid
    } catch { /* the usual case */ }
    const server = createServer((sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(new NetError("NET_SOCKET_PATH", `${path}: cannot listen: ${e.message}`, { cause: e })));
      listenPrivate(server, priv, () => resolve()); // 0600 whatever the umask (the rename keeps the mode)
    });
    server.on("error", (e) => this.log(`bridge ${this.name}: server: ${e.message}`));
    let claimed = false;
    try {
      const lock = siblingPath(path, "lock");
      await acquireLock(lock);
      try {
        let st;
        try {
          st = lstatSync(path);
        } catch {
          st = undefined;
        }
        if (st !== undefined) {
          if (!st.isSocket()) throw new NetError("NET_SOCKET_PATH", `${path} exists and is not a socket`);
          if (await socketAnswers(path)) throw inUse(this.name, path);
        }
        // A stop request (SIGTERM) that arrived while this ran is handled by now: the connect's result comes in an
        // earlier phase of the event loop than the signal, and setImmediate runs after both.
        await new Promise((r) => setImmediate(r));
        this.checkAborted();
        if (st !== undefined) this.log(`bridge ${this.name}: replacing stale socket ${path}`);
        // The pid file before the socket appears: a client that can connect can also read it.
        try {
          const fd = openSync(siblingPath(path, "pid"), "w");
          writeSync(fd, `${process.pid}\n`);
          closeSync(fd);
          this.wrotePidFile = true;
        } catch (e) {
          this.log(`bridge ${this.name}: cannot write pid file: ${(e as Error).message}`);
        }
        this.publishUplink(); // before the socket appears, as the pid file
        try {
          const ino = lstatSync(priv).ino;
          renameSync(priv, path); // atomic: replaces a stale socket file, no moment without one
          this.inode = ino;
          claimed = true;
        } finally {
          if (!claimed && this.wrotePidFile) {
            this.wrotePidFile = false;
            unlinkQuietly(siblingPath(path, "pid"));
          }
          if (!claimed) removeUplinkStatus(path);
        }
      } finally {
        unlinkQuietly(lock);
      }
    } catch (e) {
      if (e instanceof NetError) throw e;
      throw new NetError("NET_SOCKET_PATH", `${path}: cannot claim: ${(e as Error).message}`, { cause: e });
    } finally {
      if (claimed) this.server = server;
      else server.close(); // unlinks the private name
    }
  }

  private accept(sock: Socket): void {
    if (this.stopping) {
      sock.destroy();
      return;
    }
    const name = `vif#${this.nextClient++}`;
    const port: StreamPort = new StreamPort(name, sock, {
      onFrame: (f) => { this.pcap?.write(name, f); this.switch.receive(port, f); },
      onClose: (err) => {
        this.clients.delete(port);
        const st = this.switch.removePort(port);
        const counts = st === undefined ? "" : ` (rx ${st.rxFrames} frames, tx ${st.txFrames}, dropped ${st.rxDropped}+${st.txDropped})`;
        this.log(`bridge ${this.name}: ${name} ${err === undefined ? "disconnected" : `dropped: ${err.message}`}${counts}`);
        this.armIdle();
      },
    }, this.opts.maxQueuedBytes, NET_FAIR); // fair egress: frames from several domains meet here (stream-port.ts)
    try {
      this.switch.addPort(port);
    } catch (e) {
      this.log(`bridge ${this.name}: ${name} refused: ${(e as Error).message}`);
      sock.destroy();
      return;
    }
    this.clients.add(port);
    this.disarmIdle();
    this.log(`bridge ${this.name}: ${name} connected (${this.clients.size} client${this.clients.size === 1 ? "" : "s"})`);
  }

  /**
   * Attach an in-process port (a vif of this process, when the daemon runs in-process): no socket, no framing.
   * Counts as a client for the idle exit. Throws NET_PORT_LIMIT.
   */
  attach(port: SwitchPort): LocalAttachment {
    this.switch.addPort(port);
    this.locals.add(port);
    this.disarmIdle();
    return {
      input: (frame) => {
        if (this.locals.has(port)) this.switch.receive(port, frame);
      },
      detach: () => {
        if (!this.locals.delete(port)) return;
        this.switch.removePort(port);
        this.armIdle();
      },
    };
  }

  private armIdle(): void {
    const ms = this.opts.idleExitMs ?? 0;
    if (ms <= 0 || this.clientCount > 0 || this.idleTimer !== undefined || this.stopping) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.clientCount === 0) {
        this.log(`bridge ${this.name}: no clients for ${ms / 1000} s; exiting`);
        void this.close();
      }
    }, ms);
  }

  private disarmIdle(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** Remove the socket and pid files if they are still ours. Under the lock: a daemon replacing the socket holds
   * the lock from its check that nobody answers until its socket is in place (and its pid file written), so ours
   * cannot be swapped between stat and unlink. */
  private async removeFiles(): Promise<void> {
    if (this.inode === -1 && !this.wrotePidFile) return;
    const path = this.socketPath;
    const lock = siblingPath(path, "lock");
    try {
      await acquireLock(lock);
    } catch (e) {
      // The directory is gone (nothing to remove), or the lock stays held: rather leave a stale file, which the
      // next daemon replaces, than risk removing another daemon's socket.
      this.log(`bridge ${this.name}: not removing ${path}: ${(e as Error).message}`);
      return;
    }
    try {
      let ino: number | undefined;
      try {
        ino = lstatSync(path).ino;
      } catch { /* gone */ }
      if (ino !== undefined && ino === this.inode) unlinkSync(path);
      if (ino === undefined || ino === this.inode) removeUplinkStatus(path); // (only if it names this process)
      // The pid file belongs to whoever owns the path now: with another daemon's socket there, it is that
      // daemon's even if it names this process (an in-process daemon replaced by another in the same process).
      const pid = siblingPath(path, "pid");
      if (this.wrotePidFile && (ino === undefined || ino === this.inode) && readFileSync(pid, "utf8").trim() === String(process.pid)) {
        unlinkSync(pid);
      }
    } catch { /* already gone */ } finally {
      unlinkQuietly(lock);
    }
  }

  /** Writes the uplink's state for the commands joining the bridge (uplink-status.ts); a failure is only logged. */
  private publishUplink(): void {
    try {
      writeUplinkStatus(this.socketPath, this.uplinkState);
    } catch (e) {
      this.log(`bridge ${this.name}: cannot write the uplink state: ${(e as Error).message}`);
    }
  }

  private selfCheck(): void {
    let ino = -1;
    try {
      ino = statSync(this.socketPath).ino;
    } catch { /* removed */ }
    if (ino !== this.inode) {
      this.log(`bridge ${this.name}: ${this.socketPath} was removed or replaced; shutting down`);
      void this.close();
    }
  }

  /** Socket clients plus in-process ports. */
  get clientCount(): number {
    return this.clients.size + this.locals.size;
  }

  stats(): BridgeStats {
    const ports: BridgeStats["ports"] = [];
    for (const p of [...(this.uplink === undefined ? [] : [this.uplink]), ...this.clients, ...this.locals]) {
      const st = this.switch.portStats(p);
      if (st !== undefined) ports.push({ name: p.name, ...st });
    }
    return {
      name: this.name, socketPath: this.socketPath, clients: this.clientCount, switch: this.switch.stats(), ports,
      ...(this.uplink === undefined ? {} : { uplink: this.uplink.stats() }),
    };
  }

  /** Stop: drop clients, stop passt, remove the socket and pid files (if still ours). Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.disarmIdle();
    for (const t of this.timers) clearInterval(t);
    const server = this.server;
    this.server = undefined;
    const serverClosed = server === undefined ? Promise.resolve()
      : new Promise<void>((resolve) => server.close(() => resolve()));
    for (const c of [...this.clients]) c.close();
    for (const p of [...this.locals]) this.switch.removePort(p);
    this.locals.clear();
    await this.removeFiles();
    await this.uplink?.stop();
    await serverClosed;
    this.pcap?.close();
    this.resolveClosed();
  }
}

function inUse(name: string, path: string): NetError {
  return new NetError("NET_BRIDGE_IN_USE", `bridge ${name}: another daemon is listening on ${path}`);
}

/** Whether something accepts connections on the unix socket at `path`. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    // Only "nobody listens" makes a socket file stale; anything else (EAGAIN from a full backlog on a loaded
    // host, …) means a daemon is there, and replacing its socket would leave two daemons for one bridge.
    c.once("error", (e: NodeJS.ErrnoException) => resolve(!(e.code === "ECONNREFUSED" || e.code === "ENOENT")));
  });
}

/** Take `path` as an exclusive lock file (O_EXCL), breaking it if older than 10 s (its holder died). */
async function acquireLock(path: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new NetError("NET_SOCKET_PATH", `${path}: cannot create lock: ${(e as Error).message}`, { cause: e });
      }
    }
    try {
      if (Date.now() - statSync(path).mtimeMs > LOCK_STALE_MS) unlinkSync(path);
    } catch { /* released meanwhile */ }
    if (Date.now() > deadline) throw new NetError("NET_BRIDGE_IN_USE", `${path}: held by another daemon starting up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Unlink, ignoring a file already gone (releases the lock; the pid file of a daemon that did not get its socket). */
function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch { /* already gone */ }
}
