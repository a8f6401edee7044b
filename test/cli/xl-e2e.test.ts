/**
 * The xl subcommands end to end (one real boot): `xeno` processes against xenod and the hypervisor in a temp
 * XENO_RUN_DIR. `xeno list` starts them and shows Domain-0; a Debian DomU created through the client shows in
 * `xeno list` with xl's columns; pause → 'p', unpause; `xeno console` through pipes runs a command in the guest
 * and detaches with ^] (the domain keeps running); `xeno mem-set` to 116 MiB: the guest's balloon gives frames
 * back and the pool's free memory rises by what its reservation fell (test/xen/balloon.test.ts checks the
 * frames themselves); `xeno destroy` removes it. Then xenod and the hypervisor stop.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { connectXenod } from "../../src/toolstack/client.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const HV_MAIN = fileURLToPath(new URL("../../src/hv/main.js", import.meta.url));
const XENOD_MAIN = fileURLToPath(new URL("../../src/toolstack/main.js", import.meta.url));
const BOOT_MS = 10 * 60_000;

/** Runs `xeno ARGS…` to completion. */
function xeno(dir: string, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, XENO_RUN_DIR: dir }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    c.stdout.on("data", (b: Buffer) => { out += b.toString(); });
    c.stderr.on("data", (b: Buffer) => { err += b.toString(); });
    const t = setTimeout(() => { c.kill("SIGKILL"); reject(new Error(`xeno ${args.join(" ")}: no exit within ${timeoutMs / 1000} s\n${err}`)); }, timeoutMs);
    c.on("exit", (code) => { clearTimeout(t); resolve({ code, out, err }); });
  });
}

/** `xeno list`'s row for `name`, split into its columns. */
async function row(dir: string, name: string): Promise<{ line: string; id: number; mem: number; vcpus: number; state: string; time: number } | undefined> {
  const r = await xeno(dir, ["list"]);
  assert.equal(r.code, 0, r.err);
  const line = r.out.split("\n").find((l) => l.startsWith(name.padEnd(40) + " "));
  if (line === undefined) return undefined;
  // "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f"
  assert.match(line, /^.{40} [ \d]{4}\d [ \d]{4}\d [ \d]{4}\d {5}[r-][b-][p-][s-][-rscwS][d-]  [ \d]{5,}\.\d$/, line);
  return {
    line, id: Number(line.slice(41, 46)), mem: Number(line.slice(47, 52)), vcpus: Number(line.slice(53, 58)),
    state: line.slice(63, 69), time: Number(line.slice(71)),
  };
}

async function stopPid(path: string): Promise<void> {
  let pid: number;
  try { pid = Number(readFileSync(path, "utf8")); } catch { return; }
  try { process.kill(pid, "SIGTERM"); } catch { return; }
  for (let i = 0; i < 100; i++) {
    try { process.kill(pid, 0); } catch { return; }
    await new Promise((r) => setTimeout(r, 100));
  }
  try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
}

test("xeno list/pause/unpause/console/destroy against xenod and the hypervisor, one Debian DomU", {
  skip: existsSync(HV_MAIN) && existsSync(XENOD_MAIN) ? false : "dist/src/hv/main.js or dist/src/toolstack/main.js not built",
  timeout: 20 * 60_000,
}, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xl-e2e-"));
  let console: ChildProcess | undefined;
  try {
    // `xeno list` starts xenod (and it the hypervisor) and shows Domain-0 alone.
    let r = await xeno(dir, ["list"]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split("\n");
    assert.equal(lines[0], "Name                                        ID   Mem VCPUs\tState\tTime(s)");
    assert.match(lines[1]!, /^Domain-0 {32} {5}0 [ \d]{5} [ \d]{5}     r-----  [ \d]{5,}\.\d$/);
    assert.equal(lines.length, 3, r.out);

    const c = await connectXenod({ runDir: dir });
    const { domid } = await c.request("create", { spec: {
      name: "xl-e2e", memMiB: 128, vcpus: 1, kernel: images.kernel, ramdisk: images.initrd, cmdline: "console=hvc0",
      xen: true, disks: [], vifs: [], toolstack: { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" },
    } });
    c.close();

    let d = await row(dir, "xl-e2e");
    assert.ok(d, "listed");
    assert.equal(d.id, domid);
    // Current reservation: the populated frames (the hypervisor may hold back a few of the 128 MiB).
    assert.ok(d.mem > 120 && d.mem <= 128, d.line);
    assert.ok(d.vcpus <= 1, d.line);
    assert.match(d.state, /^[r-][b-]----$/, d.line);
    assert.equal((await xeno(dir, ["domid", "xl-e2e"])).out, `${domid}\n`);

    // pause → 'p'; unpause → running or blocked again.
    r = await xeno(dir, ["pause", "xl-e2e"]);
    assert.equal(r.code, 0, r.err);
    d = await row(dir, "xl-e2e");
    assert.equal(d?.state, "--p---", d?.line);
    r = await xeno(dir, ["unp", String(domid)]);
    assert.equal(r.code, 0, r.err);
    d = await row(dir, "xl-e2e");
    assert.match(d!.state, /^[r-][b-]----$/, d!.line);

    // The console through pipes: wait for the guest, run a command, detach with ^].
    console = spawn(process.execPath, [CLI, "console", "xl-e2e"], { env: { ...process.env, XENO_RUN_DIR: dir }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let cerr = "";
    console.stdout!.on("data", (b: Buffer) => { out += b.toString("latin1"); });
    console.stderr!.on("data", (b: Buffer) => { cerr += b.toString(); });
    const exited = new Promise<number | null>((res) => console!.on("exit", (code) => res(code)));
    const waitFor = async (re: RegExp, from: number, ms: number, what: string): Promise<number> => {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = re.exec(out.slice(from));
        if (m) return from + m.index + m[0].length;
        if (/Kernel panic - not syncing/.test(out)) assert.fail(`${what}: guest panicked\n${out.slice(-2000)}`);
        if (console!.exitCode !== null) assert.fail(`${what}: xeno console exited (${console!.exitCode})\n${cerr}\n${out.slice(-2000)}`);
        if (Date.now() > deadline) assert.fail(`${what}: not seen within ${ms / 1000} s\n${out.slice(-2000)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const t0 = Date.now();
    await waitFor(new RegExp(GUEST_READY_MARKER), 0, BOOT_MS, "guest ready");
    process.stderr.write(`# guest ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    const from = out.length;
    console.stdin!.write("echo xl-$((20+22))\n");
    await waitFor(/^xl-42\r?$/m, from, 120_000, "the command's output");
    console.stdin!.write("\x1d");
    assert.equal(await exited, 0, cerr);
    console = undefined;

    d = await row(dir, "xl-e2e");
    assert.ok(d, "the domain still runs after the console detached");
    assert.match(d.state, /^[r-][b-]----$/, d.line);
    assert.ok(d.time > 0, d.line);
    assert.equal(d.vcpus, 1, d.line);

    r = await xeno(dir, ["vcpu-list", "xl-e2e"]);
    // "%-32s %5u %5u" name, domid, vCPU; "%5u %3c%c- " CPU (the pCPU the domain holds, '-' while it holds
    // none: idle or not yet scheduled), r/b; "%9.1f  " time; affinity.
    assert.match(r.out.split("\n")[1]!, new RegExp(`^${"xl-e2e".padEnd(32)} ${String(domid).padStart(5)}     0    [-\\d]   [r-][b-]- [ \\d]{7}\\.\\d  all / all$`), r.out);
    r = await xeno(dir, ["top", "-b", "-i", "1"]);
    assert.match(r.out, /^ {4}xl-e2e [-rb]{6}/m, r.out);

    // mem-set down: the guest's balloon driver gives frames back; the pool's free memory rises by exactly what
    // the reservation fell (MiB, as the hypervisor rounds it down). The balloon works in steps and stops near the
    // target, so the two are read until a reading sits between two equal reads of the pool. 116 of 128 MiB:
    // Debian's kernel keeps 64 MiB for CMA, which the balloon's allocations cannot take, so this guest has about
    // 20 MiB to give (asked for 96 MiB, it gave 20.5 MiB back, then ran out of memory and killed its shell).
    {
      const c2 = await connectXenod({ runDir: dir });
      try {
        const mem = async (): Promise<number> => (await c2.request("list")).find((x) => x.domid === domid)!.memKiB;
        const free0 = (await c2.request("info")).freeMemoryMiB, mem0 = await mem();
        const tSet = Date.now();
        r = await xeno(dir, ["mem-set", "xl-e2e", "116"]);
        assert.equal(r.code, 0, r.err);
        const deadline = Date.now() + 120_000;
        let seen = "";
        for (;;) {
          const f1 = (await c2.request("info")).freeMemoryMiB, m1 = await mem(), f2 = (await c2.request("info")).freeMemoryMiB;
          seen = `reservation ${mem0} → ${m1} KiB, pool free ${free0} → ${f2} MiB`;
          if (m1 <= 117 * 1024 && f1 === f2 && Math.abs((f2 - free0) - (mem0 - m1) / 1024) < 1) break;
          if (Date.now() > deadline) assert.fail(`mem-set 116: ${seen}`);
          await new Promise((res) => setTimeout(res, 200));
        }
        process.stderr.write(`# mem-set 116: ${seen} (${((Date.now() - tSet) / 1000).toFixed(1)} s)\n`);
        d = await row(dir, "xl-e2e");
        assert.ok(d !== undefined && d.mem <= 117, d?.line);
      } finally {
        c2.close();
      }
    }

    // destroy → gone.
    r = await xeno(dir, ["destroy", "xl-e2e"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(await row(dir, "xl-e2e"), undefined);
    r = await xeno(dir, ["pause", "xl-e2e"]);
    assert.equal(r.code, 1);
    assert.match(r.err, /domain 'xl-e2e' does not exist/);
  } finally {
    console?.kill("SIGKILL");
    await stopPid(join(dir, "xenod.pid"));
    await stopPid(join(dir, "hv.pid"));
    rmSync(dir, { recursive: true, force: true });
  }
});
