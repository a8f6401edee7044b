/**
 * The unix socket server against real clients: Debian's xenstore-utils (libxenstore, which wraps most of its
 * commands in transactions) pointed at the socket with XENSTORED_PATH, and a raw-protocol client for
 * interleaved transactions and garbage input. The xenstore-utils part is skipped, with the reason printed,
 * when the tools are not installed (apt package xenstore-utils).
 */

import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { XenStoreSocketServer, defaultSocketPath } from "../../src/xenstore/socket-server.js";
import { XenStore } from "../../src/xenstore/store.js";
import { XsType } from "../../src/xenstore/wire.js";
import { RawClient, encode, parts, rng, strings } from "./xs-client.js";

/**
 * A client on Debian's libxenstore (the library xenstore-utils are built on), through python3's ctypes: each
 * xenstore-* tool does one kind of operation per transaction, so none of them can rm a subtree and write it
 * again in one. The JSON argument says what to do: {rm, write: [[path, value]…], pause?, attempts?}. Prints
 * one JSON line per event: {ready} (paused before the commit until a line arrives on stdin), then per commit
 * attempt {attempt, committed, errno}.
 */
const LIBXENSTORE_TX = `
import ctypes, json, sys
lib = ctypes.CDLL("libxenstore.so.4", use_errno=True)
lib.xs_open.restype = ctypes.c_void_p
lib.xs_open.argtypes = [ctypes.c_ulong]
lib.xs_transaction_start.restype = ctypes.c_uint32
lib.xs_transaction_start.argtypes = [ctypes.c_void_p]
lib.xs_rm.restype = ctypes.c_bool
lib.xs_rm.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p]
lib.xs_write.restype = ctypes.c_bool
lib.xs_write.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
lib.xs_transaction_end.restype = ctypes.c_bool
lib.xs_transaction_end.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_bool]
lib.xs_close.argtypes = [ctypes.c_void_p]
def out(**kw): print(json.dumps(kw), flush=True)
spec = json.loads(sys.argv[1])
h = lib.xs_open(0)
if not h: out(failed="xs_open", errno=ctypes.get_errno()); sys.exit(2)
for attempt in range(spec.get("attempts", 1)):
    t = lib.xs_transaction_start(h)
    if not lib.xs_rm(h, t, spec["rm"].encode()): out(failed="xs_rm", errno=ctypes.get_errno()); sys.exit(2)
    for p, v in spec["write"]:
        if not lib.xs_write(h, t, p.encode(), v.encode(), len(v)): out(failed="xs_write", errno=ctypes.get_errno()); sys.exit(2)
    if spec.get("pause") and attempt == 0:
        out(ready=True)
        sys.stdin.readline()
    ok = lib.xs_transaction_end(h, t, False)
    out(attempt=attempt, committed=ok, errno=0 if ok else ctypes.get_errno())
    if ok: break
lib.xs_close(h)
`;

function haveLibxenstore(): string | undefined {
  try {
    execFileSync("python3", ["-c", "import ctypes; ctypes.CDLL('libxenstore.so.4')"], { stdio: "pipe" });
    return undefined;
  } catch {
    return "python3 or libxenstore.so.4 missing (apt-get install python3 libxenstore4)";
  }
}

/** Runs LIBXENSTORE_TX with spec; `onReady` runs when it pauses before its first commit. Returns its lines. */
function libxenstoreTx(spec: object, onReady?: () => Promise<void>): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", LIBXENSTORE_TX, JSON.stringify(spec)], {
      env: { ...process.env, XENSTORED_PATH: sockPath },
    });
    const lines: Record<string, unknown>[] = [];
    let buf = "";
    let err = "";
    const timer = setTimeout(() => child.kill(), 10000);
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line.ready === true) {
          (onReady ?? (async () => {}))().then(() => child.stdin.end("go\n"), reject);
        }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(lines);
      else reject(new Error(`libxenstore client: exit ${code}: ${JSON.stringify(lines)} ${err}`));
    });
  });
}

function haveTools(): string | undefined {
  try {
    execFileSync("sh", ["-c", "command -v xenstore-read && command -v xenstore-ls && command -v xenstore-watch"], { stdio: "pipe" });
    return undefined;
  } catch {
    return "xenstore-utils not installed (apt-get install xenstore-utils)";
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir = "";
let sockPath = "";
let store: XenStore;
let server: XenStoreSocketServer;

function xs(tool: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(tool, args, { env: { ...process.env, XENSTORED_PATH: sockPath }, timeout: 10000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function xsOk(tool: string, ...args: string[]): Promise<string> {
  const r = await xs(tool, ...args);
  assert.equal(r.code, 0, `${tool} ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "xeno-xs-"));
  sockPath = join(dir, "run", "xenstored", "socket");
  store = new XenStore();
  server = new XenStoreSocketServer(store, { path: sockPath });
  await server.listen();
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("xenstore socket: server", () => {
  it("finds the socket as libxenstore does", () => {
    assert.equal(defaultSocketPath({}), "/var/run/xenstored/socket");
    assert.equal(defaultSocketPath({ XENSTORED_RUNDIR: "/tmp/r" }), "/tmp/r/socket");
    assert.equal(defaultSocketPath({ XENSTORED_PATH: "/x/s", XENSTORED_RUNDIR: "/tmp/r" }), "/x/s");
  });

  it("refuses a path in use or not a socket, replaces a stale one", async () => {
    await assert.rejects(new XenStoreSocketServer(new XenStore(), { path: sockPath }).listen(), { code: "XENSTORE_SOCKET_IN_USE" });
    const file = join(dir, "plain");
    writeFileSync(file, "x");
    await assert.rejects(new XenStoreSocketServer(new XenStore(), { path: file }).listen(), { code: "XENSTORE_SOCKET_PATH" });
    // A crashed daemon's socket: a child listens, then dies by SIGKILL, leaving the file behind.
    const p2 = join(dir, "s2");
    const child = spawn(process.execPath, ["-e", "require('net').createServer().listen(process.argv[1], () => console.log('up'))", p2]);
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    const dead = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await dead;
    assert.equal(lstatSync(p2).isSocket(), true);
    const s2 = new XenStoreSocketServer(new XenStore(), { path: p2 });
    await s2.listen();
    await s2.close();
  });
});

describe("xenstore socket: raw protocol clients", () => {
  it("two clients in conflicting transactions: the second commit gets EAGAIN", async () => {
    const a = await RawClient.connect(sockPath);
    const b = await RawClient.connect(sockPath);
    await a.request(XsType.WRITE, Buffer.concat([strings("/tx/counter"), Buffer.from("0")]));
    const ta = Number(parts((await a.request(XsType.TRANSACTION_START, strings(""))).payload)[0]);
    const tb = Number(parts((await b.request(XsType.TRANSACTION_START, strings(""))).payload)[0]);
    const va = Number((await a.request(XsType.READ, strings("/tx/counter"), ta)).payload.toString());
    const vb = Number((await b.request(XsType.READ, strings("/tx/counter"), tb)).payload.toString());
    await a.request(XsType.WRITE, Buffer.concat([strings("/tx/counter"), Buffer.from(String(va + 1))]), ta);
    await b.request(XsType.WRITE, Buffer.concat([strings("/tx/counter"), Buffer.from(String(vb + 1))]), tb);
    const ea = await a.request(XsType.TRANSACTION_END, strings("T"), ta);
    assert.equal(ea.type, XsType.TRANSACTION_END);
    const eb = await b.request(XsType.TRANSACTION_END, strings("T"), tb);
    assert.equal(eb.type, XsType.ERROR);
    assert.equal(eb.payload.toString("latin1"), "EAGAIN\0");
    assert.equal((await a.request(XsType.READ, strings("/tx/counter"))).payload.toString(), "1");
    a.close();
    b.close();
  });

  it("concurrent increments with retry on EAGAIN lose nothing", async () => {
    const clients = await Promise.all([0, 1, 2, 3].map(() => RawClient.connect(sockPath)));
    await clients[0]!.request(XsType.WRITE, Buffer.concat([strings("/tx/sum"), Buffer.from("0")]));
    let retries = 0;
    const incr = async (c: RawClient): Promise<void> => {
      for (;;) {
        const t = Number(parts((await c.request(XsType.TRANSACTION_START, strings(""))).payload)[0]);
        const v = Number((await c.request(XsType.READ, strings("/tx/sum"), t)).payload.toString());
        await new Promise((r) => setImmediate(r)); // let the others interleave
        await c.request(XsType.WRITE, Buffer.concat([strings("/tx/sum"), Buffer.from(String(v + 1))]), t);
        const e = await c.request(XsType.TRANSACTION_END, strings("T"), t);
        if (e.type !== XsType.ERROR) return;
        assert.equal(e.payload.toString("latin1"), "EAGAIN\0");
        retries++;
      }
    };
    await Promise.all(clients.map(async (c) => { for (let i = 0; i < 10; i++) await incr(c); }));
    assert.equal((await clients[0]!.request(XsType.READ, strings("/tx/sum"))).payload.toString(), "40");
    assert.ok(retries > 0, "the interleaving produced conflicts");
    for (const c of clients) c.close();
  });

  it("garbage on one connection does not disturb the server or other clients", async () => {
    const good = await RawClient.connect(sockPath);
    const next = rng(77);
    for (let round = 0; round < 20; round++) {
      const bad = await RawClient.connect(sockPath);
      const junk = Buffer.alloc(200 + (next() % 2000));
      for (let i = 0; i < junk.length; i++) junk[i] = next() & 0xff;
      bad.send(junk);
      bad.send(encode(XsType.READ, 1, 0, strings("/local")));
      const r = await good.request(XsType.READ, strings("/local/domain/0/name"));
      assert.equal(r.payload.toString(), "Domain-0");
      bad.close();
    }
    good.close();
  });
});

const skip = haveTools();
if (skip !== undefined) console.log(`# xenstore socket: skipping the xenstore-utils tests: ${skip}`);

describe("xenstore socket: Debian xenstore-utils", { skip }, () => {
  it("xenstore-ls shows the initial tree", async () => {
    const out = await xsOk("xenstore-ls", "/local");
    assert.match(out, /^domain = ""\n 0 = ""\n  name = "Domain-0"\n  domid = "0"\n/);
  });

  it("xenstore-write / -read / -list / -exists / -rm", async () => {
    await xsOk("xenstore-write", "/utils/a", "alpha", "/utils/b/c", "with spaces");
    assert.equal(await xsOk("xenstore-read", "/utils/a", "/utils/b/c"), "alpha\nwith spaces\n");
    assert.equal(await xsOk("xenstore-list", "/utils"), "a\nb\n");
    assert.equal((await xs("xenstore-exists", "/utils/b")).code, 0);
    assert.equal((await xs("xenstore-exists", "/utils/zzz")).code, 1);
    const miss = await xs("xenstore-read", "/utils/zzz");
    assert.equal(miss.code, 1);
    assert.match(miss.stderr, /couldn't read path \/utils\/zzz/);
    await xsOk("xenstore-rm", "/utils/b");
    assert.equal(await xsOk("xenstore-list", "/utils"), "a\n");
    assert.equal(store.directory(store.connect(0, () => {}), null, "/utils").join(","), "a");
    assert.equal(await xsOk("xenstore-read", "domid"), "0\n"); // relative to /local/domain/0
  });

  it("xenstore-chmod sets perms that xenstore-ls -p shows", async () => {
    await xsOk("xenstore-write", "/utils/p", "v");
    await xsOk("xenstore-chmod", "/utils/p", "b0", "r5");
    const ls = await xsOk("xenstore-ls", "-p", "/utils");
    assert.match(ls, /p = "v"[ .]*\(b0,r5\)/);
    assert.equal(store.getPerms(store.connect(0, () => {}), null, "/utils/p").join(","), "b0,r5");
  });

  it("xenstore-ls -f lists full paths; xenstore-list copes with a directory larger than one payload", async () => {
    const names: string[] = [];
    const s = store.connect(0, () => {});
    for (let i = 0; i < 250; i++) {
      const n = `entry-with-a-long-name-to-fill-the-payload-${i}`;
      names.push(n);
      store.write(s, null, `/utils/many/${n}`, Buffer.from(String(i)));
    }
    const listed = (await xsOk("xenstore-list", "/utils/many")).trim().split("\n");
    assert.deepEqual(listed, names);
    const full = await xsOk("xenstore-ls", "-f", "/utils/many");
    assert.ok(full.includes(`/utils/many/${names[249]} = "249"`));
  });

  it("xenstore-watch gets the initial event and later changes", async () => {
    const child = spawn("xenstore-watch", ["-n", "3", "/utils/w"], { env: { ...process.env, XENSTORED_PATH: sockPath } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const done = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? -1)));
    const timer = setTimeout(() => child.kill(), 10000);
    // Wait for the watch to be registered (its initial event) before changing anything.
    while (!out.includes("/utils/w\n")) await new Promise((r) => setTimeout(r, 20));
    const s = store.connect(0, () => {});
    store.write(s, null, "/utils/w/x", Buffer.from("1"));
    store.write(s, null, "/utils/other", Buffer.from("1")); // not watched
    store.rm(s, null, "/utils/w");
    assert.equal(await done, 0);
    clearTimeout(timer);
    assert.equal(out, "/utils/w\n/utils/w/x\n/utils/w\n");
  });
});

const skipLib = skip ?? haveLibxenstore();
if (skipLib !== undefined && skip === undefined) console.log(`# xenstore socket: skipping the libxenstore tests: ${skipLib}`);

describe("xenstore socket: Debian libxenstore, a device directory rebuilt in one transaction", { skip: skipLib }, () => {
  const VIF = "/local/domain/1/device/vif";
  const setUp = async (): Promise<void> => {
    await xsOk("xenstore-write", VIF, ""); // so that the rm finds it, left over from the previous test or not
    await xsOk("xenstore-rm", VIF);
    await xsOk("xenstore-write", `${VIF}/0/mac`, "00:16:3e:00:00:01", `${VIF}/0/state`, "4", `${VIF}/1/x`, "1");
  };
  const rebuild = { rm: VIF, write: [[`${VIF}/0/mac`, "00:16:3e:00:00:02"], [`${VIF}/0/state`, "1"]] };

  it("rm then writes below it commit at the first attempt", async () => {
    await setUp();
    const lines = await libxenstoreTx({ ...rebuild, attempts: 3 });
    assert.deepEqual(lines, [{ attempt: 0, committed: true, errno: 0 }]);
    assert.equal(await xsOk("xenstore-ls", "-f", VIF), `${VIF}/0 = ""\n${VIF}/0/mac = "00:16:3e:00:00:02"\n${VIF}/0/state = "1"\n`);
  });

  it("a write by xenstore-write meanwhile, to a node the transaction removed, makes the commit fail with EAGAIN", async () => {
    await setUp();
    // The other client writes while the transaction waits before its commit; the retry then commits.
    const lines = await libxenstoreTx({ ...rebuild, pause: true, attempts: 2 }, async () => {
      await xsOk("xenstore-write", `${VIF}/1/x`, "outside");
    });
    assert.deepEqual(lines, [
      { ready: true },
      { attempt: 0, committed: false, errno: 11 }, // EAGAIN
      { attempt: 1, committed: true, errno: 0 },
    ]);
    assert.equal(await xsOk("xenstore-list", VIF), "0\n");
  });

  it("so does one to a node it wrote again", async () => {
    await setUp();
    const lines = await libxenstoreTx({ ...rebuild, pause: true }, async () => {
      await xsOk("xenstore-write", `${VIF}/0/mac`, "outside");
    });
    assert.deepEqual(lines.at(-1), { attempt: 0, committed: false, errno: 11 });
    assert.equal(await xsOk("xenstore-read", `${VIF}/0/mac`, `${VIF}/1/x`), "outside\n1\n");
  });
});
