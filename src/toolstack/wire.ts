/**
 * The JSON-lines transport of src/hv/protocol.ts, shared by xenod (towards the hypervisor and towards its
 * clients) and by the client library: line framing with the MAX_LINE limit, a request/response endpoint that
 * numbers requests and routes events, and opening a console stream (a connection that turns raw after OK).
 */
import { connect, type Socket } from "node:net";
import { MAX_LINE, type ErrorCode, type Event, type Request, type Response } from "../hv/protocol.js";

/**
 * Codes of failures that happen around the protocol rather than inside the hypervisor. They travel in the
 * protocol's `error.code` field like ErrorCode (EHVDOWN from xenod to its clients), so callers test one field.
 */
export type ToolstackErrorCode =
  | ErrorCode
  | "EHVDOWN"     // xenod has no connection to the hypervisor (it is starting, restarting or gone); retry later
  | "ECONN"       // the connection closed (or could not be made) before the answer came
  | "EPROTO"      // the peer sent something that is not the protocol (bad JSON, over-long line)
  | "ESTART";     // xenod or the hypervisor could not be started; the message has the log's tail

/** A failed request or connection, with the protocol's stable code. */
export class ToolstackError extends Error {
  constructor(readonly code: ToolstackErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ToolstackError";
  }
}

/** Splits a byte stream into '\n'-terminated lines; what follows the last line is kept for the next feed. */
export class LineBuffer {
  private buf: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The next complete line (without its '\n'), or null; throws EPROTO for a line longer than MAX_LINE. */
  next(): string | null {
    const nl = this.buf.indexOf(10);
    if (nl < 0) {
      if (this.buf.length > MAX_LINE) throw new ToolstackError("EPROTO", `protocol line longer than ${MAX_LINE} bytes`);
      return null;
    }
    if (nl > MAX_LINE) throw new ToolstackError("EPROTO", `protocol line longer than ${MAX_LINE} bytes`);
    const line = this.buf.subarray(0, nl).toString("utf8");
    this.buf = this.buf.subarray(nl + 1);
    return line;
  }

  /** Takes the bytes not consumed as lines (the start of the raw stream when a connection turns into a console). */
  rest(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }
}

/** One protocol line. */
export function encodeLine(msg: unknown): string {
  return JSON.stringify(msg) + "\n";
}

/** Request without its id: what callers hand to an endpoint. */
export type RequestBody = Request extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

/** The arguments of one op (the request minus `id` and `op`). */
export type ArgsOf<O extends Request["op"]> = Omit<Extract<Request, { op: O }>, "id" | "op">;

/** Connects a unix socket; resolves once connected, rejects with the socket error (code ENOENT, ECONNREFUSED…). */
export function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const onError = (e: Error): void => { s.destroy(); reject(e); };
    s.once("error", onError);
    s.once("connect", () => { s.off("error", onError); resolve(s); });
  });
}

/** True when the error means "nothing listens there" (as opposed to permission and other failures). */
export function isNotListening(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ECONNREFUSED";
}

interface Pending { resolve(v: unknown): void; reject(e: Error): void }

/**
 * A request/response endpoint on a connected socket: numbers requests, matches answers by id (they may come
 * in any order), hands events to `onEvent`. When the socket closes every pending request fails with ECONN.
 */
export class RpcEndpoint {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly lines = new LineBuffer();
  private closedWith: ToolstackError | null = null;

  constructor(
    readonly socket: Socket,
    private readonly hooks: { onEvent?(e: Event): void; onClose?(err: ToolstackError): void; what?: string } = {},
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => { /* the close that follows reports it */ });
    socket.on("close", () => this.fail(new ToolstackError("ECONN", `connection to ${this.hooks.what ?? "peer"} closed`)));
  }

  get closed(): boolean { return this.closedWith !== null; }

  /** Sends a request; resolves with `result` or rejects with a ToolstackError carrying the protocol's code. */
  request(body: RequestBody): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(encodeLine({ ...body, id }));
    });
  }

  close(): void {
    this.socket.destroy();
    this.fail(new ToolstackError("ECONN", `connection to ${this.hooks.what ?? "peer"} closed`));
  }

  private onData(chunk: Buffer): void {
    this.lines.feed(chunk);
    try {
      for (let line = this.lines.next(); line !== null; line = this.lines.next()) {
        if (line.trim() === "") continue;
        this.onMessage(JSON.parse(line) as unknown);
      }
    } catch (e) {
      const err = e instanceof ToolstackError ? e : new ToolstackError("EPROTO", `bad protocol line from ${this.hooks.what ?? "peer"}: ${(e as Error).message}`);
      this.socket.destroy();
      this.fail(err);
    }
  }

  private onMessage(msg: unknown): void {
    if (typeof msg !== "object" || msg === null) throw new Error("not an object");
    if ("event" in msg) { this.hooks.onEvent?.(msg as Event); return; }
    const r = msg as Response;
    const p = this.pending.get(r.id);
    if (!p) return; // an answer to nothing we asked: ignore
    this.pending.delete(r.id);
    if (r.ok) p.resolve(r.result);
    else p.reject(new ToolstackError(r.error?.code ?? "EPROTO", r.error?.message ?? "request failed"));
  }

  private fail(err: ToolstackError): void {
    if (this.closedWith) return;
    this.closedWith = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.hooks.onClose?.(err);
  }
}

/**
 * Opens a console stream: a new connection to `path`, a `console` request, and once it is answered OK the
 * socket itself carries the console bytes (anything that arrived after the OK line is put back in front).
 */
export async function openConsoleStream(path: string, domid: number, replay: boolean, what = "peer"): Promise<Socket> {
  let sock: Socket;
  try {
    sock = await connectUnix(path);
  } catch (e) {
    throw new ToolstackError("ECONN", `cannot connect to ${what} at ${path}: ${(e as Error).message}`, { cause: e });
  }
  return new Promise((resolve, reject) => {
    const lines = new LineBuffer();
    const done = (err: Error | null): void => {
      sock.off("data", onData);
      sock.off("close", onClose);
      sock.off("error", onError);
      if (err) { sock.destroy(); reject(err); return; }
      const rest = lines.rest();
      if (rest.length > 0) sock.unshift(rest);
      // The socket was paused so that no byte is lost before the caller attaches a consumer; a 'data' listener
      // does not resume an explicitly paused stream, so do it for the first one (pipe() resumes by itself).
      const onListener = (ev: string | symbol): void => {
        if (ev !== "data") return;
        sock.off("newListener", onListener);
        process.nextTick(() => sock.resume());
      };
      sock.on("newListener", onListener);
      resolve(sock);
    };
    const onData = (chunk: Buffer): void => {
      lines.feed(chunk);
      let line: string | null;
      try { line = lines.next(); } catch (e) { done(e as Error); return; }
      if (line === null) return;
      sock.pause(); // nothing flows until the caller attaches its consumer
      let r: Response;
      try { r = JSON.parse(line) as Response; } catch (e) { done(new ToolstackError("EPROTO", `bad console answer from ${what}: ${(e as Error).message}`)); return; }
      if (r.ok) done(null);
      else done(new ToolstackError(r.error?.code ?? "EPROTO", r.error?.message ?? "console refused"));
    };
    const onClose = (): void => done(new ToolstackError("ECONN", `${what} closed the console connection before answering`));
    const onError = (): void => { /* close follows */ };
    sock.on("data", onData);
    sock.on("close", onClose);
    sock.on("error", onError);
    sock.write(encodeLine({ id: 1, op: "console", domid, replay }));
  });
}
