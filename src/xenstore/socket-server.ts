/**
 * The toolstack's way in: a unix socket where every connection is a privileged (dom0) XenStore client, as
 * with xenstored's /var/run/xenstored/socket.
 *
 * Where clients look (libxenstore 4.17, tools/libs/store/xs.c and tools/xenstore/xs_lib.c, as in Debian 12):
 * `$XENSTORED_PATH` if set, else `$XENSTORED_RUNDIR/socket`, else `/var/run/xenstored/socket` (on Debian
 * /var/run is a symlink to /run). If that is not a socket they fall back to the xenbus device
 * (/dev/xen/xenbus), again overridden by XENSTORED_PATH. `defaultSocketPath` applies the same rules.
 */

import { chmodSync, existsSync, mkdirSync, lstatSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { Connection } from "./connection.js";
import type { XenStore } from "./store.js";
import { XsType } from "./wire.js";
import { listenPrivate, RUN_DIR_MODE } from "../common/private-socket.js";

/**
 * Output a client may leave unread (bytes queued in this process, beyond what the kernel's socket buffer
 * holds). Past it, requests are not read (they wait in the kernel's buffer, as xenstored stops reading a
 * connection whose output is pending) and new watch events are dropped. A client's queue is so bounded by this
 * plus one reply (≤ 4 KiB + header): a dropped event is lost for that client, as C xenstored (4.17, XSA-326)
 * drops watch events a client leaves unread for 20 s or that duplicate a pending one.
 */
export const CLIENT_OUTPUT_LIMIT = 256 * 1024;
/** A queue this large cannot come from replies and events as limited above; the client is disconnected. */
const CLIENT_OUTPUT_CUTOFF = 4 * 1024 * 1024;

export const DEFAULT_RUNDIR = "/var/run/xenstored";

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XENSTORED_PATH) return env.XENSTORED_PATH;
  return `${env.XENSTORED_RUNDIR || DEFAULT_RUNDIR}/socket`;
}

export type XenStoreServerErrorCode =
  | "XENSTORE_SOCKET_IN_USE" // another daemon answers on the path
  | "XENSTORE_SOCKET_PATH"; // the path exists and is not a socket, or cannot be created

export class XenStoreServerError extends Error {
  readonly code: XenStoreServerErrorCode;
  readonly path: string;
  constructor(code: XenStoreServerErrorCode, path: string, detail: string, cause?: unknown) {
    super(`xenstore socket ${path}: ${detail}`, cause === undefined ? undefined : { cause });
    this.name = "XenStoreServerError";
    this.code = code;
    this.path = path;
  }
}

export interface XenStoreSocketServerOptions {
  /** Socket path; defaults to defaultSocketPath(). */
  path?: string;
  /** One line per incident (a client not reading its socket); default: none. */
  log?: (line: string) => void;
}

/** One accepted client: its number (in log lines), when it came, and its flow-control state. */
interface Client {
  n: number;
  since: string;
  rest: Buffer | null;
  dropped: number;
  dropping: boolean;
}

export class XenStoreSocketServer {
  readonly path: string;
  private readonly store: XenStore;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly log: (line: string) => void;
  private accepted = 0;
  /** Watch events dropped because their client did not read (all clients, since start). */
  droppedWatchEvents = 0;

  constructor(store: XenStore, opts: XenStoreSocketServerOptions = {}) {
    this.store = store;
    this.path = opts.path ?? defaultSocketPath();
    this.log = opts.log ?? (() => {});
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /**
   * Listen (replacing a stale socket file left by a dead daemon). Resolves to the path. The socket is 0600
   * whatever the umask; its directory, when this creates it, 0700.
   */
  async listen(): Promise<string> {
    const path = this.path;
    try {
      const dir = dirname(path);
      if (!existsSync(dir)) {
        mkdirSync(dir, { recursive: true, mode: RUN_DIR_MODE });
        chmodSync(dir, RUN_DIR_MODE);
      }
    } catch (e) {
      throw new XenStoreServerError("XENSTORE_SOCKET_PATH", path, "cannot create its directory", e);
    }
    await this.removeStale(path);
    const server = createServer((sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(new XenStoreServerError("XENSTORE_SOCKET_PATH", path, "cannot listen", e)));
      listenPrivate(server, path, () => resolve());
    });
    server.on("error", () => {}); // after listening, errors are per connection
    this.server = server;
    return path;
  }

  private async removeStale(path: string): Promise<void> {
    let isSocket: boolean;
    try {
      isSocket = lstatSync(path).isSocket();
    } catch {
      return; // nothing there
    }
    if (!isSocket) throw new XenStoreServerError("XENSTORE_SOCKET_PATH", path, "exists and is not a socket");
    const alive = await new Promise<boolean>((resolve) => {
      const c = createConnection(path);
      c.once("connect", () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (alive) throw new XenStoreServerError("XENSTORE_SOCKET_IN_USE", path, "another XenStore daemon is listening");
    unlinkSync(path);
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    const c: Client = { n: ++this.accepted, since: new Date().toISOString(), rest: null, dropped: 0, dropping: false };
    const name = (): string => `xenstore socket ${this.path}: client #${c.n} (connected ${c.since})`;
    const over = (): boolean => sock.writableLength > CLIENT_OUTPUT_LIMIT;
    /** True (and counted) when a watch event for this client is to be dropped: its output is full. */
    const deaf = (): boolean => {
      // Counts the events already queued for it in the store (a transaction's commit queues them all at once).
      if (sock.writableLength + conn.session.queuedBytes <= CLIENT_OUTPUT_LIMIT) return false;
      c.dropped++;
      this.droppedWatchEvents++;
      if (!c.dropping) {
        c.dropping = true;
        this.log(`${name()} is not reading its replies (${sock.writableLength + conn.session.queuedBytes} bytes queued): dropping its watch events until it does`);
      }
      return true;
    };
    const output = (b: Buffer): void => {
      if (sock.destroyed) return;
      if (b.readUInt32LE(0) === XsType.WATCH_EVENT && deaf()) return;
      if (sock.writableLength > CLIENT_OUTPUT_CUTOFF) {
        this.log(`${name()}: ${sock.writableLength} bytes of output queued: disconnected`);
        sock.destroy();
        return;
      }
      sock.write(b);
    };
    const conn = new Connection(this.store, 0, output, { onClose: () => sock.destroy(), hold: over });
    // Events are dropped where the store would queue them, before any memory is spent on them.
    conn.session.deaf = deaf;
    const feed = (d: Buffer): void => {
      const took = conn.handleBytes(d);
      if (took < d.length && !conn.isClosed) {
        // Replies are piling up: read nothing more (the kernel's buffer holds the client's requests) until
        // the queue drains.
        c.rest = d.subarray(took);
        sock.pause();
      }
    };
    sock.on("data", feed);
    sock.on("drain", () => {
      if (c.dropping) {
        c.dropping = false;
        this.log(`${name()} reads again; ${c.dropped} watch events were dropped`);
        c.dropped = 0; // counted per episode
      }
      const rest = c.rest;
      if (rest === null) return;
      c.rest = null;
      feed(rest); // the requests already read first; read more only when none is left waiting
      if (c.rest === null) sock.resume();
    });
    sock.on("error", () => {});
    sock.on("close", () => {
      this.sockets.delete(sock);
      if (c.dropping) this.log(`${name()} closed; ${c.dropped} watch events were dropped`);
      conn.close("socket closed");
    });
  }

  /** Stop listening, drop every connection and remove the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

