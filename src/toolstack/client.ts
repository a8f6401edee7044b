/**
 * The client side of xenod's socket, for the `xeno` CLI (and tests): typed requests, events, console streams,
 * and starting xenod on demand.
 */
import type { Duplex } from "node:stream";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { XENOD_SOCKET, type Event, type Op, type ResultMap } from "../hv/protocol.js";
import { defaultRunDir, ensureRunDir, spawnDetached, waitForSocket } from "./spawn.js";
import { connectUnix, isNotListening, openConsoleStream, RpcEndpoint, ToolstackError, type ArgsOf, type RequestBody } from "./wire.js";

export { ToolstackError, type ToolstackErrorCode, type ArgsOf } from "./wire.js";
export { defaultRunDir } from "./spawn.js";

/** xenod's entry point next to this module once built (dist/src/toolstack/main.js). */
export const XENOD_MAIN = fileURLToPath(new URL("./main.js", import.meta.url));
export const XENOD_LOG = "xenod.log";
/** How long a freshly started xenod (which may itself start the hypervisor) may take to answer. */
export const XENOD_START_TIMEOUT_MS = 20_000;

export interface ConnectOptions {
  /** Default $XENO_RUN_DIR, else /run/xeno. */
  runDir?: string;
  /** Start xenod (detached, log DIR/xenod.log) when nothing answers on its socket. */
  autostart?: boolean;
  startTimeoutMs?: number;
}

/** Arguments of `request(op, …)`: optional for ops that take none (list, info, dmesg). */
type ArgsParam<O extends Op> = Record<string, never> extends ArgsOf<O> ? [args?: ArgsOf<O>] : [args: ArgsOf<O>];

export class XenodClient {
  private readonly listeners: ((e: Event) => void)[] = [];
  private subscribed: Promise<void> | null = null;
  private readonly ep: RpcEndpoint;

  constructor(readonly runDir: string, sock: import("node:net").Socket) {
    this.ep = new RpcEndpoint(sock, { what: "xenod", onEvent: (e) => { for (const l of this.listeners) l(e); } });
  }

  get socketPath(): string { return join(this.runDir, XENOD_SOCKET); }

  /** True once the connection to xenod has closed (requests then fail with ECONN). */
  get closed(): boolean { return this.ep.closed; }

  /**
   * One request; resolves with its result or rejects with a ToolstackError whose `code` is the protocol's
   * (ENOENT_DOMAIN, EEXIST_NAME, …, EHVDOWN when xenod has lost the hypervisor, ECONN when xenod went away).
   * `subscribe` and `console` have their own methods.
   */
  async request<O extends Op>(op: O, ...args: ArgsParam<O>): Promise<ResultMap[O]> {
    if (op === "console") throw new ToolstackError("EINVAL", "use openConsole() for a console");
    if (op === "subscribe") throw new ToolstackError("EINVAL", "use subscribe() for events");
    return await this.ep.request({ ...(args[0] ?? {}), op } as RequestBody) as ResultMap[O];
  }

  /** Calls `onEvent` for every hypervisor event from now on (domain created, stopped, destroyed, …). */
  subscribe(onEvent: (e: Event) => void): Promise<void> {
    this.listeners.push(onEvent);
    this.subscribed ??= this.ep.request({ op: "subscribe" }).then(() => undefined);
    return this.subscribed;
  }

  /**
   * A domain's console on a connection of its own: guest output to read, bytes written go to the guest's
   * console input; ending or destroying the stream closes it. `replay`: recent output first.
   */
  openConsole(domid: number, opts: { replay?: boolean } = {}): Promise<Duplex> {
    return openConsoleStream(this.socketPath, domid, opts.replay === true, "xenod");
  }

  close(): void { this.ep.close(); }
}

/**
 * Connects to xenod on DIR/xenod.sock. With `autostart`, a xenod is started when nothing answers and awaited
 * (≤ 20 s; ESTART with the tail of DIR/xenod.log if it does not come up). Without it, ECONN.
 */
export async function connectXenod(opts: ConnectOptions = {}): Promise<XenodClient> {
  const runDir = opts.runDir ?? defaultRunDir();
  const path = join(runDir, XENOD_SOCKET);
  try {
    return new XenodClient(runDir, await connectUnix(path));
  } catch (e) {
    if (!isNotListening(e) || !opts.autostart) {
      throw new ToolstackError("ECONN", `cannot connect to xenod at ${path}: ${(e as Error).message}` +
        (isNotListening(e) ? " (is xenod running?)" : ""), { cause: e });
    }
  }
  ensureRunDir(runDir);
  const logPath = join(runDir, XENOD_LOG);
  const child = spawnDetached(XENOD_MAIN, ["--run-dir", runDir, "--foreground"], logPath);
  const sock = await waitForSocket(path, { timeoutMs: opts.startTimeoutMs ?? XENOD_START_TIMEOUT_MS, child, logPath, what: "xenod" })
    .catch(async (e: unknown) => {
      // Two clients may have started one each: the loser exits (socket in use) while the winner answers.
      try { return await connectUnix(path); } catch { throw e; }
    });
  return new XenodClient(runDir, sock);
}
