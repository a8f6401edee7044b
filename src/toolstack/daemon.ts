/**
 * xenod: the toolstack daemon. It serves the control protocol (src/hv/protocol.ts) on DIR/xenod.sock:
 * requests are forwarded to the hypervisor under xenod's own ids and the answers relayed back; `subscribe`
 * gets the hypervisor's events (xenod is subscribed once and fans them out); `console` turns the client's
 * connection into a byte pipe to a console connection of its own to the hypervisor. Meanwhile the supervisor
 * applies on_poweroff/on_reboot/on_crash to domains that stop.
 *
 * Domains live in the hypervisor: stopping xenod (or losing the hypervisor connection) never touches them.
 * When the hypervisor dies, xenod starts a new one (hv-link.ts) and gives each domain that went with it its
 * on_crash (lost-domains.ts).
 */
import { unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { XENOD_SOCKET, type DomainInfo, type DomainSpec, type Event, type Response } from "../hv/protocol.js";
import { parseRequest } from "../hv/request-schema.js";
import { listenPrivate } from "../common/private-socket.js";
import type { LogLevel } from "../common/log.js";
import { ApiServer, type ListenAddress } from "../api/server.js";
import { HvLink } from "./hv-link.js";
import { LostDomains } from "./lost-domains.js";
import { DEFAULT_POLICIES } from "./policy.js";
import { ensureRunDir } from "./spawn.js";
import { Supervisor } from "./supervisor.js";
import { connectUnix, encodeLine, isNotListening, LineBuffer, openConsoleStream, ToolstackError, type RequestBody, type ToolstackErrorCode } from "./wire.js";

export interface XenodOptions {
  runDir: string;
  /** One line per action or incident (the caller formats it, src/common/log.ts, and chooses the stream). */
  log(line: string, level?: LogLevel): void;
  /** The hypervisor's entry point to start when none listens (default: dist/src/hv/main.js); false: never. */
  hvMain?: string | false;
  hvStartTimeoutMs?: number;
  /** The XenAPI endpoint (src/api): where it listens (empty: not served) and its directory. */
  api?: { listen: ListenAddress[]; apiDir: string };
}

/** Another xenod already serves the run directory. */
export class XenodInUseError extends Error {
  readonly code = "EINUSE";
  constructor(readonly socketPath: string) {
    super(`another xenod is already serving ${socketPath}`);
    this.name = "XenodInUseError";
  }
}

export class Xenod {
  readonly socketPath: string;
  readonly hv: HvLink;
  readonly supervisor: Supervisor;
  /** Domains that vanish with the hypervisor get their on_crash (lost-domains.ts). */
  readonly lost: LostDomains;
  private server: Server | null = null;
  private readonly clients = new Set<ClientConnection>();
  private stopping: Promise<void> | null = null;
  /** The XenAPI endpoint, when asked for; it gets the hypervisor's events through these listeners. */
  api: ApiServer | null = null;
  private readonly eventListeners: ((e: Event) => void)[] = [];

  private constructor(readonly opts: XenodOptions) {
    this.socketPath = join(opts.runDir, XENOD_SOCKET);
    this.hv = new HvLink({
      runDir: opts.runDir,
      hvMain: opts.hvMain,
      startTimeoutMs: opts.hvStartTimeoutMs,
      log: opts.log,
      onEvent: (e) => this.onHvEvent(e),
      onUp: () => {
        void this.supervisor.resync();
        void this.lost.linkUp().catch((e: unknown) => opts.log(`listing domains after (re)connecting failed: ${(e as Error).message}`));
      },
      onDown: () => this.lost.linkDown(),
      firstDomid: () => this.lost.nextDomid,
    });
    this.supervisor = new Supervisor(this.hv, opts.log);
    this.lost = new LostDomains(this.hv, opts.log);
  }

  /**
   * Starts xenod: refuses when another one answers on DIR/xenod.sock (XenodInUseError), connects to the
   * hypervisor (starting it if needed; ToolstackError ESTART), then listens (replacing a stale socket file).
   */
  static async start(opts: XenodOptions): Promise<Xenod> {
    ensureRunDir(opts.runDir);
    const x = new Xenod(opts);
    await x.refuseIfInUse();
    try {
      await x.hv.start();
      await x.listen();
      if (opts.api && opts.api.listen.length > 0) {
        try {
          x.api = await ApiServer.start({
            backend: {
              request: (body) => x.forward(body as RequestBody), onEvent: (l) => { x.eventListeners.push(l); },
              // The web console's terminal: a console connection of its own to the hypervisor, as for `xeno console`.
              openConsole: (domid, replay) => openConsoleStream(x.hv.socketPath, domid, replay, "the hypervisor"),
            },
            listen: opts.api.listen, apiDir: opts.api.apiDir, runDir: opts.runDir, log: opts.log,
          });
        } catch (e) {
          // The domains and the CLI do not depend on the API: xenod serves on without it.
          opts.log(`API: not served: ${(e as Error).message} (check --api-dir ${opts.api.apiDir})`, "error");
        }
      }
    } catch (e) {
      x.hv.stop();
      throw e;
    }
    return x;
  }

  /** Stops serving: closes the socket and every client connection, removes the socket file. Domains stay. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.api?.stop();
      const server = this.server;
      this.server = null;
      if (server) {
        const closed = new Promise<void>((r) => server.close(() => r()));
        for (const c of this.clients) c.destroy();
        await closed;
        try { unlinkSync(this.socketPath); } catch { /* already gone */ }
      }
      this.hv.stop();
    })();
    return this.stopping;
  }

  private async refuseIfInUse(): Promise<void> {
    try {
      const s = await connectUnix(this.socketPath);
      s.destroy();
      throw new XenodInUseError(this.socketPath);
    } catch (e) {
      if (e instanceof XenodInUseError) throw e;
      // Nothing answers: a missing or stale socket file, replaced by listen().
    }
  }

  private listen(): Promise<void> {
    let accepted = 0;
    const server = createServer((sock) => {
      const c = new ClientConnection(sock, this, `xenod socket ${this.socketPath}: client #${++accepted} (connected ${new Date().toISOString()})`);
      this.clients.add(c);
      sock.on("close", () => this.clients.delete(c));
    });
    const tryListen = (): Promise<void> => new Promise((resolve, reject) => {
      server.once("error", reject);
      listenPrivate(server, this.socketPath, () => { server.off("error", reject); resolve(); }); // 0600 whatever the umask
    });
    return tryListen().catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== "EADDRINUSE") throw e;
      // The file exists: in use by a xenod that started meanwhile, or stale (left by one that died).
      try {
        (await connectUnix(this.socketPath)).destroy();
        throw new XenodInUseError(this.socketPath);
      } catch (e2) {
        if (!isNotListening(e2)) throw e2;
      }
      unlinkSync(this.socketPath);
      await tryListen();
    }).then(() => {
      this.server = server;
    });
  }

  private onHvEvent(e: Event): void {
    this.supervisor.onEvent(e);
    this.lost.onEvent(e);
    for (const l of this.eventListeners) l(e);
    const line = encodeLine(e);
    for (const c of this.clients) c.event(line);
  }

  /** A client's request other than subscribe/console: forwarded to the hypervisor. */
  forward(body: RequestBody): Promise<unknown> {
    if (body.op === "create" && body.spec && typeof body.spec === "object" && body.spec.toolstack === undefined) {
      // Keep the policies with the domain explicitly, so that a later xenod applies the same ones.
      const spec: DomainSpec = { ...body.spec, toolstack: { ...DEFAULT_POLICIES } };
      return this.hv.request({ ...body, spec });
    }
    if (body.op === "list") return this.hv.request(body).then(withXenodInDomain0);
    return this.hv.request(body);
  }
}

/**
 * Bytes of output a client may leave unread: past it xenod reads no more of its requests until it reads (they
 * wait in the kernel's socket buffer), and a subscriber that would miss an event is disconnected with a log line.
 */
export const CLIENT_OUTPUT_LIMIT = 1 << 20;
/** Requests of one client forwarded and not yet answered; more wait unread. */
export const CLIENT_MAX_INFLIGHT = 64;

/** One client connection: protocol lines, until a `console` request turns it into a byte pipe. */
class ClientConnection {
  private readonly lines = new LineBuffer();
  private subscribed = false;
  /** Set while a console request is being set up: bytes received meanwhile (for the guest, or more lines if it fails). */
  private held: Buffer[] | null = null;
  private piped = false;
  /** Set while the client leaves its answers unread: no line is read until 'drain'. */
  private paused = false;
  private inflight = 0;
  private readonly onData = (chunk: Buffer): void => this.data(chunk);

  constructor(private readonly sock: Socket, private readonly xenod: Xenod, private readonly name: string) {
    sock.on("data", this.onData);
    sock.on("error", () => { /* close follows */ });
    sock.on("drain", () => this.unpause());
  }

  private unpause(): void {
    if (!this.paused || this.piped || this.over || this.inflight >= CLIENT_MAX_INFLIGHT || this.sock.destroyed) return;
    this.paused = false;
    this.data(Buffer.alloc(0)); // the lines already read first; read more only when none is left waiting
    if (!this.paused) this.sock.resume();
  }

  destroy(): void { this.sock.destroy(); }

  private get over(): boolean { return this.sock.writableLength > CLIENT_OUTPUT_LIMIT; }

  event(line: string): void {
    if (!(this.subscribed && !this.piped && this.held === null && this.sock.writable)) return;
    if (this.over) {
      this.xenod.opts.log(`${this.name} subscribed to events but is not reading them (${this.sock.writableLength} bytes queued): disconnected`, "warn");
      this.sock.destroy();
      return;
    }
    this.sock.write(line);
  }

  private send(r: Response): void {
    if (!this.piped && this.sock.writable) this.sock.write(encodeLine(r));
  }

  private fail(id: number, code: ToolstackErrorCode, message: string): void {
    // Codes beyond ErrorCode (EHVDOWN…) travel in the same field; see ToolstackErrorCode.
    this.send({ id, ok: false, error: { code: code as Extract<Response, { ok: false }>["error"]["code"], message } });
  }

  private data(chunk: Buffer): void {
    if (this.held) { this.held.push(chunk); return; }
    this.lines.feed(chunk);
    try {
      for (let line = this.lines.next(); line !== null; line = this.lines.next()) {
        this.line(line);
        if ((this.over || this.inflight >= CLIENT_MAX_INFLIGHT) && this.held === null) {
          // Answers are piling up unread: stop reading requests until the client reads ('drain').
          this.paused = true;
          this.sock.pause();
          return;
        }
        const held = this.held as Buffer[] | null; // set by line() for a console request
        if (held) {
          // A console request: what follows it is not ours to parse unless the console is refused.
          const rest = this.lines.rest();
          if (rest.length > 0) held.push(rest);
          return;
        }
      }
    } catch (e) {
      this.fail(-1, "EPROTO", (e as Error).message);
      this.sock.end();
      this.sock.off("data", this.onData);
    }
  }

  private line(text: string): void {
    if (text.trim() === "") return;
    // The same schema as the hypervisor's socket (src/hv/request-schema.ts): a bad field is answered here.
    const parsed = parseRequest(text);
    if (!parsed.ok) { this.fail(parsed.id, "EINVAL", parsed.message); return; }
    const { id, ...body } = parsed.request;
    if (body.op === "subscribe") {
      this.subscribed = true;
      this.send({ id, ok: true, result: null });
      return;
    }
    if (body.op === "console") {
      this.console(id, body as { domid?: unknown; replay?: unknown });
      return;
    }
    this.inflight++;
    this.xenod.forward(body as RequestBody).then(
      (result) => this.send({ id, ok: true, result: result ?? null }),
      (e: unknown) => {
        const err = e instanceof ToolstackError ? e : new ToolstackError("EHVDOWN", String((e as Error)?.message ?? e));
        this.fail(id, err.code, err.message);
      },
    ).finally(() => { this.inflight--; this.unpause(); });
  }

  private console(id: number, req: { domid?: unknown; replay?: unknown }): void {
    if (typeof req.domid !== "number") { this.fail(id, "EINVAL", "console: domid must be a number"); return; }
    if (!this.xenod.hv.up) { this.fail(id, "EHVDOWN", "xenod is not connected to the hypervisor (retrying)"); return; }
    this.held = [];
    openConsoleStream(this.xenod.hv.socketPath, req.domid, req.replay === true, "the hypervisor").then((hvSock) => {
      const held = this.held ?? [];
      this.held = null;
      if (this.sock.destroyed) { hvSock.destroy(); return; }
      this.send({ id, ok: true, result: null });
      this.piped = true;
      this.sock.off("data", this.onData);
      for (const b of held) hvSock.write(b);
      pipeBoth(this.sock, hvSock);
    }, (e: unknown) => {
      const err = e instanceof ToolstackError ? e : new ToolstackError("EHVDOWN", String(e));
      const held = this.held ?? [];
      this.held = null;
      this.fail(id, err.code === "ECONN" ? "EHVDOWN" : err.code, err.message);
      // Back to protocol lines: parse what arrived meanwhile.
      for (const b of held) this.data(b);
    });
  }
}

/** Joins two sockets both ways; an end or close of either ends the other. */
function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const closeOther = (other: Socket) => (): void => {
    if (other.destroyed) return;
    other.end();
    // A peer that ignores the end is cut off shortly after.
    setTimeout(() => other.destroy(), 1000).unref();
  };
  a.on("close", closeOther(b));
  b.on("close", closeOther(a));
  a.on("error", () => { /* close follows */ });
  b.on("error", () => { /* close follows */ });
}

/**
 * Domain-0 is the toolstack: the hypervisor reports its own share (src/hv/dom0-usage.ts), xenod adds its CPU
 * time and resident memory to the row it passes on.
 */
function withXenodInDomain0(list: unknown): unknown {
  if (!Array.isArray(list)) return list;
  return list.map((d: DomainInfo) => {
    if (d?.domid !== 0) return d;
    const c = process.cpuUsage(), rssKiB = Math.floor(process.memoryUsage().rss / 1024);
    return { ...d, cpuSeconds: d.cpuSeconds + (c.user + c.system) / 1e6, memKiB: d.memKiB + rssKiB, maxMemKiB: d.maxMemKiB + rssKiB };
  });
}
