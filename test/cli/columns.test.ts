/**
 * The columns of `xeno top`, `block-list`, `network-list` and `vcpu-list` tell the truth for a real guest run
 * through xenod and the hypervisor (examples/demo.cfg with a disk and a vif on xenbr0, whose uplink is passt):
 *  - the guest writes 8 MiB to its disk (dd … conv=fsync) and fetches 5 MiB from the host over its vif
 *    (wget from 10.0.2.2, passt's address for the host's loopback): `xeno top -b -i 1` shows VBD_WR > 0,
 *    VBD_WSECT ≥ 16384 and NETRX(k) ≥ 5000 for it, the counts of blkback and netback;
 *  - after a busy loop in the guest, Domain-0's CPU(sec) (the toolstack's own) is less than the guest's;
 *  - block-list / network-list show the front-end Connected (4) with its event channel and ring refs, as
 *    XenStore has them; vcpu-list shows a pCPU number for the vCPU.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages } from "../../src/images/index.js";
import { linkStableImages } from "../../src/images/stable-links.js";
import { CLI, ROOT } from "../machine/cli-domain.js";

const BOOT_MS = 8 * 60_000;

test("xentop's I/O columns, block-list/network-list state, vcpu-list CPU, Domain-0's own CPU", {
  timeout: 20 * 60_000, skip: spawnSync("passt", ["--version"]).error !== undefined ? "passt is not installed (apt-get install passt)" : false,
}, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  await linkStableImages(images.cacheDir);
  const run = mkdtempSync(join(tmpdir(), "xeno-columns-"));
  const env = { ...process.env, XENO_RUN_DIR: run };
  const xeno = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });
  // 5 MiB of text (busybox wget copes with any bytes, but text keeps the console readable if it misroutes).
  const blob = Buffer.alloc(5 << 20, "x");
  const http = createHttpServer((_req, res) => { res.writeHead(200, { "content-length": blob.length }); res.end(blob); });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const port = (http.address() as AddressInfo).port;
  const img = join(run, "data.img");
  writeFileSync(img, Buffer.alloc(0));
  spawnSync("truncate", ["-s", "16M", img]);
  const cfg = join(run, "cols.cfg");
  writeFileSync(cfg, readFileSync(join(ROOT, "examples/demo.cfg"), "utf8") +
    `disk = [ 'format=raw, vdev=xvdb, access=rw, target=${img}' ]\nvif = [ 'mac=00:16:3e:00:00:0b, bridge=xenbr0' ]\n`);
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
  const sh = async (cmd: string, re: RegExp, ms = 240_000): Promise<void> => {
    const from = out.length;
    child.stdin.write(cmd + "\n");
    await waitFor(re, from, ms, cmd);
  };
  /** The `xeno top -b -i 1` row of `name` as a map from column title to value. */
  const top = (name: string): Record<string, string> => {
    const r = xeno("top", "-b", "-i", "1");
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    const head = lines[0]!.trim().split(/\s+/);
    const row = lines.find((l) => l.trim().split(/\s+/)[0] === name);
    assert.ok(row !== undefined, r.stdout);
    const cells = row.trim().split(/\s+/);
    return Object.fromEntries(head.map((h, i) => [h, cells[i]!]));
  };
  try {
    await waitFor(/XENO-GUEST-READY/, 0, BOOT_MS, "guest ready");
    await sh("dd if=/dev/zero of=/dev/xvdb bs=1M count=8 conv=fsync 2>&1; echo DD-$((4+4))-DONE", /DD-8-DONE/);
    await sh("ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 && echo NET-$((1+1))-UP", /NET-2-UP/, 60_000);
    await sh(`wget -q -O /dev/null http://10.0.2.2:${port}/ && echo WGET-$((2+3))-DONE`, /WGET-5-DONE/, 600_000);
    const t = top("demo");
    process.stderr.write(`# xentop demo: ${JSON.stringify(t)}\n`);
    assert.ok(Number(t.VBD_WSECT) >= 16384, `VBD_WSECT ${t.VBD_WSECT}`);
    assert.ok(Number(t.VBD_WR) > 0, `VBD_WR ${t.VBD_WR}`);
    assert.ok(Number(t["NETRX(k)"]) >= 5000, `NETRX(k) ${t["NETRX(k)"]}`);
    assert.ok(Number(t["NETTX(k)"]) > 0, `NETTX(k) ${t["NETTX(k)"]}`);
    assert.equal(t.VBD_OO, "0");
    // memory = 256 (demo.cfg): 256 MiB of RAM, listed as such.
    assert.equal(t["MEM(k)"], String(256 * 1024));

    // Busy for a while: the guest's CPU time grows; Domain-0's (the toolstack's own work) stays below it.
    await sh("i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done; echo BUSY-$((3+3))-DONE", /BUSY-6-DONE/, 300_000);
    const t2 = top("demo"), d0 = top("Domain-0");
    process.stderr.write(`# CPU(sec): demo ${t2["CPU(sec)"]}, Domain-0 ${d0["CPU(sec)"]}; Domain-0 MEM(k) ${d0["MEM(k)"]}\n`);
    assert.ok(Number(d0["CPU(sec)"]) < Number(t2["CPU(sec)"]), `Domain-0 ${d0["CPU(sec)"]} s, demo ${t2["CPU(sec)"]} s`);

    const bl = xeno("block-list", "demo");
    assert.equal(bl.status, 0, bl.stderr);
    assert.match(bl.stdout, /^51728\s+0\s+\d+\s+4\s+\d+\s+\d+\s+\/local\/domain\/0\/backend\/vbd\/\d+\/51728\s*$/m);
    const nl = xeno("network-list", "demo");
    assert.equal(nl.status, 0, nl.stderr);
    // evt-ch: netfront uses split event channels (event-channel-tx/-rx), and libxl reads only event-channel,
    // so xl prints -1 there too.
    assert.match(nl.stdout, /^0\s+0\s+00:16:3e:00:00:0b\s+0\s+4\s+-?\d+\s+\d+\/\d+\s+\/local\/domain\/0\/backend\/vif\/\d+\/0\s*$/m);
    const vl = xeno("vcpu-list", "demo");
    assert.equal(vl.status, 0, vl.stderr);
    assert.match(vl.stdout, /^demo\s+\d+\s+0\s+\d+\s+/m, vl.stdout);
    assert.equal(xeno("destroy", "demo").status, 0);
  } finally {
    child.kill();
    http.close();
    for (const f of ["xenod.pid", "hv.pid"]) {
      const pf = join(run, f);
      if (existsSync(pf)) { try { process.kill(Number(readFileSync(pf, "utf8").trim()), "SIGTERM"); } catch { /* gone */ } }
    }
    await new Promise((r) => setTimeout(r, 1500));
    rmSync(run, { recursive: true, force: true });
  }
});
