/**
 * xl migrate / migrate-receive (tools/xl/xl_migrate.c), live: the sender's hypervisor writes the save stream
 * (docs/save-format.md) into a socket of the sender's while the domain runs — all of RAM, then rounds of the
 * pages written meanwhile (src/hv/save-live.ts), then, paused, the rest with the state — and the sender passes
 * it to the transport; the receiver passes it, by its framing, into a socket its hypervisor reads as it comes,
 * so pre-copied pages land in the new domain's memory before the sender pauses. Then xl_migrate.c's
 * handshake, with its banners:
 *
 *   receiver → sender  "xl migration receiver ready, send binary domain data.\n"   (no NUL)
 *   sender → receiver  the save stream (xl header, config, libxl stream up to its END)
 *   receiver → sender  (Xeno's, during the stream) SYNC_ACK, 8 bytes, the first 0: the receiving hypervisor's
 *                      answer to the stream's drain mark, passed to the sending hypervisor, which pauses the
 *                      domain only then (src/hv/save-live.ts; docs/save-format.md "The drain before the pause")
 *   sender             its hypervisor renames its copy NAME--migratedaway as the stream ends (xl does it after
 *                      the next message; here while the receiver restores, with no request in the downtime)
 *   receiver → sender  "domain received, ready to unpause\0"        (its copy received and checked, paused,
 *                      NAME--incoming: its hypervisor answers the restore with `received` and builds the
 *                      machine during this handshake; the unpause below waits for the build, and a build that
 *                      failed is an unpause that failed: status 1, the source resumes)
 *   sender → receiver  "domain is yours, you are cleared to unpause\0"
 *   receiver           renames its copy NAME, unpauses it (unless -p)
 *   receiver → sender  "my copy unpause results are as follows\0" and one byte: 0 = running
 *   sender             destroys its copy (0), or renames it back and unpauses it (else, after the receiver's
 *                      "domain is yours…" giving it back)
 *
 * The transport is `exec SSHCOMMAND HOST xeno migrate-receive [-e] [-d] [-p]` run by `sh -c` (SSHCOMMAND
 * defaults to ssh; with `-s ''` HOST is the whole command, as in xl). Before the go-ahead any failure — the
 * transport ends (during pre-copy or after), the receiver refuses the stream — leaves the source running
 * (renamed back, unpaused unless it was paused). `--non-live` sends everything paused, as before pre-copy.
 */
import { spawn } from "node:child_process";
import { createServer, type Socket } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { copyStream, SYNC_ACK_BYTES, type ByteSource } from "../../hv/save-format.js";
import { readableSource } from "../../hv/save-live.js";
import { ask, fetchTable } from "./client.js";
import { refuseDomain0, resolveDomain } from "./domains.js";
import { withClient, type XlEnv } from "./env.js";
import { XlError } from "./errors.js";
import type { ParsedOpts } from "./getopt.js";
import { HV_SOCKET, type MigrateSendResult, type RestoreBuildInfo, type RestoreTimingInfo } from "../../hv/protocol.js";
import { connectUnix, RpcEndpoint } from "../../toolstack/wire.js";
import { defaultRunDir } from "../../toolstack/client.js";

export const MIGRATE_BANNER = Buffer.from("xl migration receiver ready, send binary domain data.\n", "latin1");
const withNul = (s: string): Buffer => Buffer.from(`${s}\0`, "latin1");
export const MIGRATE_READY = withNul("domain received, ready to unpause");
export const MIGRATE_GO = withNul("domain is yours, you are cleared to unpause");
export const MIGRATE_REPORT = withNul("my copy unpause results are as follows");

const has = (p: ParsedOpts, o: string): boolean => p.opts.some((x) => x.opt === o);
const value = (p: ParsedOpts, o: string): string | undefined => p.opts.filter((x) => x.opt === o).at(-1)?.value;

async function readFixed(src: ByteSource, want: Buffer, what: string): Promise<void> {
  const got: Uint8Array[] = [];
  let n = 0;
  while (n < want.length) {
    const b = await src.read(want.length - n);
    if (b.length === 0) throw new Error(`the ${what} did not come (the other side ended after ${n} of ${want.length} bytes)`);
    got.push(b);
    n += b.length;
  }
  const all = Buffer.concat(got);
  if (!all.equals(want)) throw new Error(`expected the ${what}, got ${JSON.stringify(all.toString("latin1").slice(0, 80))}`);
}

function write(w: Writable, b: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => { w.write(b, (e) => (e ? reject(e) : resolve())); });
}

/** xl migrate [-s SSHCOMMAND] [-e] [-p] [--debug] DOMAIN HOST */
export async function migrateCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  if (value(p, "C") !== undefined) throw new XlError("-C (another config than the domain's own) is not supported: the domain's config is sent");
  const ssh = value(p, "s") ?? "ssh";
  const [domArg, host] = [p.args[0]!, p.args[1]!];
  const flags = `${has(p, "e") ? " -e" : ""}${has(p, "D") ? " -d" : ""}${has(p, "p") ? " -p" : ""}`;
  const rune = ssh === "" ? host : `exec ${ssh} ${host} xeno migrate-receive${flags}`;
  const nonLive = has(p, "N");
  const num = (o: string, what: string): number | undefined => {
    const v = value(p, o);
    if (v === undefined) return undefined;
    if (!/^[0-9]+$/.test(v)) throw new XlError(`${what} '${v}': want a whole number`);
    return Number(v);
  };
  const maxRounds = num("R", "--max-rounds"), minDirty = num("M", "--min-dirty");
  const policy = { ...(maxRounds !== undefined ? { maxRounds } : {}), ...(minDirty !== undefined ? { minDirty } : {}) };
  return withClient(env, async (c) => {
    const { table, list } = await fetchTable(c, env.now());
    const d = resolveDomain(table, domArg);
    refuseDomain0(d, "migrate");
    const wasPaused = list.find((x) => x.domid === d.domid)?.state === "paused";
    const child = spawn("sh", ["-c", rune], { stdio: ["pipe", "pipe", "inherit"] });
    child.stdin.on("error", () => { /* the receiver went away: seen as a missing message */ });
    const recv = pushbackSource(readableSource(child.stdout));
    const childExit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const dir = await mkdtemp(join(tmpdir(), "xeno-migrate-"));
    let renamed = false, saved = false;
    /** Before the go-ahead: the source runs on as it was. */
    const resume = async (why: string): Promise<number> => {
      env.err(`migration sender: ${why}\n`);
      child.stdin.destroy();
      child.kill("SIGTERM");
      if (renamed) await ask(c, "rename the domain back", "rename", { domid: d.domid, name: d.name }).catch((e: Error) => env.err(`${e.message}\n`));
      if (saved && !wasPaused) await ask(c, "unpause the domain", "unpause", { domid: d.domid }).catch((e: Error) => env.err(`${e.message}\n`));
      env.err("Migration failed, resuming at sender.\n");
      return 1;
    };
    try {
      try { await readFixed(recv, MIGRATE_BANNER, "receiver's banner"); } catch (e) {
        child.kill("SIGTERM");
        throw new XlError(`migration sender: ${(e as Error).message} from '${rune}' (exit status ${await childExit})`);
      }
      // The hypervisor writes the stream into a socket of ours (live: while the domain runs); we pass it on.
      const sockPath = join(dir, "stream.sock");
      let sent: MigrateSendResult;
      try {
        // Renamed away by the hypervisor as soon as the stream is sent, while the target restores (xl renames after
        // the target's ready message: the same names at each step the target can see; no request of ours in the
        // downtime — through xenod one came after the target's ready message; a failure renames it back: so from
        // here, as the hypervisor may have renamed it before a failure this side sees).
        renamed = true;
        sent = await sendThrough(sockPath, child.stdin, recv, () =>
          ask(c, `send ${d.name}`, "migrate-send", { domid: d.domid, socket: sockPath, live: !nonLive, ...policy, renameTo: `${d.name}--migratedaway` }));
        saved = true;
        reportSend(env, sent);
        if (sent.renamed !== true) await ask(c, "rename the domain away", "rename", { domid: d.domid, name: `${d.name}--migratedaway` });
        await readFixed(recv, MIGRATE_READY, "receiver's ready message");
      } catch (e) { return await resume((e as Error).message); }
      env.err("migration sender: Target has acknowledged transfer.\n");
      env.err("migration sender: Giving target permission to start.\n");
      let status: number;
      try {
        await write(child.stdin, MIGRATE_GO);
        await readFixed(recv, MIGRATE_REPORT, "receiver's report");
        const b = await recv.read(1);
        if (b.length !== 1) throw new Error("no status byte after the report");
        status = b[0]!;
      } catch (e) {
        env.err(`migration sender: ${(e as Error).message}\n** Migration failed during final handshake **\nDomain state is now undefined !\n` +
          "Please CHECK AT BOTH ENDS for running instances, before renaming and\n resuming at most one instance.  Two simultaneous instances of the domain\n" +
          " would probably result in SEVERE DATA LOSS and it is now your\n responsibility to avoid that.  Sorry.\n");
        return 1;
      }
      if (status !== 0) {
        env.err(`migration sender: Target reports startup failure (status code ${status}).\n`);
        try { await readFixed(recv, MIGRATE_GO, "receiver's permission to resume"); } catch (e) { env.err(`migration sender: ${(e as Error).message}\n`); return 1; }
        env.err("migration sender: Trying to resume at our end.\n");
        await ask(c, "rename the domain back", "rename", { domid: d.domid, name: d.name });
        if (!wasPaused) await ask(c, "unpause the domain", "unpause", { domid: d.domid });
        env.err("migration sender: Resumed OK.\nMigration failed due to problems at target.\n");
        return 1;
      }
      env.err("migration sender: Target reports successful startup.\n");
      // Downtime as this side sees it: pause asked → the receiver's report that its copy runs (an upper bound:
      // the report's trip back is in it). Both times are this host's clock.
      // The target's own report (migrate-receive) gives the downtime to its first guest instruction.
      if (!has(p, "p") && !sent.wasPaused) env.err(`migration sender: paused → the target's report read: ${(performance.timeOrigin + performance.now() - sent.pausedAt).toFixed(0)} ms\n`);
      await ask(c, "destroy the migrated domain", "destroy", { domid: d.domid });
      env.err("Migration successful.\n");
      child.stdin.end();
      await childExit;
      return 0;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

/** A ByteSource that can take back what was read (`unread`): the next read returns it first. */
interface PushbackSource extends ByteSource { unread(b: Uint8Array): void }

function pushbackSource(src: ByteSource): PushbackSource {
  let back: Uint8Array | null = null;
  return {
    read: async (n) => {
      if (back === null) return src.read(n);
      const b = back.subarray(0, n);
      back = b.length === back.length ? null : back.subarray(n);
      return b;
    },
    unread: (b) => { if (b.length > 0) back = back === null ? b : Buffer.concat([b, back]); },
  };
}

/**
 * Passes the receiver's answers to drain marks (SYNC_ACK: 8 bytes, the first 0) from `from` (the transport)
 * to the hypervisor's stream socket `to()` until something else comes (xl's ready message: text) or the
 * transport ends; what it is is left in `from`. A receiver that never answers sends none.
 */
async function passAcks(from: PushbackSource, to: () => Socket | null): Promise<void> {
  for (;;) {
    const first = await from.read(SYNC_ACK_BYTES);
    if (first.length === 0) return;
    if (first[0] !== 0) { from.unread(first); return; }
    const got: Uint8Array[] = [first];
    let n = first.length;
    while (n < SYNC_ACK_BYTES) {
      const b = await from.read(SYNC_ACK_BYTES - n);
      if (b.length === 0) return; // ended inside one: the sender's ready wait reports the end
      got.push(b);
      n += b.length;
    }
    const c = to();
    if (c !== null && !c.destroyed) c.write(Buffer.concat(got));
  }
}

/**
 * Listens on unix socket `path`, runs `start` (which makes the hypervisor connect and write the stream) and
 * copies what comes into `to` (the transport), without ending it; meanwhile passes the receiver's drain answers
 * from `back` to the hypervisor (passAcks). Rejects when the transport closes or fails meanwhile (the
 * hypervisor's writes then fail too and it resumes the domain) or when `start` fails. Returns once the answers'
 * pass ended too (the next thing on `back` is the receiver's ready message, or its end).
 */
async function sendThrough(path: string, to: Writable, back: PushbackSource, start: () => Promise<MigrateSendResult>): Promise<MigrateSendResult> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => { server.once("error", reject); server.listen(path, resolve); });
  let conn: Socket | null = null;
  const copied = new Promise<void>((resolve, reject) => {
    const cut = (): void => { conn?.destroy(); reject(new Error("the transport closed while the stream was sent")); };
    to.once("error", cut);
    to.once("close", cut);
    server.once("connection", (s: Socket) => {
      conn = s;
      server.close();
      s.on("error", reject);
      s.on("end", () => { to.off("error", cut); to.off("close", cut); resolve(); });
      s.pipe(to, { end: false });
    });
  });
  copied.catch(() => undefined); // awaited below; a cut while the request is in flight must not be unhandled
  const acks = passAcks(back, () => conn);
  try {
    const r = await Promise.race([start(), copied.then(() => new Promise<never>(() => {}))]);
    await copied;
    await acks;
    return r;
  } finally {
    server.close();
    (conn as Socket | null)?.destroy();
  }
}

/** Per pre-copy round and the stop-and-copy, on stderr. */
function reportSend(env: XlEnv, r: MigrateSendResult): void {
  r.rounds.forEach((x, i) => env.err(`migration sender: round ${i + 1}: ${x.pages} pages in ${x.ms.toFixed(0)} ms, ${x.dirtyAfter} dirty after\n`));
  if (!r.live) env.err(`migration sender: not live (${r.whyNotLive ?? "?"}): all memory sent paused\n`);
  if (r.drain !== undefined) {
    env.err(`migration sender: drained before the pause in ${r.drain.ms.toFixed(1)} ms (${r.drain.answered ? "the receiver answered the drain mark" : "no answer to the drain mark: paused after the wait"})\n`);
  }
  const s = r.stopCopy, f = (x: number): string => x.toFixed(1);
  env.err(`migration sender: stop-and-copy: ${r.finalPages} pages and the state in ${r.stopCopyMs.toFixed(0)} ms ` +
    `(pause and save ${f(s.saveMs)}, dirty pages ${f(s.dirtyMs)}, state ${f(s.stateMs)}, pages ${f(s.pagesMs)}, end ${f(s.endMs)}); ` +
    `${(r.bytes / 2 ** 20).toFixed(1)} MiB sent in ${r.ms.toFixed(0)} ms\n`);
}

/**
 * xl migrate-receive [-e] [-d] [-p]: stdin carries the stream and the sender's messages, stdout ours. The
 * hypervisor reads the stream from a socket of ours as it comes (live: while the sender's domain runs), and
 * builds the domain once it ends; we pass the stream on by its framing (copyStream) and keep what follows.
 */
export async function migrateReceiveCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const out = env.stdout;
  const src = readableSource(env.stdin);
  const dir = await mkdtemp(join(tmpdir(), "xeno-migrate-in-"));
  try {
    // Our hypervisor first (started on demand): its start is not part of the sender's downtime.
    let hv: RpcEndpoint | null = null;
    return await withClient(env, async (c) => {
      env.err("migration target: Ready to receive domain.\n");
      await write(out, MIGRATE_BANNER);
      // The xl header and config: the domain's name, for its NAME--incoming copy.
      const head = await readExactly(src, 48, "the xl header");
      const optLen = head.readUInt32LE(44);
      if (optLen > (1 << 20) + 4) throw new XlError(`migration target: the stream's config is ${optLen} bytes long`);
      const opt = await readExactly(src, optLen, "the stream's config");
      const name = configName(Buffer.concat([head, opt]));
      const sockPath = join(dir, "stream.sock");
      let domid: number, timing: RestoreTimingInfo;
      // The restore (answered in the downtime) and the go-ahead's rename + unpause go to the hypervisor's own
      // socket: through xenod each would take two more process hops (xenod hears of them from its events).
      hv = await hvDirect();
      // Not with -p: answered once the stream is read and checked (`received`), so the machine is built during
      // the ready → go-ahead handshake; the unpause waits for the build (a failed one fails it: status 1 below).
      const restoreArgs = { path: sockPath, stream: true, paused: true, name: `${name}--incoming`, ...(!has(p, "p") ? { received: true } : {}) };
      try {
        ({ domid, timing } = await receiveThrough(sockPath, prefixSource(Buffer.concat([head, opt]), src), out, () =>
          hv !== null ? hv.request({ op: "restore", ...restoreArgs }) as Promise<{ domid: number; timing: RestoreTimingInfo }>
            : ask(c, "restore the migrated domain", "restore", restoreArgs)));
      } catch (e) {
        throw new XlError(`migration target: Domain creation failed: ${(e as Error).message}`);
      }
      const tRestored = wallNow();
      env.err("migration target: Transfer complete, requesting permission to start domain.\n");
      await write(out, MIGRATE_READY);
      let rc = 0;
      try {
        await readFixed(src, MIGRATE_GO, "sender's go-ahead");
        const tGo = wallNow();
        env.err("migration target: Got permission, starting domain.\n");
        if (!has(p, "p")) {
          // Renamed and unpaused in one request; answered when it runs (its first guest instruction).
          const args = { domid, report: true, name };
          const { runningAt, build } = (hv !== null ? await hv.request({ op: "unpause", ...args }).catch((e: Error) => { throw new XlError(`rename and unpause the migrated domain: ${e.message}`); })
            : await ask(c, "rename and unpause the migrated domain", "unpause", args)) as { runningAt: number; build?: RestoreBuildInfo };
          env.err("migration target: Domain started successfully.\n");
          if (timing.pausedAt !== undefined) env.err(downtimeReport(timing, tRestored, tGo, runningAt, build));
        } else {
          await ask(c, "rename the migrated domain", "rename", { domid, name });
          env.err("migration target: Domain restored paused (-p).\n");
        }
      } catch (e) {
        env.err(`migration target: ${(e as Error).message}\n`);
        rc = 1;
      }
      await write(out, Buffer.concat([MIGRATE_REPORT, Buffer.from([rc])])).catch(() => undefined);
      if (rc !== 0) {
        env.err("migration target: Failure, destroying our copy.\n");
        // A build that failed left nothing to destroy (ENOENT_DOMAIN): the sender may resume all the same.
        await ask(c, "destroy our copy", "destroy", { domid }).catch((e: Error) => {
          if (!/ENOENT|no domain/i.test(e.message)) throw e;
        });
        env.err("migration target: Cleanup OK, granting sender permission to resume.\n");
        await write(out, MIGRATE_GO).catch(() => undefined);
        return 1;
      }
      return 0;
    }).finally(() => { (hv as RpcEndpoint | null)?.close(); });
  } finally {
    env.stdin.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A connection to this host's hypervisor's own socket ($XENO_RUN_DIR/hv.sock; its protocol is xenod's), or null
 * when it cannot be reached (the request then goes through xenod).
 */
async function hvDirect(): Promise<RpcEndpoint | null> {
  try { return new RpcEndpoint(await connectUnix(join(defaultRunDir(), HV_SOCKET)), { what: "the hypervisor" }); } catch { return null; }
}

/** Wall time, ms since the epoch with µs: comparable with the hypervisors' (same host). */
const wallNow = (): number => performance.timeOrigin + performance.now();

/**
 * The downtime as the target sees it: from the source's pause (its clock, carried in the stream) to this
 * domain's first guest instruction (the worker's clock) — one clock when both hypervisors share a host — and
 * where it went.
 */
function downtimeReport(t: RestoreTimingInfo, restored: number, go: number, running: number, build?: RestoreBuildInfo): string {
  const p = t.pausedAt!;
  // A figure the hypervisor could not take comes as null (NaN in JSON).
  const f = (x: number | null): string => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(1) : "?");
  const head = `migration target: downtime ${(running - p).toFixed(0)} ms (the source paused → its first guest instruction here, ${f(running - p)}): ` +
    `stop-and-copy until the stream's end was read ${f(t.readAt - p)}, `;
  if (build === undefined) {
    return head + `restore ${f(t.builtAt - t.readAt)} (checks and store ${f(t.storeMs)}, thread ${f(t.threadMs)}, machine ${f(t.machineMs)}), ` +
      `handshake ${f(go - t.builtAt)} (restore answered ${f(restored - t.builtAt)}, ready → go-ahead ${f(go - restored)}), ` +
      `rename and unpause → first instruction ${f(running - go)}\n`;
  }
  // Answered before the build (`received`): the build ran beside the handshake; what of it came after the
  // go-ahead is in the last part.
  const answered = t.readAt + t.storeMs;
  return head + `checks and store ${f(t.storeMs)}, handshake ${f(go - answered)} (restore answered ${f(restored - answered)}, ready → go-ahead ${f(go - restored)}), ` +
    `build beside it ${f(build.builtAt - answered)} (thread ${f(build.threadMs)}, machine ${f(build.machineMs)}; ended ${f(build.builtAt - go)} after the go-ahead), ` +
    `rename and unpause → first instruction ${f(running - go)}\n`;
}

async function readExactly(src: ByteSource, n: number, what: string): Promise<Buffer> {
  const got: Uint8Array[] = [];
  let k = 0;
  while (k < n) {
    const b = await src.read(n - k);
    if (b.length === 0) throw new XlError(`migration target: the stream ended inside ${what} (${k} of ${n} bytes)`);
    got.push(b);
    k += b.length;
  }
  return Buffer.concat(got);
}

/** `prefix`, then `src`. */
function prefixSource(prefix: Buffer, src: ByteSource): ByteSource {
  let pos = 0;
  return {
    read: async (n) => {
      if (pos < prefix.length) { const b = prefix.subarray(pos, pos + n); pos += b.length; return b; }
      return src.read(n);
    },
  };
}

/**
 * Listens on unix socket `path`, runs `start` (the hypervisor connects and reads the stream) and copies one
 * stream from `src` into the connection by its framing (copyStream), then ends it; what the hypervisor writes
 * back (its answers to the sender's drain marks) goes to `back` (the transport to the sender). A broken stream
 * (the sender cut) ends the connection early: the hypervisor refuses the truncated stream and builds nothing.
 */
async function receiveThrough<T>(path: string, src: ByteSource, back: Writable, start: () => Promise<T>): Promise<T> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => { server.once("error", reject); server.listen(path, resolve); });
  let conn: Socket | null = null;
  const copied = new Promise<void>((resolve, reject) => {
    server.once("connection", (s: Socket) => {
      conn = s;
      server.close();
      s.on("error", () => undefined); // the hypervisor's refusal comes as the answer to start()
      s.on("data", (b: Buffer) => { back.write(b); });
      const sink = { write: (b: Uint8Array) => new Promise<void>((res, rej) => { s.write(b, (e) => (e ? rej(e) : res())); }) };
      copyStream(src, sink).then(() => { s.end(); resolve(); },
        (e: Error) => { s.destroy(); reject(new Error(`the stream from the sender is broken: ${e.message}`)); });
    });
  });
  copied.catch(() => undefined); // reported through start()'s refusal, or below
  try {
    const r = await start();
    await copied;
    return r;
  } catch (e) {
    // A cut stream: the hypervisor saw a truncated stream; say what the copy saw, it is the cause.
    const why = await copied.then(() => null, (x: Error) => x);
    throw why ?? e;
  } finally {
    server.close();
    (conn as Socket | null)?.destroy();
  }
}

/** The domain name in a save stream's config (the xl header's JSON). */
function configName(b: Buffer): string {
  const cfgLen = b.length >= 52 ? b.readUInt32LE(48) : 0;
  try {
    const cfg = JSON.parse(b.subarray(52, 52 + cfgLen - 1).toString("utf8")) as { name?: unknown };
    if (typeof cfg.name === "string") return cfg.name;
  } catch { /* below */ }
  throw new XlError("migration target: the stream's config has no domain name");
}
