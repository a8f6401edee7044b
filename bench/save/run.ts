/**
 * bench/save: save and restore of an idle guest (the Debian kernel and initramfs of bench/boot, 1 vCPU), and
 * the file's size, under Xeno (the hypervisor process: `save` then `restore` of the same domain, N rounds) and
 * QEMU TCG beside it (`stop; migrate "exec:cat > FILE"` on the HMP monitor, then a new QEMU with
 * `-incoming "exec:cat FILE"` until `info status` says running).
 *
 *   node dist/bench/save/run.js [--runs N] [--memory MiB] [--idle SEC] [--no-qemu] [--keep FILE] [--touch] [--ab-lazy]
 *
 * A lazy restore (XENO_LAZY_RESTORE, src/hv/lazy-ram.ts) also reports its pages left out and when the
 * hypervisor's background load of them ended; --touch times a shell command run on the console right after
 * each restore (it reads files and walks directories: pages the guest had in use). --ab-lazy: two hypervisors,
 * XENO_LAZY_RESTORE=0 and =1, each with its guest, their save + restore rounds alternated (no QEMU).
 *
 * Xeno's restore time is the `restore` request's (file read and checked, domain built, its first slice begun:
 * the answer waits for it; the log line gives the request → first guest instruction as well); QEMU's is from
 * its spawn to "running" (process start included: QEMU cannot load a stream into a running process). Timings
 * never decide pass/fail; record results in docs/benchmarks.md. --keep copies Xeno's last save file to FILE
 * (for bench/save/read.js).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createConnection, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const arg = (name: string, def: number): number => { const k = process.argv.indexOf(name); return k >= 0 ? Number(process.argv[k + 1]) : def; };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]!; };

/** One JSON-lines connection to the hypervisor's control socket. */
async function control(sock: string): Promise<(op: string, args?: Record<string, unknown>) => Promise<unknown>> {
  const s = createConnection(sock);
  await new Promise<void>((res, rej) => { s.once("connect", () => res()); s.once("error", rej); });
  let buf = "", id = 0;
  const waits = new Map<number, (r: { ok: boolean; result?: unknown; error?: { message: string } }) => void>();
  s.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const m = JSON.parse(buf.slice(0, nl)) as { id?: number };
      buf = buf.slice(nl + 1);
      if (m.id !== undefined) waits.get(m.id)?.(m as never);
    }
  });
  return (op, args = {}) => new Promise((res, rej) => {
    const n = ++id;
    waits.set(n, (r) => (r.ok ? res(r.result) : rej(new Error(`${op}: ${r.error?.message}`))));
    s.write(JSON.stringify({ id: n, op, ...args }) + "\n");
  });
}

/** Text from a socket or stream, and a wait for a pattern in it. */
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

/** --ab-lazy: two hypervisors' rounds take turns (one save + restore at a time), so their figures alternate. */
let baton: Promise<unknown> = Promise.resolve();
const inTurn = <T>(f: () => Promise<T>): Promise<T> => { const r = baton.then(f); baton = r.catch(() => undefined); return r; };

async function xenoRounds(img: { kernel: string; initrd: string }, mem: number, runs: number, idle: number, dir: string,
  env: Record<string, string> = {}, label = "xeno") {
  // The hypervisor's log goes to a file (a pipe nobody reads would fill and stall it); $XENO_BENCH_LOG keeps a copy.
  const logFd = fs.openSync(path.join(dir, "hv.log"), "w");
  const hv = spawn(process.execPath, [path.join(root, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", String(mem * 2)],
    { stdio: ["ignore", "ignore", logFd], env: { ...process.env, ...env } });
  fs.closeSync(logFd);
  try {
    const sock = path.join(dir, "hv.sock");
    for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await sleep(100);
    const call = await control(sock);
    const { domid } = await call("create", { spec: { name: "bench", memMiB: mem, vcpus: 1, kernel: img.kernel, ramdisk: img.initrd,
      cmdline: "console=hvc0", xen: true, disks: [], vifs: [] } }) as { domid: number };
    const con = createConnection(sock);
    await new Promise<void>((r) => con.once("connect", () => r()));
    con.write(JSON.stringify({ id: 1, op: "console", domid, replay: true }) + "\n");
    await collect(con).until(new RegExp(GUEST_READY_MARKER), 900_000, "xeno guest ready");
    con.destroy();
    await sleep(idle * 1000);
    const out: { save: number; restore: number; bytes: number; timing: Record<string, number> }[] = [];
    const file = path.join(dir, "bench.xeno");
    for (let k = 0; k < runs; k++) await inTurn(async () => {
      let t = performance.now();
      const s = await call("save", { domid, path: file }) as { bytes: number };
      const save = performance.now() - t;
      t = performance.now();
      const r = await call("restore", { path: file }) as { timing: Record<string, number> };
      out.push({ save, restore: performance.now() - t, bytes: s.bytes, timing: r.timing });
      const tm = r.timing, f = (x: number | undefined): string => (x ?? NaN).toFixed(1);
      // --touch: at once, a shell command that reads files and walks /usr (kernel code, page cache, slab: pages
      // a lazy restore may not have loaded yet), timed from its input to its answer on the console.
      let touch = "";
      if (process.argv.includes("--touch")) {
        const con = createConnection(sock);
        await new Promise<void>((res) => con.once("connect", () => res()));
        const c = collect(con);
        con.write(JSON.stringify({ id: 1, op: "console", domid }) + "\n");
        await c.until(/"ok":true/, 10_000, "console");
        const tt = performance.now();
        con.write(`ls -lR /usr /lib >/dev/null 2>&1; cat /proc/meminfo >/dev/null; echo TOUCH-$((${k}+1000))\n`);
        await c.until(new RegExp(`TOUCH-${k + 1000}`), 60_000, "touch command");
        touch = `, touch command ${(performance.now() - tt).toFixed(0)} ms`;
        con.destroy();
      }
      // A lazy restore: when its background load ended (ms after the first slice), from the hypervisor's info.
      let lazy = "";
      if (tm.lazyPages !== undefined) {
        let info: { lazyRestore?: { pending: number; last: { ms: number; here: number; total: number } | null } } = {};
        for (let i = 0; i < 600; i++) { info = await call("info") as typeof info; if (info.lazyRestore?.pending === 0) break; await sleep(10); }
        const l = info.lazyRestore?.last;
        lazy = `, lazy ${tm.lazyPages} pages${l ? `: loaded ${l.ms.toFixed(0)} ms after the first slice, ${l.here} by the background` : ""}`;
      }
      process.stderr.write(`${label} ${k + 1}/${runs} (load ${fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0]}): save ${save.toFixed(0)} ms, restore ${out[k]!.restore.toFixed(0)} ms ` +
        `(read and checked ${f(tm.readMs)} [CPU ${f(tm.readCpuMs)}]${(tm as Record<string, unknown>).spareMemory === true ? " into the spare memory" : ""}${tm.pagesMs !== undefined ? ` (pages ${f(tm.pagesMs)}: records ${tm.jobsMain} + ${tm.jobsHelper} by the helper)` : ""}, store ${f(tm.storeMs)}, build ${f(tm.buildMs)}: thread ${f(tm.threadMs)}, machine ${f(tm.machineMs)}; ` +
        `first guest instruction ${f(tm.runningMs)}${lazy}${touch}), ${s.bytes} bytes\n`);
    }).then(() => sleep(idle * 1000));
    const keep = process.argv.indexOf("--keep");
    if (keep >= 0) fs.copyFileSync(file, process.argv[keep + 1]!);
    return out;
  } finally {
    hv.kill("SIGTERM");
    await new Promise((r) => hv.once("exit", r));
    if (process.env.XENO_BENCH_LOG) fs.copyFileSync(path.join(dir, "hv.log"), process.env.XENO_BENCH_LOG + (label === "xeno" ? "" : `.${label}`));
  }
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

async function qemuRounds(img: { kernel: string; initrd: string }, mem: number, runs: number, idle: number, dir: string) {
  const out: { save: number; restore: number; bytes: number }[] = [];
  const file = path.join(dir, "qemu.state");
  const mon = path.join(dir, "qemu.mon");
  let q: ChildProcess = spawn("qemu-system-aarch64", qemuArgs(img, mem, mon), { stdio: ["ignore", "pipe", "ignore"] });
  try {
    await collect(q.stdout!).until(new RegExp(GUEST_READY_MARKER), 900_000, "qemu guest ready");
    await sleep(idle * 1000);
    for (let k = 0; k < runs; k++) {
      let m = await monitor(mon);
      let t = performance.now();
      await m.cmd("stop");
      await m.cmd(`migrate "exec:cat > ${file}"`);
      while (!/Migration status: completed/.test(await m.cmd("info migrate"))) await sleep(10);
      const save = performance.now() - t;
      m.close();
      q.kill("SIGKILL");
      await new Promise((r) => q.once("exit", r));
      fs.rmSync(mon, { force: true });
      t = performance.now();
      q = spawn("qemu-system-aarch64", [...qemuArgs(img, mem, mon), "-incoming", `exec:cat ${file}`], { stdio: ["ignore", "pipe", "ignore"] });
      m = await monitor(mon);
      for (;;) {
        const st = await m.cmd("info status");
        if (/VM status: running/.test(st)) break;
        // The stream was taken from a stopped VM: once loaded (not "inmigrate") the copy waits paused for cont.
        if (/VM status: paused/.test(st) && !/inmigrate/.test(st)) await m.cmd("cont");
        await sleep(5);
      }
      out.push({ save, restore: performance.now() - t, bytes: fs.statSync(file).size });
      m.close();
      process.stderr.write(`qemu ${k + 1}/${runs}: save ${save.toFixed(0)} ms, restore ${out[k]!.restore.toFixed(0)} ms, ${out[k]!.bytes} bytes\n`);
      await sleep(idle * 1000);
    }
    return out;
  } finally {
    q.kill("SIGKILL");
  }
}

async function main(): Promise<void> {
  const runs = arg("--runs", 3), mem = arg("--memory", 256), idle = arg("--idle", 5);
  const img = await ensureImages({ onProgress: (m) => process.stderr.write(`images: ${m}\n`) });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xeno-bench-save-"));
  try {
    if (process.argv.includes("--ab-lazy")) {
      // Eager and lazy restores (XENO_LAZY_RESTORE=0 / 1) in two hypervisors booted side by side, rounds alternated.
      const dirs = ["eager", "lazy"].map((n) => { const d = path.join(dir, n); fs.mkdirSync(d); return d; });
      const [e, l] = await Promise.all([xenoRounds(img, mem, runs, idle, dirs[0]!, { XENO_LAZY_RESTORE: "0" }, "eager"),
        xenoRounds(img, mem, runs, idle, dirs[1]!, { XENO_LAZY_RESTORE: "1" }, "lazy")]);
      const first = (r: { timing: Record<string, number> }[]): string => median(r.map((v) => v.timing.runningMs ?? NaN)).toFixed(1);
      console.log(`restore of an idle ${mem} MiB guest, median of ${runs}: eager ${median(e.map((v) => v.restore)).toFixed(0)} ms (first guest instruction ${first(e)}), ` +
        `lazy ${median(l.map((v) => v.restore)).toFixed(0)} ms (first guest instruction ${first(l)})`);
      return;
    }
    const x = await xenoRounds(img, mem, runs, idle, dir);
    const q = process.argv.includes("--no-qemu") ? null : await qemuRounds(img, mem, runs, idle, dir);
    const row = (name: string, r: { save: number; restore: number; bytes: number }[]): string => `  ${name}: save ${median(r.map((v) => v.save)).toFixed(0)} ms, ` +
      `restore ${median(r.map((v) => v.restore)).toFixed(0)} ms, file ${(median(r.map((v) => v.bytes)) / 2 ** 20).toFixed(1)} MiB`;
    console.log(`save/restore of an idle ${mem} MiB guest (${img.kernelVersion}, 1 vCPU), median of ${runs}:`);
    console.log(row("xeno (hypervisor save/restore)", x));
    if (q !== null) console.log(row("qemu TCG (migrate exec:cat / -incoming, restore incl. process start)", q));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { process.stderr.write(`bench/save: ${(e as Error).stack}\n`); process.exitCode = 1; });
