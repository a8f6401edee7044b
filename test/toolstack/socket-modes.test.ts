/**
 * The daemons' sockets under `umask 000` (issue 14, F2): xenod started so (it starts the hypervisor, which
 * inherits the umask) in a run directory that an older version left 0777, inside a parent every user may enter.
 * The run directory and the XenStore socket's directory end 0700, every socket 0600, and a non-root user created
 * by this test cannot connect to any of them — while the same user can connect to a 0777 socket in that parent,
 * which shows the probe itself works. A run directory that belongs to that user is refused. Skipped (with the reason printed) when not run as root.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { XENOD_MAIN } from "../../src/toolstack/client.js";
import { createProbeUser } from "../probe-user.js";

const skip = process.getuid?.() !== 0 ? "not root: cannot create a user or start daemons as root" : undefined;
if (skip) console.log(`# socket modes: skipped: ${skip}`);

/** Tries to connect to `path` as uid/gid in a child process: "CONNECTED" or the error code. */
function probe(path: string, uid: number, gid: number): string {
  const script = `require("net").connect(${JSON.stringify(path)}).on("connect", () => { console.log("CONNECTED"); process.exit(0); })` +
    `.on("error", (e) => { console.log(e.code); process.exit(0); })`;
  const r = spawnSync(process.execPath, ["-e", script], { uid, gid, encoding: "utf8", timeout: 10_000, cwd: "/" });
  return (r.stdout || r.stderr || String(r.error)).trim();
}

const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);

test("under umask 000: run directories 0700, sockets 0600, another user cannot connect", { skip, timeout: 120_000 }, async () => {
  const parent = mkdtempSync(join(tmpdir(), "xeno-modes-"));
  chmodSync(parent, 0o755); // any user may enter the parent: only the daemons' own modes keep them out
  const run = join(parent, "run");
  mkdirSync(run);
  chmodSync(run, 0o777); // as an older version (or a careless admin) left it
  const probeUser = await createProbeUser("xenoprobe");
  const { name: user, uid, gid } = probeUser;
  let xenod: ChildProcess | undefined;
  let err = "";
  try {

    xenod = spawn("sh", ["-c", `umask 000 && exec "$0" "$@"`, process.execPath, XENOD_MAIN, "--run-dir", run, "--foreground"],
      { stdio: ["ignore", "ignore", "pipe"] });
    xenod.stderr!.on("data", (b: Buffer) => { err += b.toString(); });
    const sockets = [join(run, "xenod.sock"), join(run, "hv.sock"), join(run, "xenstored", "socket")];
    for (let i = 0; i < 300 && !sockets.every((s) => existsSync(s)); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(sockets.every((s) => existsSync(s)), `sockets not all there: ${sockets.filter((s) => !existsSync(s)).join(", ")}\n${err}`);
    assert.match(readFileSync(`/proc/${xenod.pid}/status`, "utf8"), /Umask:\s+0000/, "xenod runs under umask 000");

    assert.equal(mode(run), "700", "run directory");
    assert.equal(mode(join(run, "xenstored")), "700", "XenStore socket's directory");
    for (const s of sockets) assert.equal(mode(s), "600", s);

    // The probe works: the same user connects to a 0777 socket beside the run directory.
    const open = join(parent, "open.sock");
    const server = createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(open, () => r()));
    chmodSync(open, 0o777);
    try {
      assert.equal(probe(open, uid, gid), "CONNECTED", "the unprivileged probe reaches a world-writable socket");
    } finally {
      server.close();
    }
    for (const s of sockets) {
      assert.equal(probe(s, 0, 0), "CONNECTED", `root connects to ${s}`);
      assert.equal(probe(s, uid, gid), "EACCES", `${user} must not connect to ${s}`);
    }

    // A run directory that belongs to another user (who could replace the sockets in it) is refused.
    const theirs = join(parent, "theirs");
    mkdirSync(theirs);
    chownSync(theirs, uid, gid);
    const r = spawnSync(process.execPath, [XENOD_MAIN, "--run-dir", theirs, "--foreground"], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`xenod: cannot start: ${theirs} belongs to uid ${uid}, not to uid 0 that runs this daemon: .*run as uid ${uid}, or set XENO_RUN_DIR to a directory of your own`));
    assert.ok(!existsSync(join(theirs, "xenod.sock")) && !existsSync(join(theirs, "hv.sock")));
  } finally {
    xenod?.kill("SIGTERM");
    try {
      const hvPid = Number(readFileSync(join(run, "hv.pid"), "utf8"));
      process.kill(hvPid, "SIGTERM");
    } catch { /* not started */ }
    probeUser.remove();
    await new Promise((r) => setTimeout(r, 500));
    rmSync(parent, { recursive: true, force: true });
  }
});
