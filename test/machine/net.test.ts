/**
 * Networking through the CLI, end to end: two `xeno create -c` processes whose configs say
 * `vif = [ 'mac=…, bridge=xenbr0' ]` join one bridge daemon (src/net, with its passt uplink); their stock
 * kernels' xen-netfront talk to Xeno's netback. Checked, in one boot of each guest:
 *  - the two guests ping each other across the switch (both directions);
 *  - the host reaches a TCP port in a guest (a passt port forward to guest A's busybox httpd);
 *  - a guest reaches the host (guest A fetches from an HTTP server on the host's loopback via the gateway).
 * The bridge daemon runs in a private XENO_RUN_DIR, so the test never meets a bridge of a real user.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Domain, ROOT } from "./cli-domain.js";

const BOOT_MS = 8 * 60_000;
const MARKER = new RegExp(`^${GUEST_READY_MARKER}\\r?$`, "m");

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function httpGet(port: number, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) });
      return await r.text();
    } catch (e) {
      last = String((e as Error).cause ?? e);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  throw new Error(`host → guest: GET 127.0.0.1:${port} failed for ${ms / 1000} s: ${last}`);
}

test("two guests on xenbr0 ping each other; host → guest TCP port; guest → host", { timeout: BOOT_MS + 300_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xeno-net-"));
  const runDir = join(dir, "run");
  const env = { ...process.env, XENO_RUN_DIR: runDir };
  const fwdPort = await freePort();
  // GET: a greeting; POST: counts the body and times it from its first byte to its end (the rate= check).
  const posts: { bytes: number; ms: number }[] = [];
  const host = createHttpServer((q, r) => {
    if (q.method !== "POST") { r.end("hello-from-the-host\n"); return; }
    let bytes = 0, first = 0;
    q.on("data", (c: Buffer) => { if (bytes === 0) first = performance.now(); bytes += c.length; });
    q.on("end", () => { posts.push({ bytes, ms: performance.now() - first }); r.end(`got ${bytes} bytes\n`); });
  });
  await new Promise<void>((r) => host.listen(0, "127.0.0.1", r));
  const hostPort = (host.address() as AddressInfo).port;

  // The bridge, started explicitly to give it a port forward (a `xeno create` alone would start a plain one).
  const daemon = spawn(process.execPath, [join(ROOT, "dist/src/net/bridge-main.js"), "--name", "xenbr0", "--run-dir", runDir,
    "--uplink", "passt", "--forward", `tcp:${fwdPort}:80`, "--uplink-owner", "00:16:3e:00:00:0a"],
    { stdio: ["ignore", "pipe", "pipe"], env });
  let daemonLog = "";
  daemon.stdout!.on("data", (d) => { daemonLog += d; });
  daemon.stderr!.on("data", (d) => { daemonLog += d; });
  const doms: Domain[] = [];
  try {
    const sock = join(runDir, "net", "xenbr0.sock");
    for (let i = 0; i < 150 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(existsSync(sock), `bridge daemon did not listen at ${sock}\n${daemonLog}`);

    const cfg = (name: string, mac: string, extra = ""): string => {
      const p = join(dir, `${name}.cfg`);
      writeFileSync(p, `name = "${name}"\nmemory = 192\nvcpus = 1\nkernel = "${images.kernel}"\nramdisk = "${images.initrd}"\n` +
        `vif = [ 'mac=${mac}, bridge=xenbr0${extra}' ]\non_poweroff = "destroy"\n`);
      return p;
    };
    // A's transmissions are limited to 200 KB/s (10,000 bytes per 50 ms window), checked with a POST below.
    const a = new Domain([cfg("net-a", "00:16:3e:00:00:0a", ", rate=200KB/s")], env);
    const b = new Domain([cfg("net-b", "00:16:3e:00:00:0b")], env);
    doms.push(a, b);
    const t0 = Date.now();
    await Promise.all([a.waitFor(MARKER, 0, BOOT_MS, "guest A ready"), b.waitFor(MARKER, 0, BOOT_MS, "guest B ready")]);
    process.stderr.write(`# both guests ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

    await a.run("ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 && " +
      "mkdir -p /www && echo guest-a-web > /www/index.html && httpd -p 80 -h /www && echo A-$((1+1))-UP", /^A-2-UP\r?$/m);
    await b.run("ip link set eth0 up && ip addr add 10.0.2.16/24 dev eth0 && echo B-$((1+1))-UP", /^B-2-UP\r?$/m);

    const t1 = Date.now();
    const ab = await b.run("ping -c 3 -W 5 10.0.2.15", /(\d+) packets transmitted, (\d+) packets received/);
    assert.ok(Number(ab[2]) >= 2, `B → A: ${ab[0]}\n${b.tail()}`);
    const ba = await a.run("ping -c 3 -W 5 10.0.2.16", /(\d+) packets transmitted, (\d+) packets received/);
    assert.ok(Number(ba[2]) >= 2, `A → B: ${ba[0]}\n${a.tail()}`);
    process.stderr.write(`# pings between guests: ${((Date.now() - t1) / 1000).toFixed(1)} s\n`);

    // Host → guest A: passt forwards the host's port to 10.0.2.15:80.
    assert.equal((await httpGet(fwdPort, 60_000)).trim(), "guest-a-web");
    // Guest A → host: the gateway address is the host's loopback.
    await a.run(`wget -q -O - http://10.0.2.2:${hostPort}/ && echo WGET-$((2+2))-DONE`, /hello-from-the-host\r?\n(?:[^\n]*\n){0,4}?WGET-4-DONE/);

    // rate=200KB/s: 600 KiB from A take at least ~3 s (the first window's 10,000 bytes go at once; a
    // slower machine only makes it longer). Unlimited, this path moves ~2 MB/s (docs/benchmarks.md).
    // (Text, not zeros: busybox wget sends the file as a C string.)
    await a.run(`dd if=/dev/zero bs=1024 count=600 2>/dev/null | tr '\\0' x > /tmp/blob && ls -l /tmp/blob && echo BLOB-$((5+5))`, /BLOB-10/, 120_000);
    await a.run(`wget -q -O - --post-file=/tmp/blob ` +
      `http://10.0.2.2:${hostPort}/up && echo POST-$((3+3))-DONE`, /got 614400 bytes\r?\n(?:[^\n]*\n){0,4}?POST-6-DONE/, 120_000);
    const post = posts[posts.length - 1]!;
    process.stderr.write(`# rate=200KB/s: ${post.bytes} bytes in ${(post.ms / 1000).toFixed(2)} s = ${(post.bytes / post.ms).toFixed(0)} KB/s\n`);
    assert.ok(post.ms >= 2500, `600 KiB with rate=200KB/s arrived in ${post.ms.toFixed(0)} ms (expected ≥ 2.5 s)`);

    for (const d of doms) d.child.stdin!.write("poweroff -f\n");
    for (const d of doms) assert.equal((await d.ended(60_000)).code, 0, d.tail());
    for (const d of doms) assert.doesNotMatch(d.err, /netback.*(fatal|error)|unknown hypercall|failed inside the hypervisor/i, d.err);
  } finally {
    for (const d of doms) d.kill();
    daemon.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
