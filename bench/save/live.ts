/**
 * bench/save/live: live migration of a guest (the Debian kernel and initramfs of bench/boot, 1 vCPU) between
 * two hypervisors on this machine, idle and with a loop dirtying 4 MiB of a tmpfs over and over; QEMU TCG's own
 * live migration of the same guest beside it (`migrate -d tcp:…` to a second QEMU started with `-incoming`,
 * figures from `info migrate`).
 *
 *   node dist/bench/save/live.js [--runs N] [--memory MiB] [--no-qemu] [--idle-only] [--keep-logs DIR] [--xl-opts "OPTS"]
 *
 * Xeno: `xeno migrate -s '' DOM 'XENO_RUN_DIR=OTHER xeno migrate-receive'` (the CLI, xenod and the hypervisors
 * as a user runs them), back and forth; its own report gives the rounds, the stop-and-copy and the downtime
 * (the source's pause asked → the target's first guest instruction, both on this host's clock; the sender's
 * older figure, pause → the target's report read, beside it); total = the command's wall time from
 * its start to its exit (both CLIs' start-up included). QEMU: `info migrate`'s total time and downtime, as
 * QEMU measures them. Timings never decide pass/fail; record results in docs/benchmarks.md.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createConnection, createServer, type AddressInfo, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const CLI = path.join(root, "dist/src/cli/main.js");
/** --xl-opts "…": more options for `xeno migrate` (e.g. "-M 0 -R 2": exactly two pre-copy rounds). */
const XL_OPTS = process.argv.indexOf("--xl-opts") >= 0 ? process.argv[process.argv.indexOf("--xl-opts") + 1]!.split(/\s+/).filter((x) => x !== "") : [];
const arg = (name: string, def: number): number => { const k = process.argv.indexOf(name); return k >= 0 ? Number(process.argv[k + 1]) : def; };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]!; };

function collect(s: Socket | NodeJS.ReadableStream): { text: () => string; until: (re: RegExp, ms: number, what: string) => Promise<void> } {
  let t = "";
  s.on("data", (d: Buffer) => { t += d.toString("latin1"); });
  return {
    text: () => t,
    until: async (re, ms, what) => {
      const end = Date.now() + ms;
      while (!re.test(t)) { if (Date.now() > end) throw new Error(`${what}: not seen in ${ms / 1000} s`); await sleep(20); }
    },
  };
}

function xeno(dir: string, args: string[]): Promise<{ code: number | null; err: string; ms: number }> {
  const t = performance.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, XENO_RUN_DIR: dir }, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (b: Buffer) => { err += b.toString(); });
    p.on("exit", (code) => resolve({ code, err, ms: performance.now() - t }));
  });
}

/** A console on the hypervisor of `dir`: type into it, wait for output. */
async function console_(dir: string, domid: number): Promise<{ type: (s: string) => void; until: (re: RegExp, ms: number, what: string) => Promise<void>; close: () => void }> {
  const con = createConnection(path.join(dir, "hv.sock"));
  await new Promise<void>((r, j) => { con.once("connect", () => r()); con.once("error", j); });
  con.write(JSON.stringify({ id: 1, op: "console", domid, replay: true }) + "\n");
  const c = collect(con);
  return { type: (s) => con.write(s), until: c.until, close: () => con.destroy() };
}

/**
 * downtime: the target's figure (the source paused → the target's first guest instruction); reportRead: the
 * sender's (paused → the target's report read), which builds before 2026-12-07 printed as their "downtime".
 */
interface Result { rounds: number; precopyPages: number; finalPages: number; downtime: number; reportRead: number; total: number }

async function xenoSide(img: { kernel: string; initrd: string }, mem: number, runs: number): Promise<Record<string, Result[]>> {
  const dirs = [fs.mkdtempSync(path.join(os.tmpdir(), "xeno-live-a-")), fs.mkdtempSync(path.join(os.tmpdir(), "xeno-live-b-"))];
  const out: Record<string, Result[]> = { idle: [], dirtying: [] };
  try {
    // Both hypervisors started through the CLI (xenod starts them), before any timing.
    for (const d of dirs) if ((await xeno(d, ["list"])).code !== 0) throw new Error(`cannot start the daemons in ${d}`);
    const cfg = path.join(dirs[0]!, "bench.cfg");
    fs.writeFileSync(cfg, `name = "bench"\nmemory = ${mem}\nvcpus = 1\nkernel = "${img.kernel}"\nramdisk = "${img.initrd}"\ncmdline = "console=hvc0"\n`);
    const cr = await xeno(dirs[0]!, ["create", cfg]);
    if (cr.code !== 0) throw new Error(`create: ${cr.err}`);
    const domid = Number(/id=(\d+)/.exec(cr.err)?.[1] ?? "1");
    let at = 0;
    let con = await console_(dirs[at]!, domid);
    await con.until(new RegExp(GUEST_READY_MARKER), 900_000, "xeno guest ready");
    await sleep(5000);
    for (const mode of process.argv.includes("--idle-only") ? ["idle"] : ["idle", "dirtying"]) {
      if (mode === "dirtying") {
        con.type("mkdir -p /mnt/t && mount -t tmpfs none /mnt/t; (while :; do dd if=/dev/zero of=/mnt/t/d bs=4k count=1024 conv=notrunc 2>/dev/null; done) & echo LOOP-$((2+3))\n");
        await con.until(/LOOP-5/, 60_000, "dirtying loop started");
        await sleep(3000);
      }
      for (let k = 0; k < runs; k++) {
        const to = 1 - at;
        con.close();
        const r = await xeno(dirs[at]!, ["migrate", ...XL_OPTS, "-s", "", "bench", `XENO_RUN_DIR=${dirs[to]} ${process.execPath} ${CLI} migrate-receive`]);
        if (r.code !== 0) throw new Error(`migrate: ${r.err}`);
        const rounds = [...r.err.matchAll(/round \d+: (\d+) pages/g)].map((m) => Number(m[1]));
        const res: Result = {
          rounds: rounds.length, precopyPages: rounds.reduce((a, b) => a + b, 0),
          finalPages: Number(/stop-and-copy: (\d+) pages/.exec(r.err)?.[1] ?? NaN),
          downtime: Number(/migration target: downtime \d+ ms \([^)]*?, ([\d.]+)\)/.exec(r.err)?.[1] ?? NaN),
          reportRead: Number(/paused → the target's report read: (\d+) ms/.exec(r.err)?.[1] ?? /migration sender: downtime (\d+) ms/.exec(r.err)?.[1] ?? NaN), total: r.ms,
        };
        out[mode]!.push(res);
        process.stderr.write(`xeno ${mode} ${k + 1}/${runs}: ${JSON.stringify(res)}\n${r.err.split("\n").filter((l) => /round|drained|stop-and-copy|downtime|report read/.test(l)).map((l) => `    ${l}\n`).join("")}`);
        at = to;
        con = await console_(dirs[at]!, domid);
        con.type("echo ALIVE-$((6*7))\n");
        await con.until(/ALIVE-42/, 60_000, "guest answers after the move");
        await sleep(3000);
      }
    }
    con.close();
    await xeno(dirs[at]!, ["destroy", "bench"]);
  } finally {
    for (const d of dirs) {
      for (const pid of ["xenod.pid", "hv.pid"]) { try { process.kill(Number(fs.readFileSync(path.join(d, pid), "utf8")), "SIGTERM"); } catch { /* none */ } }
    }
    await sleep(1000);
    // --keep-logs DIR: the two hypervisors' logs (hv.log) are copied there as hv-a.log and hv-b.log.
    const keep = process.argv.indexOf("--keep-logs") >= 0 ? process.argv[process.argv.indexOf("--keep-logs") + 1] : undefined;
    if (keep !== undefined) dirs.forEach((d, i) => { try { fs.copyFileSync(path.join(d, "hv.log"), path.join(keep, `hv-${"ab"[i]}.log`)); } catch { /* none */ } });
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
  return out;
}

function qemuArgs(img: { kernel: string; initrd: string }, mem: number, mon: string): string[] {
  return ["-M", "virt", "-cpu", "cortex-a72", "-m", String(mem), "-smp", "1", "-nographic", "-no-reboot", "-nic", "none",
    "-kernel", img.kernel, "-initrd", img.initrd, "-append", "console=ttyAMA0 rdinit=/init", "-monitor", `unix:${mon},server=on,wait=off`];
}

async function monitor(mon: string): Promise<{ cmd: (c: string) => Promise<string>; close: () => void }> {
  let s: Socket | null = null;
  for (let i = 0; i < 200 && s === null; i++) {
    try { s = await new Promise<Socket>((res, rej) => { const x = createConnection(mon); x.once("connect", () => res(x)); x.once("error", rej); }); }
    catch { await sleep(50); }
  }
  if (s === null) throw new Error("qemu monitor: no socket");
  const c = collect(s);
  await c.until(/\(qemu\) $/, 10_000, "monitor prompt");
  return {
    cmd: async (line) => { const from = c.text().length; s!.write(line + "\n"); await c.until(/\(qemu\) $/, 60_000, line); return c.text().slice(from); },
    close: () => s!.destroy(),
  };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** One QEMU live migration of a freshly booted guest; `dirty`: the loop runs during it. */
async function qemuOnce(img: { kernel: string; initrd: string }, mem: number, dirty: boolean, dir: string): Promise<Result & { status: string; transferredKiB: number }> {
  const monA = path.join(dir, "a.mon"), monB = path.join(dir, "b.mon");
  for (const m of [monA, monB]) fs.rmSync(m, { force: true });
  const port = await freePort();
  const a: ChildProcess = spawn("qemu-system-aarch64", qemuArgs(img, mem, monA), { stdio: ["pipe", "pipe", "ignore"] });
  let b: ChildProcess | null = null;
  try {
    const out = collect(a.stdout!);
    await out.until(new RegExp(GUEST_READY_MARKER), 900_000, "qemu guest ready");
    await sleep(5000);
    if (dirty) {
      a.stdin!.write("mkdir -p /mnt/t && mount -t tmpfs none /mnt/t; (while :; do dd if=/dev/zero of=/mnt/t/d bs=4k count=1024 conv=notrunc 2>/dev/null; done) & echo LOOP-$((2+3))\n");
      await out.until(/LOOP-5/, 60_000, "qemu dirtying loop");
      await sleep(3000);
    }
    b = spawn("qemu-system-aarch64", [...qemuArgs(img, mem, monB), "-incoming", `tcp:127.0.0.1:${port}`], { stdio: ["ignore", "ignore", "ignore"] });
    const mb = await monitor(monB);
    const ma = await monitor(monA);
    const t = performance.now();
    await ma.cmd(`migrate -d tcp:127.0.0.1:${port}`);
    let info = "";
    const deadline = Date.now() + 180_000;
    for (;;) {
      info = await ma.cmd("info migrate");
      if (/Migration status: (completed|failed|cancelled)/.test(info) || Date.now() > deadline) break;
      await sleep(20);
    }
    const total = performance.now() - t;
    const status = /Migration status: (\w+)/.exec(info)?.[1] ?? "?";
    if (status !== "completed") await ma.cmd("migrate_cancel");
    const num = (re: RegExp): number => Number(re.exec(info)?.[1] ?? NaN);
    ma.close(); mb.close();
    return {
      status, rounds: num(/dirty sync count: (\d+)/), precopyPages: NaN, finalPages: NaN,
      downtime: num(/downtime: (\d+) ms/), reportRead: NaN, total: num(/total time: (\d+) ms/) || total, transferredKiB: num(/transferred ram: (\d+) kbytes/),
    };
  } finally {
    a.kill("SIGKILL");
    b?.kill("SIGKILL");
  }
}

async function main(): Promise<void> {
  const runs = arg("--runs", 3), mem = arg("--memory", 256);
  const img = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const x = await xenoSide(img, mem, runs);
  const row = (r: Result[]): string => `downtime ${median(r.map((v) => v.downtime)).toFixed(1)} ms (runs ${r.map((v) => v.downtime).join(", ")}), ` +
    `pause → report read ${median(r.map((v) => v.reportRead)).toFixed(0)} ms (runs ${r.map((v) => v.reportRead).join(", ")}), ` +
    `total ${median(r.map((v) => v.total)).toFixed(0)} ms, rounds ${r.map((v) => v.rounds).join("/")}, pages paused ${r.map((v) => v.finalPages).join("/")}`;
  console.log(`live migration of a ${mem} MiB guest (1 vCPU), median of ${runs}:`);
  console.log(`  xeno idle:     ${row(x.idle!)}`);
  if (x.dirtying!.length > 0) console.log(`  xeno dirtying: ${row(x.dirtying!)}`);
  if (!process.argv.includes("--no-qemu")) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xeno-bench-live-q-"));
    try {
      for (const dirty of [false, true]) {
        const q = await qemuOnce(img, mem, dirty, dir);
        console.log(`  qemu TCG ${dirty ? "dirtying" : "idle"}: info migrate: status ${q.status}, downtime ${q.downtime} ms, total time ${q.total} ms, ` +
          `dirty sync count ${q.rounds}, transferred ram ${q.transferredKiB} KiB`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

main().catch((e) => { process.stderr.write(`bench/save/live: ${(e as Error).stack}\n`); process.exitCode = 1; });
