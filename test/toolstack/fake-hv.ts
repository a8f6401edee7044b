/**
 * A stand-in for the hypervisor process (src/hv/main.ts) that speaks the control protocol over a real unix
 * socket with domains that are only records: enough to test xenod's forwarding, console piping and policies
 * without booting anything. Tests drive guest behaviour with stopDomain() and emitConsole().
 * Also runnable: node dist/test/toolstack/fake-hv.js --run-dir DIR (for xenod's start-the-hypervisor path).
 */
import { randomUUID } from "node:crypto";
import { unlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HV_SOCKET, type DomainInfo, type DomainState, type ErrorCode, type Event, type Request, type ShutdownReason } from "../../src/hv/protocol.js";
import { encodeLine, LineBuffer } from "../../src/toolstack/wire.js";

interface FakeDomain { info: DomainInfo; output: string; input: string; consoles: Set<Socket> }

class Refusal extends Error { constructor(readonly code: ErrorCode, message: string) { super(message); } }

export class FakeHv {
  readonly socketPath: string;
  readonly domains = new Map<number, FakeDomain>();
  /** Every request received, in order (ops and arguments, ids removed). */
  readonly requests: Omit<Request, "id">[] = [];
  nextDomid = 1;
  private server: Server | null = null;
  private readonly conns = new Set<Socket>();
  private readonly subscribers = new Set<Socket>();
  /** Called with each console input chunk. */
  onInput: ((domid: number, text: string) => void) | null = null;

  constructor(readonly runDir: string) {
    this.socketPath = join(runDir, HV_SOCKET);
  }

  async start(): Promise<void> {
    try { unlinkSync(this.socketPath); } catch { /* none */ }
    const server = createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => { server.once("error", reject); server.listen(this.socketPath, resolve); });
    this.server = server;
  }

  /** Closes the socket and every connection (as a hypervisor that exits would). Domains are kept. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    const closed = new Promise<void>((r) => s.close(() => r()));
    for (const c of this.conns) c.destroy();
    await closed;
  }

  get subscriberCount(): number { return this.subscribers.size; }

  /** The guest stops: state "shutdown" with a reason, or "crashed". */
  stopDomain(domid: number, state: "shutdown" | "crashed", reason: ShutdownReason): void {
    const d = this.domains.get(domid)!;
    d.info.state = state;
    d.info.shutdownReason = reason;
    d.info.reason = state === "crashed" ? "test crash" : `SCHEDOP_shutdown ${reason}`;
    this.emit({ event: "domain", domid, name: d.info.name, state, shutdownReason: reason, reason: d.info.reason });
  }

  /** Guest console output. */
  emitConsole(domid: number, text: string): void {
    const d = this.domains.get(domid)!;
    d.output += text;
    for (const c of d.consoles) c.write(Buffer.from(text, "latin1"));
  }

  /** Adds a domain directly (as if created before xenod started). */
  addDomain(spec: DomainInfo["spec"], state: DomainState = "running", startTime = Date.now() / 1000): DomainInfo {
    const domid = this.nextDomid++;
    const info: DomainInfo = {
      domid, name: spec.name, uuid: spec.uuid ?? randomUUID(), state,
      memKiB: spec.memMiB * 1024, maxMemKiB: spec.memMiB * 1024, targetKiB: spec.memMiB * 1024,
      vcpus: spec.vcpus, onlineVcpus: spec.vcpus, cpuSeconds: 0, startTime, spec,
    };
    this.domains.set(domid, { info, output: "", input: "", consoles: new Set() });
    return info;
  }

  private emit(e: Event): void {
    for (const s of this.subscribers) s.write(encodeLine(e));
  }

  private accept(sock: Socket): void {
    this.conns.add(sock);
    const lines = new LineBuffer();
    sock.on("error", () => { /* close follows */ });
    sock.on("close", () => { this.conns.delete(sock); this.subscribers.delete(sock); });
    const onData = (chunk: Buffer): void => {
      lines.feed(chunk);
      for (let line = lines.next(); line !== null; line = lines.next()) {
        const req = JSON.parse(line) as Request;
        const { id, ...body } = req;
        this.requests.push(body);
        if (req.op === "console") {
          const d = this.domains.get(req.domid);
          if (!d) { sock.write(encodeLine({ id, ok: false, error: { code: "ENOENT_DOMAIN", message: `no domain ${req.domid}` } })); continue; }
          sock.off("data", onData);
          sock.write(encodeLine({ id, ok: true, result: null }));
          if (req.replay) sock.write(Buffer.from(d.output, "latin1"));
          d.consoles.add(sock);
          sock.on("close", () => d.consoles.delete(sock));
          const raw = (b: Buffer): void => {
            const text = b.toString("latin1");
            d.input += text;
            this.onInput?.(req.domid, text);
            this.emitConsole(req.domid, text); // a tty echoes
          };
          sock.on("data", raw);
          const rest = lines.rest();
          if (rest.length > 0) raw(rest);
          return;
        }
        try {
          const result = this.handle(sock, req);
          sock.write(encodeLine({ id, ok: true, result }));
        } catch (e) {
          if (!(e instanceof Refusal)) throw e;
          sock.write(encodeLine({ id, ok: false, error: { code: e.code, message: e.message } }));
        }
      }
    };
    sock.on("data", onData);
  }

  private dom(domid: number): FakeDomain {
    const d = this.domains.get(domid);
    if (!d) throw new Refusal("ENOENT_DOMAIN", `no domain ${domid}`);
    return d;
  }

  private handle(sock: Socket, req: Request): unknown {
    switch (req.op) {
      case "subscribe": this.subscribers.add(sock); return null;
      case "list": return [...this.domains.values()].map((d) => structuredClone(d.info));
      case "info": return { host: "fake", release: "0", machine: "aarch64", nrCpus: 2, totalMemoryMiB: 1024, freeMemoryMiB: 512, xenMajor: 4, xenMinor: 19, xenExtra: ".0-xeno", uptime: 1, xenstoredSocket: "/dev/null" };
      case "create": {
        if ([...this.domains.values()].some((d) => d.info.name === req.spec.name)) throw new Refusal("EEXIST_NAME", `domain ${req.spec.name} exists`);
        const info = this.addDomain(structuredClone(req.spec), req.spec.paused ? "paused" : "running");
        this.emit({ event: "domain", domid: info.domid, name: info.name, state: info.state });
        return { domid: info.domid };
      }
      case "destroy": {
        const d = this.dom(req.domid);
        this.domains.delete(req.domid);
        for (const c of d.consoles) c.end();
        this.emit({ event: "domain", domid: req.domid, name: d.info.name, state: "dying" });
        this.emit({ event: "domain", domid: req.domid, name: d.info.name, state: "destroyed" });
        return null;
      }
      case "rename": {
        const d = this.dom(req.domid);
        if ([...this.domains.values()].some((o) => o.info.name === req.name)) throw new Refusal("EEXIST_NAME", `domain ${req.name} exists`);
        d.info.name = req.name;
        return null;
      }
      case "set-toolstack": this.dom(req.domid).info.spec.toolstack = req.toolstack; return null;
      case "pause": {
        const d = this.dom(req.domid);
        if (d.info.state === "paused") throw new Refusal("ESTATE", "already paused");
        d.info.state = "paused";
        return null;
      }
      case "unpause": {
        const d = this.dom(req.domid);
        if (d.info.state !== "paused") throw new Refusal("ESTATE", "not paused");
        d.info.state = "running";
        return null;
      }
      case "shutdown": {
        this.dom(req.domid);
        const reason: ShutdownReason = req.reason === "halt" ? "poweroff" : req.reason;
        setTimeout(() => { if (this.domains.has(req.domid)) this.stopDomain(req.domid, "shutdown", reason); }, 20);
        return null;
      }
      case "mem-set": this.dom(req.domid).info.targetKiB = req.targetKiB; return null;
      case "sysrq": this.dom(req.domid); return null;
      case "dmesg": return ["(XEN) fake hypervisor"];
      default: throw new Refusal("ENOSYS", `unknown op ${(req as { op: string }).op}`);
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--run-dir");
  const dir = i > 0 ? process.argv[i + 1]! : process.env.XENO_RUN_DIR ?? "/run/xeno";
  const hv = new FakeHv(dir);
  await hv.start();
  writeFileSync(join(dir, "hv.pid"), `${process.pid}\n`);
  process.stderr.write(`fake-hv: listening on ${hv.socketPath}\n`);
  process.on("SIGTERM", () => { void hv.stop().then(() => process.exit(0)); });
}
