/** A small client of the hypervisor's control protocol for tests (src/hv/protocol.ts), and a console tap. */
import type { ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import type { Event, Response } from "../../src/hv/protocol.js";

export class HvClient {
  private buf = "";
  private nextId = 1;
  private readonly pending = new Map<number, (r: Response) => void>();
  readonly events: Event[] = [];

  private constructor(private readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
        const m = JSON.parse(this.buf.slice(0, nl)) as Response | Event;
        this.buf = this.buf.slice(nl + 1);
        if ("event" in m) this.events.push(m);
        else this.pending.get(m.id)?.(m);
      }
    });
  }

  static connect(path: string): Promise<HvClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once("connect", () => resolve(new HvClient(s)));
      s.once("error", reject);
    });
  }

  /** Sends a request; resolves with the whole response (ok or error). */
  call(op: string, args: Record<string, unknown> = {}): Promise<Response> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, (r) => { this.pending.delete(id); resolve(r); });
      this.sock.write(JSON.stringify({ id, op, ...args }) + "\n");
    });
  }

  /** Sends a request; resolves with its result, rejects with "CODE: message" on an error response. */
  async ok<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const r = await this.call(op, args);
    if (!r.ok) throw new Error(`${op}: ${r.error.code}: ${r.error.message}`);
    return r.result as T;
  }

  /** Raw line (for malformed-input tests). */
  raw(line: string): void { this.sock.write(line); }

  close(): void { this.sock.end(); }
}

/** A console connection collecting the domain's output. */
export class ConsoleTap {
  out = "";
  ended = false;
  private constructor(private readonly sock: Socket) {}

  static async open(path: string, domid: number, replay = true): Promise<ConsoleTap> {
    const s = createConnection(path);
    await new Promise<void>((resolve, reject) => { s.once("connect", () => resolve()); s.once("error", reject); });
    const t = new ConsoleTap(s);
    let first = true;
    s.on("data", (d: Buffer) => {
      let chunk = d;
      if (first) {
        const nl = d.indexOf(0x0a);
        const resp = JSON.parse(d.subarray(0, nl).toString()) as Response;
        if (!resp.ok) t.out += `CONSOLE ERROR ${resp.error.code}`;
        chunk = d.subarray(nl + 1);
        first = false;
      }
      t.out += chunk.toString("latin1");
    });
    s.on("end", () => { t.ended = true; });
    s.on("close", () => { t.ended = true; });
    s.write(JSON.stringify({ id: 1, op: "console", domid, replay }) + "\n");
    return t;
  }

  type(text: string): void { this.sock.write(text); }

  async waitFor(re: RegExp, from: number, ms: number, what: string): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.out.slice(from));
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`${what}: not seen in ${ms / 1000} s; console tail:\n${this.out.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Types a command and waits for a line matching `re` after it. */
  async run(cmd: string, re: RegExp, ms = 120_000): Promise<RegExpExecArray> {
    const from = this.out.length;
    this.type(cmd + "\n");
    return this.waitFor(re, from, ms, `'${cmd}'`);
  }

  close(): void { this.sock.destroy(); }
}

/** Waits (up to 10 s) for a hypervisor started with `--run-dir dir` to write its pid file, then connects. */
export async function connectHv(dir: string): Promise<HvClient> {
  for (let i = 0; i < 100 && !existsSync(join(dir, "hv.pid")); i++) await new Promise((r) => setTimeout(r, 100));
  return HvClient.connect(join(dir, "hv.sock"));
}

/** Stops a hypervisor child (SIGTERM, then SIGKILL after `graceMs`) and removes its run directory. */
export async function stopHv(hv: ChildProcess, dir: string, graceMs = 1000): Promise<void> {
  hv.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, graceMs));
  if (hv.exitCode === null) hv.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
