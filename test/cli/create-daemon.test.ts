/**
 * `xeno create` the way a user runs it (the README's main command): through xenod and the hypervisor process,
 * both started on demand in a private XENO_RUN_DIR. One boot of examples/demo.cfg with -c:
 *  - "Started domain demo (id=1)", the console attached (hvc0: no console= in the config), a command answers;
 *  - `xeno list` from another process shows the domain while the console is attached;
 *  - the guest powers off → xenod applies on_poweroff=destroy → the console ends and `xeno create` exits 0;
 *    `xeno list` shows only Domain-0 again;
 * and, without booting, `create -p` leaves a domain paused ('p'), `unpause` starts it, `destroy` removes it.
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

test("xeno create -c through xenod: console, list, poweroff → destroyed; -p / unpause / destroy", { timeout: 10 * 60_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  await linkStableImages(images.cacheDir);
  const run = mkdtempSync(join(tmpdir(), "xeno-create-"));
  const env = { ...process.env, XENO_RUN_DIR: run };
  const xeno = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 60_000 });
  try {
    const child = spawn(process.execPath, [CLI, "create", "-c", join(ROOT, "examples/demo.cfg")], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.setEncoding("latin1").on("data", (d: string) => { out += d; });
    child.stderr.setEncoding("utf8").on("data", (d: string) => { err += d; });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const waitFor = async (re: RegExp, from: number, ms: number, what: string): Promise<void> => {
      const end = Date.now() + ms;
      while (!re.test(out.slice(from))) {
        if (child.exitCode !== null) assert.fail(`${what}: xeno create exited ${child.exitCode}\n${err}\n${out.slice(-2000)}`);
        if (Date.now() > end) assert.fail(`${what}: not seen\n${err}\n${out.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await waitFor(/XENO-GUEST-READY/, 0, 8 * 60_000, "guest ready");
    assert.match(err, /Started domain demo \(id=1\)/);
    assert.match(out, /printk: console \[hvc0\] enabled/);
    let from = out.length;
    child.stdin.write("echo VIA-$((6*7))-XENOD\n");
    await waitFor(/^VIA-42-XENOD\r?$/m, from, 120_000, "command output");

    const list = xeno("list");
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^demo\s+1\s+25\d\s+1\s+[-rb]{2}-{4}\s+\d+\.\d$/m);

    from = out.length;
    child.stdin.write("poweroff -f\n");
    assert.equal(await exited, 0, err);
    const after = xeno("list");
    assert.doesNotMatch(after.stdout, /^demo/m);
    assert.match(readFileSync(join(run, "xenod.log"), "utf8"), /domain 1 \(demo\) powered off: destroyed \(on_poweroff=destroy\)/);

    // -p: paused from the start, then unpaused and destroyed (no need to wait for the boot).
    const p = xeno("create", "-p", join(ROOT, "examples/demo.cfg"), 'name="paused-demo"');
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stderr, /Started domain paused-demo \(id=\d+\), paused/);
    assert.match(xeno("list", "paused-demo").stdout, /^paused-demo\s+\d+\s+\d+\s+1\s+--p---/m);
    assert.equal(xeno("unpause", "paused-demo").status, 0);
    assert.match(xeno("list", "paused-demo").stdout, /^paused-demo\s+\d+\s+\d+\s+1\s+[-rb]{2}-{4}/m);
    assert.equal(xeno("destroy", "paused-demo").status, 0);
    assert.doesNotMatch(xeno("list").stdout, /paused-demo/);
  } finally {
    for (const f of ["xenod.pid", "hv.pid"]) {
      const pf = join(run, f);
      if (existsSync(pf)) { try { process.kill(Number(readFileSync(pf, "utf8").trim()), "SIGTERM"); } catch { /* gone */ } }
    }
    await new Promise((r) => setTimeout(r, 1500));
    rmSync(run, { recursive: true, force: true });
  }
});
