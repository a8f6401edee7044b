/**
 * `xeno block-detach` / `network-detach` follow the XenbusState close handshake (libxl's removal): online = 0
 * and Closing; the guest's front-end closes (Closed); then the device goes. Real guest (examples/demo.cfg
 * with xvdb and a vif) through xenod and the hypervisor:
 *  - a guest that cannot answer (paused) makes block-detach wait 10 s and fail with the reason and the way out
 *    (-f); the disk stays listed; `block-detach -f` removes it at once; the same for network-detach;
 *  - a running guest with xvdb mounted: its blkfront closes the disk (Linux ≥ 5.14 does so even while it is
 *    mounted: the kernel marks the disk dead), the detach reports success, and the guest sees I/O errors on the
 *    mount, as on Xen with the same kernel. (Evidence and the kernel change: the comment on
 *    XenbusBackend.unplug, src/backends/xenbus-backend.ts. So "a mounted disk waits" cannot be shown with this
 *    guest kernel; the wait is shown with a guest that cannot answer.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages } from "../../src/images/index.js";
import { linkStableImages } from "../../src/images/stable-links.js";
import { CLI, ROOT } from "../machine/cli-domain.js";

const BOOT_MS = 8 * 60_000;

test("block-detach / network-detach: wait for the front-end, fail clearly when it does not close, -f forces", {
  timeout: 20 * 60_000, skip: spawnSync("passt", ["--version"]).error !== undefined ? "passt is not installed (apt-get install passt)" : false,
}, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  await linkStableImages(images.cacheDir);
  const run = mkdtempSync(join(tmpdir(), "xeno-detach-"));
  const env = { ...process.env, XENO_RUN_DIR: run };
  const xeno = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });
  const imgB = join(run, "b.img"), imgC = join(run, "c.img");
  for (const img of [imgB, imgC]) spawnSync("truncate", ["-s", "16M", img]);
  const mkfs = spawnSync("mkfs.ext4", ["-q", "-F", imgC]);
  assert.equal(mkfs.status, 0, `mkfs.ext4 (e2fsprogs): ${mkfs.stderr}`);
  const cfg = join(run, "detach.cfg");
  writeFileSync(cfg, readFileSync(join(ROOT, "examples/demo.cfg"), "utf8") +
    `disk = [ 'format=raw, vdev=xvdb, access=rw, target=${imgB}', 'format=raw, vdev=xvdc, access=rw, target=${imgC}' ]\n` +
    "vif = [ 'mac=00:16:3e:00:00:0c, bridge=xenbr0' ]\n");
  const child = spawn(process.execPath, [CLI, "create", "-c", cfg], { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.setEncoding("latin1").on("data", (d: string) => { out += d; });
  child.stderr.setEncoding("utf8").on("data", (d: string) => { err += d; });
  const waitFor = async (re: RegExp, from: number, ms: number, what: string): Promise<void> => {
    const end = Date.now() + ms;
    while (!re.test(out.slice(from))) {
      if (child.exitCode !== null) assert.fail(`${what}: xeno create exited ${child.exitCode}\n${err}\n${out.slice(-2000)}`);
      if (Date.now() > end) assert.fail(`${what}: not seen\n${err}\n${out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const sh = async (cmd: string, re: RegExp, ms = 120_000): Promise<void> => {
    const from = out.length;
    child.stdin.write(cmd + "\n");
    await waitFor(re, from, ms, cmd);
  };
  try {
    await waitFor(/XENO-GUEST-READY/, 0, BOOT_MS, "guest ready");
    await sh("for i in $(seq 100); do [ -e /sys/block/xvdc ] && break; sleep 0.2; done; mkdir -p /mnt && mount /dev/xvdc /mnt && echo hi > /mnt/f && echo MNT-$((1+1))-OK",
      /MNT-2-OK/);

    // A paused guest cannot close its front-ends: detach waits, then fails; the disk stays; -f removes it.
    assert.equal(xeno("pause", "demo").status, 0);
    let t0 = Date.now();
    const slow = xeno("block-detach", "demo", "xvdb");
    const waited = Date.now() - t0;
    assert.equal(slow.status, 1, slow.stderr);
    assert.ok(waited >= 9_000, `failed after ${waited} ms, before the 10 s wait`);
    assert.match(slow.stderr, /Waiting for domain 'demo' \(\d+\) to close xvdb/);
    assert.match(slow.stderr, /cannot detach xvdb from domain 'demo' \(\d+\): xvdb: the guest did not close the device within 10 s \(its front-end is in XenbusState 4\); it stays attached, closing \(.*add -f to remove it anyway\)/);
    assert.match(xeno("block-list", "demo").stdout, /^51728 /m);
    t0 = Date.now();
    const forced = xeno("block-detach", "-f", "demo", "xvdb");
    assert.equal(forced.status, 0, forced.stderr);
    assert.ok(Date.now() - t0 < 9_000, "-f did not wait");
    assert.match(forced.stderr, /xvdb removed while the guest had not closed it \(-f\)/);
    assert.doesNotMatch(xeno("block-list", "demo").stdout, /^51728 /m);
    const vslow = xeno("network-detach", "demo", "0");
    assert.equal(vslow.status, 1, vslow.stderr);
    assert.match(vslow.stderr, /vif 0: the guest did not close the device within 10 s/);
    const vforced = xeno("network-detach", "-f", "demo", "0");
    assert.equal(vforced.status, 0, vforced.stderr);
    assert.doesNotMatch(xeno("network-list", "demo").stdout, /^0 /m);
    assert.equal(xeno("unpause", "demo").status, 0);
    await sh("echo ALIVE-$((2+2))", /ALIVE-4/);

    // Running and mounted: blkfront closes at once (it marks the disk dead), so the detach succeeds.
    const mounted = xeno("block-detach", "demo", "xvdc");
    assert.equal(mounted.status, 0, mounted.stderr);
    assert.doesNotMatch(mounted.stderr, /removed while/);
    assert.doesNotMatch(xeno("block-list", "demo").stdout, /^51744 /m);
    await sh("cat /mnt/f; ls /sys/block; echo AFTER-$((3+3))", /AFTER-6/);
    assert.equal(xeno("destroy", "demo").status, 0);
  } finally {
    child.kill();
    for (const f of ["xenod.pid", "hv.pid"]) {
      const pf = join(run, f);
      if (existsSync(pf)) { try { process.kill(Number(readFileSync(pf, "utf8").trim()), "SIGTERM"); } catch { /* gone */ } }
    }
    await new Promise((r) => setTimeout(r, 1500));
    rmSync(run, { recursive: true, force: true });
  }
});
