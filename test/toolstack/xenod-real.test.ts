/**
 * xenod with the real hypervisor and one real Debian DomU (one boot): xenod starts the hypervisor, creates a
 * domain, and is stopped (SIGTERM) while the domain runs; a new xenod lists the same domain with the same domid
 * and its console still answers. Then the guest powers itself off and xenod's on_poweroff=destroy removes it.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { connectXenod, XENOD_MAIN, type XenodClient } from "../../src/toolstack/client.js";

const HV_MAIN = fileURLToPath(new URL("../../src/hv/main.js", import.meta.url));
const BOOT_MS = 10 * 60_000;

class Xenod {
  readonly child: ChildProcess;
  err = "";
  readonly exited: Promise<number | null>;
  constructor(dir: string) {
    this.child = spawn(process.execPath, [XENOD_MAIN, "--run-dir", dir, "--foreground"], { stdio: ["ignore", "ignore", "pipe"] });
    this.child.stderr!.on("data", (b: Buffer) => { this.err += b.toString(); });
    this.exited = new Promise((r) => this.child.on("exit", (code) => r(code)));
  }
  async client(dir: string): Promise<XenodClient> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try { return await connectXenod({ runDir: dir }); } catch (e) {
        if (this.child.exitCode !== null || Date.now() > deadline) assert.fail(`xenod did not come up: ${(e as Error).message}\n${this.err}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Console output collected as latin1 text, with a waiter. */
class Tap {
  out = "";
  constructor(readonly stream: Duplex) { stream.on("data", (b: Buffer) => { this.out += b.toString("latin1"); }); }
  async waitFor(re: RegExp, from: number, ms: number, what: string): Promise<number> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.out.slice(from));
      if (m) return from + m.index + m[0].length;
      if (/Kernel panic - not syncing/.test(this.out)) assert.fail(`${what}: guest panicked\n${this.out.slice(-2000)}`);
      if (Date.now() > deadline) assert.fail(`${what}: not seen within ${ms / 1000} s\n${this.out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  async run(cmd: string, re: RegExp, what: string): Promise<void> {
    const from = this.out.length;
    this.stream.write(cmd + "\n");
    await this.waitFor(re, from, 120_000, what);
  }
}

test("real hypervisor: a domain outlives xenod; a new xenod lists it and reaches its console; on_poweroff=destroy", {
  skip: existsSync(HV_MAIN) ? false : "dist/src/hv/main.js not built",
  timeout: 20 * 60_000,
}, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xenod-real-"));
  let x = new Xenod(dir);
  let hvPid: number | undefined;
  try {
    let c = await x.client(dir);
    hvPid = Number(readFileSync(join(dir, "hv.pid"), "utf8"));
    assert.match(x.err, /started the hypervisor/);

    const { domid } = await c.request("create", { spec: {
      name: "survivor", memMiB: 128, vcpus: 1, kernel: images.kernel, ramdisk: images.initrd, cmdline: "console=hvc0",
      xen: true, disks: [], vifs: [], toolstack: { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" },
    } });
    const listed = (await c.request("list")).find((d) => d.domid === domid);
    assert.equal(listed?.name, "survivor");
    const t0 = Date.now();
    let tap = new Tap(await c.openConsole(domid, { replay: true }));
    await tap.waitFor(new RegExp(GUEST_READY_MARKER), 0, BOOT_MS, "guest ready");
    process.stderr.write(`# guest ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    await tap.run("echo hi-$((1+1))", /^hi-2\r?$/m, "first echo");
    tap.stream.destroy();
    c.close();

    // xenod goes away; the domain stays in the hypervisor.
    x.child.kill("SIGTERM");
    assert.equal(await x.exited, 0, x.err);
    assert.ok(!existsSync(join(dir, "xenod.sock")));
    process.kill(hvPid, 0);

    x = new Xenod(dir);
    c = await x.client(dir);
    assert.doesNotMatch(x.err, /started the hypervisor/, "the second xenod finds the running hypervisor");
    const again = (await c.request("list")).find((d) => d.name === "survivor");
    assert.equal(again?.domid, domid, "same domid");
    assert.ok(again.state === "running" || again.state === "blocked", again.state);
    tap = new Tap(await c.openConsole(domid));
    await tap.run("echo hi-$((1+1))", /^hi-2\r?$/m, "echo through the new xenod");

    // The guest powers off; xenod applies on_poweroff=destroy.
    const events: string[] = [];
    await c.subscribe((e) => events.push(`${e.domid}:${e.event === "domain" ? e.state : e.event}`));
    tap.stream.write("poweroff -f\n");
    const deadline = Date.now() + 120_000;
    while ((await c.request("list")).some((d) => d.domid === domid)) {
      if (Date.now() > deadline) assert.fail(`domain not destroyed after poweroff\n${x.err}\n${tap.out.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(events.includes(`${domid}:shutdown`) && events.includes(`${domid}:destroyed`), events.join(" "));
    const line = `domain ${domid} (survivor) powered off: destroyed (on_poweroff=destroy)`;
    for (let i = 0; i < 50 && !x.err.includes(line); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(x.err.includes(line), x.err);
    c.close();
  } finally {
    x.child.kill("SIGTERM");
    await x.exited;
    if (hvPid !== undefined) {
      try { process.kill(hvPid, "SIGTERM"); } catch { /* gone */ }
      for (let i = 0; i < 100; i++) {
        try { process.kill(hvPid, 0); } catch { break; }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
