/**
 * `xeno shutdown -w` and `xeno reboot` on the README's demo guest (examples/demo.cfg) through xenod and the
 * hypervisor, as a user runs them. The guest's PID 1 is busybox init (src/images/initramfs.ts): Linux's Xen
 * driver answers control/shutdown by running /sbin/poweroff or /sbin/reboot, which signal PID 1 (SIGUSR2,
 * SIGTERM); init stops every process and calls reboot(2), which ends in SCHEDOP_shutdown.
 *  - shutdown -w: returns 0 within 30 s with xl's "has been shut down"/"destroyed" line; the domain is gone;
 *  - reboot -w of a paused guest: after 10 s a line says its guest has not read the request; unpaused, it
 *    reboots: within 30 s `xeno list` shows demo again under a new domid (on_reboot=restart), and it boots to
 *    its shell again (its console shows the ready marker).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages } from "../../src/images/index.js";
import { linkStableImages } from "../../src/images/stable-links.js";
import { CLI, ROOT } from "../machine/cli-domain.js";

const BOOT_MS = 8 * 60_000;

test("demo guest: xeno shutdown -w ends it within 30 s; xeno reboot brings it back with a new domid", { timeout: 20 * 60_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  await linkStableImages(images.cacheDir);
  const run = mkdtempSync(join(tmpdir(), "xeno-shutdown-"));
  const env = { ...process.env, XENO_RUN_DIR: run };
  const xeno = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });
  /** A console client (`xeno create -c` or `xeno console`) on pipes; `waitFor` polls its output. */
  const attach = (args: string[]) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    const io = { out: "", err: "" };
    child.stdout.setEncoding("latin1").on("data", (d: string) => { io.out += d; });
    child.stderr.setEncoding("utf8").on("data", (d: string) => { io.err += d; });
    const waitFor = async (re: RegExp, ms: number, what: string): Promise<void> => {
      const end = Date.now() + ms;
      while (!re.test(io.out)) {
        if (child.exitCode !== null) assert.fail(`${what}: xeno ${args[0]} exited ${child.exitCode}\n${io.err}\n${io.out.slice(-2000)}`);
        if (Date.now() > end) assert.fail(`${what}: not seen\n${io.err}\n${io.out.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    return { child, io, waitFor };
  };
  const demoId = (): number | undefined => {
    const m = /^demo\s+(\d+)\s/m.exec(xeno("list").stdout);
    return m === null ? undefined : Number(m[1]);
  };
  try {
    // 1. shutdown -w: the guest acknowledges, init powers it off, on_poweroff=destroy removes it.
    const first = attach(["create", "-c", join(ROOT, "examples/demo.cfg")]);
    await first.waitFor(/XENO-GUEST-READY/, BOOT_MS, "first boot");
    const id1 = demoId();
    assert.ok(id1 !== undefined, xeno("list").stdout);
    let t0 = Date.now();
    const sd = xeno("shutdown", "-w", "demo");
    const took = Date.now() - t0;
    assert.equal(sd.status, 0, sd.stderr);
    assert.ok(took < 30_000, `shutdown -w took ${took} ms`);
    assert.match(sd.stderr, new RegExp(`Shutting down domain ${id1}\\n`));
    assert.match(sd.stderr, new RegExp(`Domain ${id1} has been (shut down, reason code 0|destroyed)`));
    assert.equal(demoId(), undefined);
    assert.match(readFileSync(join(run, "xenod.log"), "utf8"), new RegExp(`domain ${id1} \\(demo\\) powered off: destroyed`));

    // 2. reboot: a new domain of the same name and config (on_reboot=restart) with a new domid, booting again.
    const second = attach(["create", join(ROOT, "examples/demo.cfg")]);
    assert.equal(await new Promise<number | null>((r) => second.child.on("exit", r)), 0, second.io.err);
    const id2 = demoId()!;
    const con = attach(["console", "demo"]);
    await con.waitFor(/XENO-GUEST-READY/, BOOT_MS, "second boot");
    assert.equal(xeno("pause", "demo").status, 0);
    const rb = attach(["reboot", "-w", "demo"]);
    const rbErr = async (re: RegExp, ms: number): Promise<void> => {
      const end = Date.now() + ms;
      while (!re.test(rb.io.err)) {
        if (Date.now() > end) assert.fail(`xeno reboot -w: ${re} not seen\n${rb.io.err}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await rbErr(new RegExp(`Domain ${id2} \\(demo\\) still running after 1\\d s: its guest has not read the request yet`), 20_000);
    assert.equal(xeno("unpause", "demo").status, 0);
    await rbErr(new RegExp(`Domain ${id2} has been (shut down, reason code 1|destroyed)`), 30_000);
    assert.equal(await new Promise<number | null>((r) => (rb.child.exitCode !== null ? r(rb.child.exitCode) : rb.child.on("exit", r))), 0, rb.io.err);
    t0 = Date.now();
    let id3: number | undefined;
    while (Date.now() - t0 < 30_000) {
      id3 = demoId();
      if (id3 !== undefined && id3 !== id2) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(id3 !== undefined && id3 !== id2, `demo not back under a new domid within 30 s (was ${id2}, now ${id3})`);
    // xenod logs the restart once its create call has returned, which can be after the new domain is listed.
    const rebooted = new RegExp(`domain ${id2} \\(demo\\) rebooted`);
    for (const end = Date.now() + 30_000; !rebooted.test(readFileSync(join(run, "xenod.log"), "utf8")) && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(readFileSync(join(run, "xenod.log"), "utf8"), rebooted);
    const third = attach(["console", "demo"]);
    await third.waitFor(/XENO-GUEST-READY/, BOOT_MS, "boot after reboot");
    assert.equal(xeno("destroy", "demo").status, 0);
    for (const c of [first, con, third]) c.child.kill();
  } finally {
    for (const f of ["xenod.pid", "hv.pid"]) {
      const pf = join(run, f);
      if (existsSync(pf)) { try { process.kill(Number(readFileSync(pf, "utf8").trim()), "SIGTERM"); } catch { /* gone */ } }
    }
    await new Promise((r) => setTimeout(r, 1500));
    rmSync(run, { recursive: true, force: true });
  }
});
