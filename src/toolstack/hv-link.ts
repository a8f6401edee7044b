/**
 * xenod's connection to the hypervisor process: found at DIR/hv.sock, started detached when nothing listens
 * there, subscribed to events, and re-made with backoff whenever it drops (the hypervisor was restarted or
 * died). While it is down every request fails with EHVDOWN at once; nothing is queued, nothing is retried
 * behind the caller's back.
 *
 * A hypervisor that died (nothing listens, and DIR/hv.pid names a process that is gone: a clean stop removes
 * that file before exiting, a kill -9 or a crash cannot) is started again, when this link may start one, at
 * most HV_RESTARTS times in HV_RESTART_WINDOW_MS; after that xenod only reconnects, and says so.
 */
import { existsSync, readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HV_SOCKET, type Event } from "../hv/protocol.js";
import type { LogLevel } from "../common/log.js";
import { spawnDetached, waitForSocket } from "./spawn.js";
import { hvSpawnEnv } from "../hv/malloc-env.js";
import { connectUnix, isNotListening, RpcEndpoint, ToolstackError, type RequestBody } from "./wire.js";

/** The hypervisor's entry point next to this module once built (dist/src/hv/main.js). */
export const HV_MAIN = fileURLToPath(new URL("../hv/main.js", import.meta.url));
export const HV_LOG = "hv.log";

/** How long a freshly spawned hypervisor may take to answer. */
export const HV_START_TIMEOUT_MS = 15_000;
const BACKOFF_FIRST_MS = 200;
/** Hypervisor restarts allowed within the window before xenod stops starting new ones. */
export const HV_RESTARTS = 3;
export const HV_RESTART_WINDOW_MS = 60_000;
const BACKOFF_MAX_MS = 5_000;

export interface HvLinkOptions {
  runDir: string;
  /** Script started when nothing listens (default HV_MAIN); false: never start one. */
  hvMain?: string | false;
  startTimeoutMs?: number;
  log(line: string, level?: LogLevel): void;
  onEvent(e: Event): void;
  /** The link is (again) up and subscribed: time to list domains and catch up. */
  onUp(): void;
  onDown?(): void;
  /** The first domid a hypervisor started in place of a dead one gives (above the ones it had), if known. */
  firstDomid?(): number | undefined;
}

export class HvLink {
  readonly socketPath: string;
  private ep: RpcEndpoint | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoff = BACKOFF_FIRST_MS;
  /** Pid of the hypervisor this link started, if it did. */
  spawnedPid: number | undefined;
  /** When this link started a hypervisor after one died (Date.now()), newest last. */
  private readonly restarts: number[] = [];
  private restarting = false;

  constructor(private readonly opts: HvLinkOptions) {
    this.socketPath = join(opts.runDir, HV_SOCKET);
  }

  get up(): boolean { return this.ep !== null && !this.ep.closed; }

  /**
   * First connection: connect, or start the hypervisor when nothing listens and wait for it (ESTART with the
   * log's tail when it does not come up).
   */
  async start(): Promise<void> {
    let sock: Socket;
    try {
      sock = await connectUnix(this.socketPath);
    } catch (e) {
      if (!isNotListening(e)) throw new ToolstackError("ESTART", `cannot connect to the hypervisor at ${this.socketPath}: ${(e as Error).message}`, { cause: e });
      const main = this.opts.hvMain ?? HV_MAIN;
      if (main === false) throw new ToolstackError("ESTART", `no hypervisor listens on ${this.socketPath}`);
      if (!existsSync(main)) throw new ToolstackError("ESTART", `no hypervisor listens on ${this.socketPath} and ${main} does not exist (build first)`);
      const logPath = join(this.opts.runDir, HV_LOG);
      const first = this.restarting ? this.opts.firstDomid?.() : undefined;
      const child = spawnDetached(main, ["--run-dir", this.opts.runDir, ...(first !== undefined ? ["--first-domid", String(first)] : [])], logPath,
        hvSpawnEnv()); // glibc malloc settings it cannot give itself (src/hv/malloc-env.ts)
      this.spawnedPid = child.pid;
      this.opts.log(`started the hypervisor (pid ${child.pid}, log ${logPath})`);
      sock = await waitForSocket(this.socketPath, { timeoutMs: this.opts.startTimeoutMs ?? HV_START_TIMEOUT_MS, child, logPath, what: "the hypervisor" });
    }
    await this.attach(sock);
  }

  /** Sends a request to the hypervisor; EHVDOWN while the link is down or when it drops before the answer. */
  async request(body: RequestBody): Promise<unknown> {
    const ep = this.ep;
    if (!ep || ep.closed) throw new ToolstackError("EHVDOWN", "xenod is not connected to the hypervisor (retrying)");
    try {
      return await ep.request(body);
    } catch (e) {
      if (e instanceof ToolstackError && e.code === "ECONN") {
        throw new ToolstackError("EHVDOWN", "the connection to the hypervisor was lost before it answered (the request may have been carried out)");
      }
      throw e;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.ep?.close();
    this.ep = null;
  }

  /** The pid in DIR/hv.pid when that process is gone (it died without a clean stop), else null. */
  private deadHypervisor(): number | null {
    let pid: number;
    try { pid = Number(readFileSync(join(this.opts.runDir, "hv.pid"), "utf8").trim()); } catch { return null; }
    if (!Number.isInteger(pid) || pid <= 0) return null;
    try { process.kill(pid, 0); return null; } catch (e) { return (e as NodeJS.ErrnoException).code === "ESRCH" ? pid : null; }
  }

  /** Starts a new hypervisor in place of one that died (within the restart budget), then attaches to it. */
  private async restart(deadPid: number): Promise<void> {
    if (this.restarting || this.stopped) return;
    const now = Date.now();
    while (this.restarts.length > 0 && now - this.restarts[0]! > HV_RESTART_WINDOW_MS) this.restarts.shift();
    if (this.restarts.length >= HV_RESTARTS) {
      if (this.restarts.length === HV_RESTARTS) {
        this.restarts.push(now); // log once per window
        this.opts.log(`the hypervisor (pid ${deadPid}) died again: ${HV_RESTARTS} restarts within ${HV_RESTART_WINDOW_MS / 1000} s, ` +
          `not starting another; see ${join(this.opts.runDir, HV_LOG)}, start it by hand (node ${this.opts.hvMain ?? HV_MAIN} --run-dir ${this.opts.runDir}); xenod keeps reconnecting`, "error");
      }
      this.scheduleRetry();
      return;
    }
    this.restarts.push(now);
    this.restarting = true;
    this.opts.log(`the hypervisor (pid ${deadPid}) is gone without a clean stop (its pid file remains); starting a new one`, "warn");
    try {
      await this.start();
      this.opts.log("reconnected to the hypervisor");
    } catch (e) {
      this.opts.log(`could not start a new hypervisor: ${(e as Error).message}`, "error");
      this.scheduleRetry();
    } finally {
      this.restarting = false;
    }
  }

  private async attach(sock: Socket): Promise<void> {
    const ep = new RpcEndpoint(sock, {
      what: "the hypervisor",
      onEvent: (e) => this.opts.onEvent(e),
      onClose: () => this.onClose(ep),
    });
    this.ep = ep;
    await ep.request({ op: "subscribe" });
    this.backoff = BACKOFF_FIRST_MS;
    this.opts.onUp();
  }

  private onClose(ep: RpcEndpoint): void {
    if (this.ep !== ep) return;
    this.ep = null;
    if (this.stopped) return;
    this.opts.log(`lost the connection to the hypervisor; reconnecting to ${this.socketPath}`);
    this.opts.onDown?.();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      connectUnix(this.socketPath).then(async (sock) => {
        if (this.stopped) { sock.destroy(); return; }
        this.opts.log("reconnected to the hypervisor");
        await this.attach(sock);
      }).catch((e: unknown) => {
        if (this.up) return;
        const dead = isNotListening(e) ? this.deadHypervisor() : null;
        if (dead !== null && this.opts.hvMain !== false) { void this.restart(dead); return; }
        // Not there yet (or it dropped again during subscribe, in which case onClose already rescheduled).
        this.scheduleRetry();
      });
    }, delay);
  }
}
