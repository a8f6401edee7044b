/**
 * The hypervisor's control socket (protocol.ts): JSON lines in, JSON lines out, one request per line; a
 * `console` request turns its connection into the domain's raw console stream; `subscribe` adds events.
 * A malformed line gets an EINVAL response (or, when longer than MAX_LINE, the connection is closed); the
 * server itself never goes down because of a client.
 *
 * Output is bounded per connection (CLIENT_OUTPUT_LIMIT bytes queued in this process, CLIENT_MAX_INFLIGHT
 * requests being answered): past either, no further request is read until the client reads (its requests wait
 * in the kernel's socket buffer); past the byte limit, console output for it is dropped (logged once per
 * episode), and a subscriber that would miss an event is disconnected with a log line (xenod reconnects and
 * lists the domains again, so it never acts on a partial event stream).
 */
import { createServer, createConnection, type Server, type Socket } from "node:net";
import { existsSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { ensurePrivateDir, listenPrivate } from "../common/private-socket.js";
import { HvError, type Hypervisor } from "./hypervisor.js";
import { MAX_LINE, type Event, type Request, type Response } from "./protocol.js";
import { parseRequest } from "./request-schema.js";

/** Bytes of output a control client may leave unread before the server holds back (see above). */
export const CLIENT_OUTPUT_LIMIT = 1 << 20;
/** Requests of one connection being carried out at once; more wait unread (as xenstored's outstanding quota). */
export const CLIENT_MAX_INFLIGHT = 64;

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private accepted = 0;

  constructor(private readonly hv: Hypervisor, readonly path: string) {}

  async listen(): Promise<void> {
    ensurePrivateDir(dirname(this.path));
    if (existsSync(this.path)) {
      const alive = await new Promise<boolean>((resolve) => {
        const c = createConnection(this.path);
        c.once("connect", () => { c.destroy(); resolve(true); });
        c.once("error", () => resolve(false));
      });
      if (alive) throw new HvError("ESTATE", `${this.path}: another hypervisor is listening`);
      unlinkSync(this.path);
    }
    const server = createServer((sock) => this.accept(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => { server.once("error", reject); listenPrivate(server, this.path, () => resolve()); });
    server.on("error", () => {});
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    try { unlinkSync(this.path); } catch { /* gone */ }
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    const name = `control socket ${this.path}: client #${++this.accepted} (connected ${new Date().toISOString()})`;
    let buf: Buffer = Buffer.alloc(0);
    let mode: "lines" | "console" = "lines";
    let consoleIn: ((b: Uint8Array) => void) | null = null;
    let detach: (() => void) | null = null;
    let onEvent: ((e: Event) => void) | null = null;
    let held = false; // not reading: the client leaves its output unread, or too many requests are in flight
    let inflight = 0;
    let consoleDropped = -1; // console bytes dropped in this episode (-1: none being dropped)
    const over = (): boolean => sock.writableLength > CLIENT_OUTPUT_LIMIT;
    const cleanup = (): void => {
      this.sockets.delete(sock);
      detach?.();
      if (onEvent) this.hv.off("event", onEvent);
    };
    sock.on("close", cleanup);
    sock.on("error", () => {});
    const send = (o: Response | Event): void => { if (!sock.destroyed) sock.write(JSON.stringify(o) + "\n"); };
    const consoleOut = (b: Uint8Array): void => {
      if (sock.destroyed) return;
      if (over()) {
        if (consoleDropped < 0) { consoleDropped = 0; this.hv.log(`${name} is not reading its console stream: dropping console output until it does`, "warn", "control"); }
        consoleDropped += b.length;
        return;
      }
      sock.write(b);
    };
    const pump = (): void => {
      for (let nl = buf.indexOf(0x0a); nl >= 0 && mode === "lines"; nl = buf.indexOf(0x0a)) {
        if (over() || inflight >= CLIENT_MAX_INFLIGHT) {
          // The client does not read its answers: read no more requests until it does ('drain', unhold).
          held = true;
          sock.pause();
          return;
        }
        const line = buf.subarray(0, nl).toString("utf8");
        buf = buf.subarray(nl + 1);
        if (line.trim() === "") continue;
        const parsed = parseRequest(line);
        if (!parsed.ok) {
          send({ id: parsed.id, ok: false, error: { code: "EINVAL", message: parsed.message } });
          continue;
        }
        const req: Request = parsed.request;
        if (req.op === "console") {
          try {
            const c = this.hv.attachConsole(req.domid, (b) => {
              if (b.length === 0) sock.end(); else consoleOut(b);
            }, false);
            send({ id: req.id, ok: true, result: null });
            mode = "console";
            consoleIn = c.input;
            detach = c.detach;
            // Replay after the OK line, so the client sees the response first.
            if (req.replay) this.hv.replayConsole(req.domid, consoleOut);
            const rest = buf;
            buf = Buffer.alloc(0);
            if (rest.length > 0) consoleIn(rest);
          } catch (e) {
            send(errorResponse(req.id, e));
          }
          continue;
        }
        if (req.op === "subscribe") {
          if (onEvent === null) {
            onEvent = (e) => {
              if (sock.destroyed) return;
              if (over()) {
                this.hv.log(`${name} subscribed to events but is not reading them (${sock.writableLength} bytes queued): disconnected`, "warn", "control");
                sock.destroy();
                return;
              }
              send(e);
            };
            this.hv.on("event", onEvent);
          }
          send({ id: req.id, ok: true, result: null });
          continue;
        }
        const id = req.id;
        inflight++;
        this.dispatch(req).then((result) => send({ id, ok: true, result: result ?? null }), (e) => send(errorResponse(id, e)))
          .finally(() => { inflight--; unhold(); });
      }
      if (mode === "lines" && buf.length > MAX_LINE) sock.destroy(); // a line longer than the protocol allows
    };
    const unhold = (): void => {
      if (!held || over() || inflight >= CLIENT_MAX_INFLIGHT || sock.destroyed) return;
      held = false;
      pump(); // the requests already read first; read more only when none is left waiting
      if (!held) sock.resume();
    };
    sock.on("drain", () => {
      if (consoleDropped >= 0) {
        this.hv.log(`${name} reads its console again; ${consoleDropped} bytes of console output were dropped`, "warn", "control");
        consoleDropped = -1;
      }
      unhold();
    });
    sock.on("data", (chunk: Buffer) => {
      if (mode === "console") { consoleIn?.(chunk); return; }
      // Bytes until a newline (a UTF-8 character split across chunks stays whole; console bytes stay raw).
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (!held) pump();
    });
  }

  private async dispatch(r: Request): Promise<unknown> {
    const hv = this.hv;
    switch (r.op) {
      case "create": return { domid: await hv.create(r.spec) };
      case "list": return hv.list();
      case "info": return hv.info();
      case "pause": return hv.pause(r.domid);
      case "unpause": return r.report === true ? hv.unpause(r.domid, { report: true, name: r.name }) : hv.unpause(r.domid);
      case "shutdown": return hv.shutdown(r.domid, r.reason);
      case "destroy": return hv.destroy(r.domid);
      case "save": return hv.save(r.domid, r.path, { checkpoint: r.checkpoint === true, paused: r.paused === true, suspend: r.suspend === true });
      case "migrate-send": return hv.migrateSend(r.domid, r.socket, { live: r.live, maxRounds: r.maxRounds, minDirty: r.minDirty, renameTo: r.renameTo });
      case "restore": return hv.restore(r.path, { paused: r.paused === true, name: r.name, spec: r.spec, stream: r.stream === true, received: r.received === true });
      case "rename": return hv.rename(r.domid, r.name);
      case "mem-set": return hv.memSet(r.domid, r.targetKiB);
      case "mem-max": return hv.memMax(r.domid, r.maxKiB);
      case "vcpu-set": return hv.vcpuSet(r.domid, r.vcpus);
      case "sysrq": return hv.sysrq(r.domid, r.key);
      case "set-toolstack": return hv.setToolstack(r.domid, r.toolstack);
      case "sched-credit": return hv.schedCredit(r.domid, r.weight, r.cap);
      case "sched-params": return hv.schedParams(r.tsliceMs);
      case "vcpu-pin": return hv.vcpuPin(r.domid, r.cpus);
      case "block-attach": return hv.blockAttach(r.domid, r.disk);
      case "block-detach": return hv.blockDetach(r.domid, r.devid, r.force === true);
      case "network-attach": return hv.networkAttach(r.domid, r.vif);
      case "network-detach": return hv.networkDetach(r.domid, r.devid, r.force === true);
      case "dmesg": return hv.dmesg(r.clear === true);
      default: throw new HvError("ENOSYS", `unknown op '${(r as { op: string }).op}'`);
    }
  }
}

function errorResponse(id: number, e: unknown): Response {
  if (e instanceof HvError) return { id, ok: false, error: { code: e.code, message: e.message } };
  return { id, ok: false, error: { code: "EINVAL", message: e instanceof Error ? e.message : String(e) } };
}
