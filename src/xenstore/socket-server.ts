/**
 * The toolstack's way in: a unix socket where every connection is a privileged (dom0) XenStore client, as
 * with xenstored's /var/run/xenstored/socket.
 *
 * Where clients look (libxenstore 4.17, tools/libs/store/xs.c and tools/xenstore/xs_lib.c, as in Debian 12):
 * `$XENSTORED_PATH` if set, else `$XENSTORED_RUNDIR/socket`, else `/var/run/xenstored/socket` (on Debian
 * /var/run is a symlink to /run). If that is not a socket they fall back to the xenbus device
 * (/dev/xen/xenbus), again overridden by XENSTORED_PATH. `defaultSocketPath` applies the same rules.
 */

import { mkdirSync, lstatSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { Connection } from "./connection.js";
import type { XenStore } from "./store.js";

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
}

export class XenStoreSocketServer {
  readonly path: string;
  private readonly store: XenStore;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(store: XenStore, opts: XenStoreSocketServerOptions = {}) {
    this.store = store;
    this.path = opts.path ?? defaultSocketPath();
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Listen (replacing a stale socket file left by a dead daemon). Resolves to the path. */
  async listen(): Promise<string> {
    const path = this.path;
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (e) {
      throw new XenStoreServerError("XENSTORE_SOCKET_PATH", path, "cannot create its directory", e);
    }
    await this.removeStale(path);
    const server = createServer((sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(new XenStoreServerError("XENSTORE_SOCKET_PATH", path, "cannot listen", e)));
      server.listen(path, () => resolve());
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
    const conn = new Connection(this.store, 0, (b) => sock.write(b), {
      onClose: () => sock.destroy(),
    });
    sock.on("data", (d: Buffer) => conn.handleBytes(d));
    sock.on("error", () => {});
    sock.on("close", () => {
      this.sockets.delete(sock);
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
