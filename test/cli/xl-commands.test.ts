/**
 * The xl subcommands' dispatch and behaviour against a fake toolstack client: prefix matching, help, usage
 * errors (status 2), protocol errors turned into messages (status 1), the requests each command sends,
 * shutdown -w on events, console through a pipe, top in batch mode.
 */
import assert from "node:assert/strict";
import { PassThrough, Duplex } from "node:stream";
import { describe, it } from "node:test";
import type { DomainInfo, Event, HostInfo, Op } from "../../src/hv/protocol.js";
import type { XlClient } from "../../src/cli/xl/client.js";
import { lookupCommand, runCommand, XL_COMMANDS, type Command } from "../../src/cli/xl/commands.js";
import type { XlEnv } from "../../src/cli/xl/env.js";
import { dom, GUESTS, HOST } from "./xl-fixtures.js";

type Handler = (args: Record<string, unknown>) => unknown;

class FakeClient {
  readonly calls: { op: Op; args: Record<string, unknown> }[] = [];
  readonly listeners: ((e: Event) => void)[] = [];
  closed = false;
  console?: Duplex;
  constructor(public doms: DomainInfo[], public host: HostInfo, public handlers: Partial<Record<Op, Handler>> = {}) {}

  request = (async (op: Op, args: Record<string, unknown> = {}): Promise<unknown> => {
    this.calls.push({ op, args });
    const h = this.handlers[op];
    if (h) return h(args);
    if (op === "list") return this.doms;
    if (op === "info") return this.host;
    return null;
  }) as XlClient["request"];

  async subscribe(f: (e: Event) => void): Promise<void> { this.listeners.push(f); }
  emit(e: Event): void { for (const l of this.listeners) l(e); }
  async openConsole(domid: number): Promise<Duplex> {
    this.calls.push({ op: "console", args: { domid } });
    if (!this.console) throw Object.assign(new Error("no console"), { code: "ENOENT_DOMAIN" });
    return this.console;
  }
  close(): void { this.closed = true; }
  /** The non-read-only requests sent. */
  actions(): { op: Op; args: Record<string, unknown> }[] { return this.calls.filter((c) => c.op !== "list" && c.op !== "info"); }
}

function protoError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const TABLE: Command[] = [
  { kind: "raw", name: "create", usage: "<ConfigFile>", desc: "Create a domain", raw: async (a) => (a.includes("--help") ? 0 : 42) },
  ...XL_COMMANDS,
];

async function run(argv: string[], client = new FakeClient(GUESTS, HOST), io: Partial<XlEnv> = {}): Promise<{ code: number; out: string; err: string; client: FakeClient }> {
  let out = "", err = "";
  const env: XlEnv = {
    out: (s) => { out += s; }, err: (s) => { err += s; },
    connect: async () => client as unknown as XlClient,
    now: () => 1_700_003_600, osVersion: () => "#1 SMP",
    stdin: new PassThrough() as unknown as NodeJS.ReadStream,
    stdout: new PassThrough() as unknown as NodeJS.WriteStream,
    ...io,
  };
  const code = await runCommand(TABLE, argv, env);
  return { code, out, err, client };
}

describe("dispatch", () => {
  it("a unique prefix runs the command; an exact name wins", async () => {
    assert.equal(lookupCommand(TABLE, "li").name, "list");
    assert.equal(lookupCommand(TABLE, "cr").name, "create");
    assert.equal(lookupCommand(TABLE, "domname").name, "domname");
    assert.equal(lookupCommand(TABLE, "domi").name, "domid");
    const r = await run(["li"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /^Name {40}ID {3}Mem VCPUs\tState\tTime\(s\)\nDomain-0 /);
  });

  it("an ambiguous prefix lists the candidates; exit 2", async () => {
    const r = await run(["re"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /'re' is ambiguous: it could be reboot, restore, rename/);
    assert.match((await run(["dom"])).err, /could be domid, domname/);
  });

  it("an unknown command is an error listing the commands; exit 2", async () => {
    const r = await run(["frobnicate"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command 'frobnicate'; the commands are: create, list, destroy/);
  });

  it("help, help CMD, CMD --help; xeno alone prints the list and exits 2", async () => {
    const all = await run(["help"]);
    assert.equal(all.code, 0);
    assert.match(all.out, /^Usage: xeno <subcommand> \[args\]\n\nxeno full list of subcommands:\n\n create {14}Create a domain\n list {16}List information about all\/some domains\n/);
    const one = await run(["help", "sh"]);
    assert.equal(one.out, "Usage: xeno shutdown [options] <-a|Domain>\n\nIssue a shutdown signal to a domain.\n\nOptions:\n\n" +
      "-a, --all               Shutdown all guest domains.\n" +
      "-F                      (xl: fall back to an ACPI power event; Xeno has none, the PV request is used)\n" +
      "-w, --wait              Wait for guest(s) to shutdown (twice: until destroyed).\n");
    const h = await run(["pause", "--help"]);
    assert.equal(h.code, 0);
    assert.equal(h.out, "Usage: xeno pause <Domain>\n\nPause execution of a domain.\n\n");
    assert.equal((await run(["help", "create"])).code, 0); // the raw command's own --help
    assert.equal((await run(["create", "x.cfg"])).code, 42); // raw commands get their arguments as they are
    const none = await run([]);
    assert.equal(none.code, 2);
    assert.match(none.err, /xeno full list of subcommands/);
  });

  it("usage errors: missing arguments, extra arguments, unknown options; exit 2 with the help", async () => {
    let r = await run(["pause"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^xeno pause: 'xeno pause' requires at least 1 argument\n\nUsage: xeno pause <Domain>/);
    r = await run(["pause", "a", "b"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /takes at most 1 argument/);
    r = await run(["list", "-q"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /option '-q' not supported/);
    r = await run(["shutdown"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /you must give -a or a domain/);
  });
});

describe("domain commands", () => {
  it("pause/unpause/destroy resolve a name or an id and send the domid", async () => {
    let r = await run(["pause", "db"]);
    assert.equal(r.code, 0);
    assert.deepEqual(r.client.actions(), [{ op: "pause", args: { domid: 7 } }]);
    assert.equal(r.client.closed, true);
    r = await run(["unp", "7"]);
    assert.deepEqual(r.client.actions(), [{ op: "unpause", args: { domid: 7 } }]);
    r = await run(["destroy", "web"]);
    assert.deepEqual(r.client.actions(), [{ op: "destroy", args: { domid: 1 } }]);
  });

  it("a missing domain: exit 1 naming it", async () => {
    const r = await run(["pause", "nosuch"]);
    assert.equal(r.code, 1);
    assert.equal(r.err, "xeno pause: domain 'nosuch' does not exist ('xeno list' shows the domains)\n");
    assert.deepEqual(r.client.actions(), []);
  });

  it("protocol errors become messages naming the domain and what to do", async () => {
    const c = new FakeClient(GUESTS, HOST, { unpause: () => { throw protoError("ESTATE", "domain 1 is not paused"); } });
    let r = await run(["unpause", "web"], c);
    assert.equal(r.code, 1);
    assert.equal(r.err, "xeno unpause: cannot unpause domain 'web' (1): domain 1 is not paused " +
      "(not possible in the domain's current state ('xeno list' shows it))\n");
    const gone = new FakeClient(GUESTS, HOST, { destroy: () => { throw protoError("ENOENT_DOMAIN", "no domain 1"); } });
    r = await run(["destroy", "1"], gone);
    assert.match(r.err, /cannot destroy domain 'web' \(1\): no domain 1 \(the domain does not exist \(any more\)/);
  });

  it("a daemon that cannot be reached is an error, exit 1", async () => {
    let err = "";
    const code = await runCommand(TABLE, ["list"], {
      out: () => {}, err: (s) => { err += s; }, now: () => 0, osVersion: () => "",
      connect: async () => { const { describeFailure } = await import("../../src/cli/xl/errors.js"); throw describeFailure(protoError("ECONN", "cannot connect to xenod at /x/xenod.sock"), "reach the toolstack daemon (xenod)"); },
      stdin: new PassThrough() as unknown as NodeJS.ReadStream, stdout: new PassThrough() as unknown as NodeJS.WriteStream,
    });
    assert.equal(code, 1);
    assert.match(err, /^xeno list: cannot reach the toolstack daemon \(xenod\): cannot connect to xenod at \/x\/xenod.sock \(the connection/);
  });

  it("Domain-0 is refused: it is the toolstack", async () => {
    for (const cmd of [["destroy", "0"], ["pause", "Domain-0"], ["shutdown", "0"], ["mem-set", "0", "512"], ["console", "0"]]) {
      const r = await run(cmd);
      assert.equal(r.code, 1, cmd.join(" "));
      assert.match(r.err, /Domain-0.*toolstack/, cmd.join(" "));
      assert.deepEqual(r.client.actions(), [], cmd.join(" "));
    }
  });

  it("rename, sysrq, dmesg", async () => {
    let r = await run(["rename", "web", "www"]);
    assert.deepEqual(r.client.actions(), [{ op: "rename", args: { domid: 1, name: "www" } }]);
    r = await run(["rename", "web", "123"]);
    assert.equal(r.code, 2);
    r = await run(["sysrq", "web", "s"]);
    assert.deepEqual(r.client.actions(), [{ op: "sysrq", args: { domid: 1, key: "s" } }]);
    r = await run(["sysrq", "web", "sync"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /invalid sysrq 'sync'/);
    const c = new FakeClient(GUESTS, HOST, { dmesg: () => ["(XEN) one", "(XEN) two\n"] });
    r = await run(["dmesg", "-c"], c);
    assert.equal(r.out, "(XEN) one\n(XEN) two\n");
    assert.deepEqual(r.client.actions(), [{ op: "dmesg", args: { clear: true } }]);
  });

  it("mem-set: a bare number is MiB; above the maximum and bad sizes are refused", async () => {
    let r = await run(["mem-set", "web", "64"]);
    assert.equal(r.code, 0);
    assert.deepEqual(r.client.actions(), [{ op: "mem-set", args: { domid: 1, targetKiB: 65536 } }]);
    r = await run(["mem-set", "web", "98304k"]);
    assert.deepEqual(r.client.actions(), [{ op: "mem-set", args: { domid: 1, targetKiB: 98304 } }]);
    r = await run(["mem-set", "web", "1g"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /above its maximum of 128 MiB/);
    r = await run(["mem-set", "web", "12q"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /invalid memory size: 12q/);
  });

  it("the features the hypervisor lacks say 'not implemented yet', exit 1", async () => {
    let r;
    for (const cmd of ["save", "restore", "migrate"]) {
      r = await run([cmd, "web", "x"]);
      assert.equal(r.code, 1, cmd);
      assert.match(r.err, new RegExp(`^xeno ${cmd}: not implemented yet: .+\\n$`), cmd);
      assert.deepEqual(r.client.actions(), [], cmd);
    }
  });
});

describe("shutdown / reboot", () => {
  it("asks the guest and returns (no -w)", async () => {
    const r = await run(["shutdown", "web"]);
    assert.equal(r.code, 0);
    assert.equal(r.err, "Shutting down domain 1\n");
    assert.deepEqual(r.client.actions(), [{ op: "shutdown", args: { domid: 1, reason: "poweroff" } }]);
    const rb = await run(["reboot", "db"]);
    assert.equal(rb.err, "Rebooting domain 7\n");
    assert.deepEqual(rb.client.actions(), [{ op: "shutdown", args: { domid: 7, reason: "reboot" } }]);
  });

  it("-a -w: every guest, waiting for each to shut down (events subscribed first)", async () => {
    const c: FakeClient = new FakeClient(GUESTS, HOST, {
      shutdown: (a) => {
        // The guest reacts at once, before the answer reaches the CLI.
        const domid = a.domid as number;
        setImmediate(() => {
          c.emit({ event: "domain", domid, name: "x", state: "shutdown", shutdownReason: "poweroff" });
          c.emit({ event: "domain", domid, name: "x", state: "destroyed" });
        });
        return null;
      },
    });
    const r = await run(["shutdown", "-a", "-w"], c);
    assert.equal(r.code, 0);
    assert.deepEqual(c.actions().map((x) => x.args.domid), [1, 7, 12]); // "down" (12) is already shut down: asked anyway
    assert.match(r.err, /^Shutting down domain 1\nShutting down domain 7\nShutting down domain 12\nWaiting for 3 domains\n/);
    assert.match(r.err, /Domain 1 has been shut down, reason code 0\n/);
    assert.match(r.err, /Domain 7 has been shut down, reason code 0\n/);
  });

  it("-w -w waits for destruction", async () => {
    const c: FakeClient = new FakeClient(GUESTS, HOST, {
      shutdown: (a) => {
        setTimeout(() => c.emit({ event: "domain", domid: a.domid as number, name: "web", state: "shutdown", shutdownReason: "reboot" }), 5);
        setTimeout(() => c.emit({ event: "domain", domid: a.domid as number, name: "web", state: "destroyed" }), 20);
        return null;
      },
    });
    const r = await run(["reboot", "-ww", "web"], c);
    assert.equal(r.code, 0);
    assert.equal(r.err, "Rebooting domain 1\nWaiting for 1 domains\nDomain 1 has been destroyed\n");
  });

  it("a refused request: exit 1, the others still asked", async () => {
    const c = new FakeClient(GUESTS, HOST, { shutdown: (a) => { if (a.domid === 7) throw protoError("ESTATE", "domain 7 is paused"); return null; } });
    const r = await run(["shutdown", "-a"], c);
    assert.equal(r.code, 1);
    assert.equal(c.actions().length, 3);
    assert.match(r.err, /xeno shutdown: cannot shut down domain 'db' \(7\): domain 7 is paused/);
  });
});

describe("info, lists", () => {
  it("info FIELD and an unknown field", async () => {
    assert.equal((await run(["info", "nr_cpus"])).out, "4\n");
    const r = await run(["info", "bogus"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /no field of 'xeno info' starts with 'bogus' \(fields: host, release/);
  });
  it("list DOMAIN… and list -l DOMAIN", async () => {
    const r = await run(["list", "db", "web"]);
    assert.deepEqual(r.out.split("\n").slice(1, 3).map((l) => l.split(/ +/)[0]), ["db", "web"]);
    const l = JSON.parse((await run(["list", "-l", "web"])).out) as { domid: number }[];
    assert.deepEqual(l.map((x) => x.domid), [1]);
  });
  it("domid / domname", async () => {
    assert.equal((await run(["domid", "db"])).out, "7\n");
    assert.equal((await run(["domid", "Domain-0"])).out, "0\n");
    assert.equal((await run(["domname", "12"])).out, "down\n");
    const r = await run(["domname", "db"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /invalid domain id 'db'/);
  });
  it("block-list needs a domain; vcpu-list takes all", async () => {
    assert.equal((await run(["block-list"])).code, 2);
    const v = await run(["vcpu-list"]);
    assert.equal(v.out.split("\n").filter((l) => l !== "").length, 1 + 4 + 2 + 1 + 1);
  });
});

describe("top -b", () => {
  it("prints the header and rows per iteration; CPU(%) from the second sample", async () => {
    let t = 1000;
    let cpu = 10; // one CPU second more at each sample (the clock is read before each list)
    const c = new FakeClient([], HOST, { list: () => [dom({ cpuSeconds: cpu })] });
    const r = await run(["top", "-b", "-i", "2", "-d", "0.01"], c, { now: () => { const x = t; t += 2; cpu += 1; return x; } });
    assert.equal(r.code, 0);
    const lines = r.out.split("\n");
    assert.match(lines[0]!, /^ {6}NAME {2}STATE/);
    assert.match(lines[1]!, /^  Domain-0 -----r/);
    assert.match(lines[2]!, /^ {7}web -----r {9}11 {4}0\.0 /);
    assert.match(lines[3]!, /^ {6}NAME/);
    // 1 s of CPU in 2 s: 50 %.
    assert.match(lines[5]!, /^ {7}web -----r {9}12 {3}50\.0 /);
  });
  it("bad -d / -i are usage errors", async () => {
    assert.equal((await run(["top", "-b", "-d", "0"])).code, 2);
    assert.equal((await run(["top", "-b", "-i", "x"])).code, 2);
  });
});

describe("console through a pipe", () => {
  it("stdin goes to the guest, output to stdout; the escape character detaches", async () => {
    const toGuest: Buffer[] = [];
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) { toGuest.push(chunk); cb(); },
    });
    const c = new FakeClient(GUESTS, HOST);
    c.console = stream;
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    let shown = "";
    stdout.on("data", (b: Buffer) => { shown += b.toString(); });
    const done = run(["console", "web"], c, { stdin: stdin as unknown as NodeJS.ReadStream, stdout: stdout as unknown as NodeJS.WriteStream });
    await new Promise((r) => setTimeout(r, 20));
    stream.push("login: ");
    stdin.write("uname -a\n");
    await new Promise((r) => setTimeout(r, 20));
    stdin.write("ls\x1dignored");
    const r = await done;
    assert.equal(r.code, 0);
    assert.equal(shown, "login: ");
    assert.equal(Buffer.concat(toGuest).toString(), "uname -a\nls");
    assert.deepEqual(c.calls.filter((x) => x.op === "console"), [{ op: "console", args: { domid: 1 } }]);
  });

  it("ends when the stream closes (domain destroyed); end of stdin does not detach", async () => {
    const stream = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    const c = new FakeClient(GUESTS, HOST);
    c.console = stream;
    const stdin = new PassThrough();
    const done = run(["console", "web"], c, { stdin: stdin as unknown as NodeJS.ReadStream });
    await new Promise((r) => setTimeout(r, 20));
    stdin.end();
    await new Promise((r) => setTimeout(r, 20));
    let finished = false;
    void done.then(() => { finished = true; });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(finished, false);
    stream.push(null);
    stream.destroy();
    assert.equal((await done).code, 0);
  });

  it("-t must match the domain's console", async () => {
    const r = await run(["console", "-t", "serial", "web"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /its console is the PV console \(hvc0\), -t pv/);
    assert.equal((await run(["console", "-t", "bogus", "web"])).code, 2);
  });
});
