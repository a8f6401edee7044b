/**
 * The vif side of a bridge: connect to the bridge daemon's socket and exchange frames (connectBridge), starting
 * the daemon first if no one runs it yet (ensureBridge), so the first `xeno create` with bridge=xenbr0 starts
 * the daemon and the later ones join it.
 *
 * A daemon started by ensureBridge is detached (its own session, surviving the `xeno create` that started it),
 * logs to `<run>/net/<bridge>.log`, and exits after 60 s without clients unless told otherwise. If two
 * processes start a daemon at the same moment, one wins the socket; both callers end up connected to the winner,
 * and the caller whose daemon lost stops it (SIGTERM) if it has not exited with "in use" by itself.
 */

import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { EXIT_BRIDGE_IN_USE, NetError } from "./errors.js";
import { bridgeSocketPath, siblingPath } from "./paths.js";
import { RUN_DIR_MODE } from "../common/private-socket.js";
import { StreamPort } from "./stream-port.js";
import { HANDOVER_ACK, HANDOVER_HOLD, HANDOVER_RELEASE, handoverFrame, handoverOp } from "./handover.js";
import { macAt, parseMac } from "./ethernet.js";

/** How long hold() waits for the switch's answer (a daemon without handover never answers; a loaded host takes
 * a few hundred ms for the round trip). The guest still runs while it waits. */
export const HOLD_ACK_TIMEOUT_MS = 2000;

/**
 * A connection to a bridge. Frames sent in the first instant may be lost: the connection is up when the kernel
 * has queued it, the port when the daemon has accepted it (as an Ethernet link coming up drops frames; guests
 * retry ARP and DHCP anyway).
 */
export interface BridgeClient {
  readonly socketPath: string;
  /** Queue a frame to the bridge; false if dropped (connection closed, or the daemon is not reading). */
  send(frame: Uint8Array): boolean;
  /**
   * Ask the switch to hold the frames for `mac` (handover.ts) and wait for its answer, which comes behind every
   * frame it had sent here for `mac` already (those have been passed to onFrame when this resolves). Resolves
   * false when no answer comes within `timeoutMs` (default HOLD_ACK_TIMEOUT_MS) or the connection is closed.
   */
  hold(mac: string, timeoutMs?: number): Promise<boolean>;
  /** Give the frames held for `mac` back to this port (a hold() whose handover did not happen); false (and
   * nothing sent) when this client holds nothing for `mac`. */
  release(mac: string): boolean;
  /** Backpressure from the vif (netback's rx queue): stop reading frames from the bridge (true), or go on. The
   * daemon then queues this client's frames (and tail-drops beyond its bound) instead of the vif dropping them. */
  pauseReading(stop: boolean): void;
  /** Disconnect (idempotent). */
  close(): void;
  /** Resolves when the connection is gone, with the reason if it failed (e.g. the daemon exited). */
  readonly closed: Promise<Error | undefined>;
}

export interface ConnectOptions {
  /** Overrides the socket path (default bridgeSocketPath(name)). */
  socketPath?: string;
  /** Overrides $XENO_RUN_DIR. */
  runDir?: string;
}

/** Connect to a running bridge daemon. Rejects with NET_CONNECT (cause: the socket error) if none listens. */
export function connectBridge(name: string, onFrame: (frame: Buffer) => void, opts: ConnectOptions = {}): Promise<BridgeClient> {
  const path = opts.socketPath ?? bridgeSocketPath(name, process.env, opts.runDir);
  return new Promise((resolve, reject) => {
    const sock: Socket = createConnection(path);
    const fail = (e: Error): void => reject(new NetError("NET_CONNECT", `bridge ${name}: cannot connect to ${path}: ${e.message}`, { cause: e }));
    sock.once("error", fail);
    sock.once("connect", () => {
      sock.off("error", fail);
      let resolveClosed!: (e: Error | undefined) => void;
      const closed = new Promise<Error | undefined>((r) => (resolveClosed = r));
      // Handover answers are the switch's to this client, not frames for the guest.
      const acks = new Map<number, () => void>();
      const held = new Set<number>();
      const port = new StreamPort(`bridge ${name}`, sock, {
        onFrame: (f) => {
          if (handoverOp(f) === HANDOVER_ACK) { const mac = macAt(f, 6); acks.get(mac)?.(); acks.delete(mac); return; }
          onFrame(f);
        },
        onClose: (err) => { for (const a of acks.values()) a(); resolveClosed(err); },
      });
      const hold = (mac: string, timeoutMs = HOLD_ACK_TIMEOUT_MS): Promise<boolean> => {
        const m = parseMac(mac);
        // The answer has to be read: a client paused by its vif's backpressure reads again (what comes before the
        // answer goes to the guest before its snapshot, or is dropped by netback as it would have been).
        port.pauseReading(false);
        return new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => { acks.delete(m); resolve(false); }, timeoutMs);
          acks.set(m, () => { clearTimeout(timer); resolve(!port.isClosed); });
          if (port.send(handoverFrame(m, HANDOVER_HOLD))) held.add(m);
          else { clearTimeout(timer); acks.delete(m); resolve(false); }
        });
      };
      const release = (mac: string): boolean => {
        const m = parseMac(mac);
        if (!held.delete(m)) return false;
        port.send(handoverFrame(m, HANDOVER_RELEASE));
        return true;
      };
      resolve({ socketPath: path, send: (f) => port.send(f), hold, release, pauseReading: (stop) => port.pauseReading(stop),
        close: () => port.close(), closed });
    });
  });
}

export interface EnsureBridgeOptions extends ConnectOptions {
  /** Extra bridge-main arguments for a daemon this call starts (e.g. ["--forward", "tcp:2222:22"]); a daemon
   * already running keeps its own. */
  daemonArgs?: string[];
  /** Seconds without clients before a daemon this call starts exits; default 60, 0 = never. */
  idleExitSeconds?: number;
  /** How long to wait for the daemon to listen; default 15 s (passt's start is part of it). */
  timeoutMs?: number;
  /** The node executable and daemon script (tests); default this node and dist/src/net/bridge-main.js. */
  nodePath?: string;
  mainPath?: string;
}

/**
 * Connect to the bridge's daemon, starting one (detached) if none answers. Resolves with the connected client
 * once the daemon listens (and therefore its passt uplink is up or being retried); rejects with
 * NET_DAEMON_START, with the daemon log's tail, if it does not come up in time.
 */
export async function ensureBridge(name: string, onFrame: (frame: Buffer) => void, opts: EnsureBridgeOptions = {}): Promise<BridgeClient> {
  const path = opts.socketPath ?? bridgeSocketPath(name, process.env, opts.runDir);
  const connect = (): Promise<BridgeClient> => connectBridge(name, onFrame, { socketPath: path });
  try {
    return await connect();
  } catch (e) {
    const code = ((e as NetError).cause as NodeJS.ErrnoException | undefined)?.code;
    if (code !== "ENOENT" && code !== "ECONNREFUSED") throw e;
  }
  const logPath = siblingPath(path, "log");
  let logFd: number;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: RUN_DIR_MODE });
    logFd = openSync(logPath, "a");
  } catch (e) {
    throw new NetError("NET_SOCKET_PATH", `bridge ${name}: cannot create ${logPath} (set XENO_RUN_DIR to a writable ` +
      `directory?): ${(e as Error).message}`, { cause: e });
  }
  const args = [opts.mainPath ?? fileURLToPath(new URL("./bridge-main.js", import.meta.url)),
    "--name", name, "--socket", path, "--idle-exit", String(opts.idleExitSeconds ?? 60), ...(opts.daemonArgs ?? [])];
  const child = spawn(opts.nodePath ?? process.execPath, args, { detached: true, stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  let exited: string | undefined;
  let fatal = false; // exited for another reason than "in use": no point waiting
  child.once("exit", (code, signal) => {
    exited = signal ?? `code ${code}`;
    fatal = code !== EXIT_BRIDGE_IN_USE;
  });
  child.once("error", (e) => {
    exited = e.message;
    fatal = true;
  });
  child.unref();

  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  // Poll: the daemon listens only after passt answers. If it exits with "in use", another caller's daemon won
  // the race and is (about to be) listening, so polling still succeeds.
  for (;;) {
    let client: BridgeClient;
    try {
      client = await connect();
    } catch (e) {
      last = e;
      if (Date.now() > deadline || fatal) break;
      await new Promise((r) => setTimeout(r, exited === undefined ? 50 : 200));
      continue;
    }
    // Connected, maybe to another caller's daemon while ours is still starting (on a loaded host node takes a
    // while to get there). Left alone, ours would exit "in use" — or, if the winner has exited meanwhile, find the
    // path free and take the bridge over: a second daemon started for nobody, which with --idle-exit 0 never
    // exits. The pid file names the daemon that listens (written before its socket appears; a later daemon writes
    // it only after finding no one answering), so if it names another process, ours is stopped. A SIGTERM during
    // startup makes bridge-main exit without claiming the socket.
    if (exited === undefined && child.pid !== undefined) {
      const owner = readPid(siblingPath(path, "pid"));
      if (owner !== undefined && owner !== child.pid) child.kill("SIGTERM");
    }
    return client;
  }
  let tail = "";
  try {
    tail = readFileSync(logPath, "utf8").split("\n").slice(-15).join("\n");
  } catch { /* no log */ }
  throw new NetError("NET_DAEMON_START",
    `bridge ${name}: the daemon did not come up on ${path}${exited === undefined ? "" : ` (it exited: ${exited})`}; ` +
    `log ${logPath}:\n${tail}`, { cause: last });
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
