/**
 * `xeno create --standalone` applies on_poweroff / on_reboot / on_crash through xenod's policy module
 * (src/toolstack/policy.ts, decideStandalone): exit status and messages for each outcome, without a real kernel.
 * The guest is a hand-made arm64 Image of six instructions that makes one hypercall, SCHEDOP_shutdown with a
 * fixed reason, at once — so a crash is always within the crash-loop guard's 10 s, and a reboot loops.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ARM64_IMAGE_MAGIC } from "../../src/machine/arm64-image.js";
import { SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot } from "../../src/xen/sched-op.js";
import { CLI, ROOT } from "../machine/cli-domain.js";

let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), "xeno-standalone-policy-")); });
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

/**
 * An arm64 Image (Linux Documentation/arch/arm64/booting.rst header) whose code at 0x40 is
 *   adr x1, reason; movz x0, #2 (SCHEDOP_shutdown); movz x16, #29 (__HYPERVISOR_sched_op); hvc #0xea1; b .
 * with the MMU off, so x1 is the physical address of `reason` (struct sched_shutdown).
 */
function shutdownImage(reason: number): Buffer {
  const b = Buffer.alloc(0x1000);
  b.writeUInt32LE(0x14000010, 0); // code0: b #0x40
  b.writeBigUInt64LE(0n, 8); // text_offset
  b.writeBigUInt64LE(0x10000n, 16); // image_size
  b.writeBigUInt64LE(0b1010n, 24); // flags: little-endian, 4 KiB pages, placement anywhere
  b.writeUInt32LE(ARM64_IMAGE_MAGIC, 56);
  const code = [0x100000a1 /* adr x1, .+20 */, 0xd2800040, 0xd28003b0, 0xd401d422, 0x14000000 /* b . */, reason];
  code.forEach((w, i) => b.writeUInt32LE(w >>> 0, 0x40 + 4 * i));
  return b;
}

/** A config booting the image that stops with `reason`, plus `extra` lines (on_* settings). */
function config(name: string, reason: number, extra: string): string {
  const img = join(dir, `${name}.img`), cfg = join(dir, `${name}.cfg`);
  writeFileSync(img, shutdownImage(reason));
  writeFileSync(cfg, `name = "tiny"\nmemory = 32\nkernel = "${img}"\n${extra}`);
  return cfg;
}

const cases: { name: string; reason: number; extra: string; status: number; want: RegExp[]; not?: RegExp }[] = [
  { name: "poweroff", reason: SHUTDOWN_poweroff, extra: "", status: 0,
    want: [/domain 'tiny' powered off \(SCHEDOP_shutdown poweroff\); destroyed \(on_poweroff=destroy\)/] },
  { name: "reboot-destroy", reason: SHUTDOWN_reboot, extra: `on_reboot = "destroy"\n`, status: 0,
    want: [/rebooted .*destroyed \(on_reboot=destroy\)/] },
  { name: "crash", reason: SHUTDOWN_crash, extra: "", status: 1,
    want: [/domain 'tiny' crashed: SCHEDOP_shutdown reason 3/, /crashed \(.*\); destroyed \(on_crash=destroy\)/] },
  // No daemon keeps a stopped domain: preserve destroys it (a poweroff still ends with 0).
  { name: "preserve", reason: SHUTDOWN_poweroff, extra: `on_poweroff = "preserve"\n`, status: 0,
    want: [/on_poweroff=preserve: no toolstack daemon to keep the domain for inspection; destroying it/, /destroyed \(on_poweroff=preserve\)/] },
  { name: "coredump", reason: SHUTDOWN_crash, extra: `on_crash = "coredump-destroy"\n`, status: 1,
    want: [/on_crash=coredump-destroy: core dumps are not written/, /destroyed \(on_crash=coredump-destroy\)/] },
  // The crash-loop guard: a crash within 10 s of the start is not restarted.
  { name: "crash-loop", reason: SHUTDOWN_crash, extra: `on_crash = "restart"\n`, status: 1,
    want: [/domain 'tiny' crashed within 10 s of starting; not restarting it again/], not: /restarting \(/ },
];

for (const c of cases) {
  test(`standalone: ${c.name} → exit ${c.status}`, { timeout: 60_000 }, () => {
    const r = spawnSync(process.execPath, [CLI, "create", "--standalone", config(c.name, c.reason, c.extra)],
      { cwd: ROOT, input: "", encoding: "utf8", timeout: 50_000 });
    assert.equal(r.status, c.status, `exit ${r.status} (${r.signal ?? ""})\n${r.stderr}`);
    for (const re of c.want) assert.match(r.stderr, re);
    if (c.not) assert.doesNotMatch(r.stderr, c.not);
  });
}

test("standalone: on_reboot=rename-restart restarts (no old domain kept) until SIGTERM, which exits 143", { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, [CLI, "create", "--standalone", config("rename", SHUTDOWN_reboot, `on_reboot = "rename-restart"\n`)],
    { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    const restarts = (): number => err.match(/rebooted \(SCHEDOP_shutdown reboot\); restarting \(on_reboot=rename-restart\)/g)?.length ?? 0;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fewer than 2 restarts in 40 s\n${err}`)), 40_000);
      child.stderr.setEncoding("utf8").on("data", (s: string) => { err += s; if (restarts() >= 2) { clearTimeout(t); resolve(); } });
    });
    assert.match(err, /on_reboot=rename-restart: no toolstack daemon to keep the old domain; restarting/);
    child.kill("SIGTERM");
    assert.equal(await exited, 143, err);
    assert.match(err, /SIGTERM: destroying domain 'tiny'/);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});
