/**
 * xenod supervises the hypervisor (issue 14, F4): with two real domains (Debian's kernel, booting; they need
 * not finish), one with on_crash="restart" and one with on_crash="destroy", `kill -9` of xeno-hv. Within 30 s
 * xenod has started a new hypervisor, the first domain runs again under a new domid with the same uuid, the
 * second is gone, and xenod's log names both. A clean stop (SIGTERM) of that hypervisor then is not followed by
 * another start. The hypervisor xenod starts has glibc's malloc settings in its environment (src/hv/malloc-env.ts).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { DomainInfo } from "../../src/hv/protocol.js";
import { ensureImages } from "../../src/images/index.js";
import { HV_MALLOC_ENV } from "../../src/hv/malloc-env.js";
import { connectXenod, XENOD_MAIN, type XenodClient } from "../../src/toolstack/client.js";

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

test("kill -9 of the hypervisor: xenod starts a new one, on_crash=restart re-creates, on_crash=destroy does not", { timeout: 300_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const dir = mkdtempSync(join(tmpdir(), "xeno-hvrestart-"));
  const xenod: ChildProcess = spawn(process.execPath, [XENOD_MAIN, "--run-dir", dir, "--foreground"], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  xenod.stderr!.on("data", (b: Buffer) => { log += b.toString(); });
  let c: XenodClient | undefined;
  try {
    c = await until("xenod up", async () => { try { return await connectXenod({ runDir: dir }); } catch { return undefined; } }, 30_000);
    const spec = (name: string, onCrash: "restart" | "destroy") => ({
      name, memMiB: 64, vcpus: 1, kernel: images.kernel, ramdisk: images.initrd, cmdline: "console=hvc0", xen: true,
      disks: [], vifs: [], toolstack: { onPoweroff: "destroy" as const, onReboot: "restart" as const, onCrash },
    });
    const r = await c.request("create", { spec: spec("keeper", "restart") });
    const d = await c.request("create", { spec: spec("goner", "destroy") });
    const before = await c.request("list");
    const keeperUuid = before.find((x) => x.name === "keeper")!.uuid;
    const hvPid = Number(readFileSync(join(dir, "hv.pid"), "utf8"));
    // xenod starts the hypervisor with glibc's malloc settings (src/hv/malloc-env.ts): they are in its environment.
    const environ = readFileSync(`/proc/${hvPid}/environ`, "latin1").split("\0");
    for (const [k, v] of Object.entries(HV_MALLOC_ENV)) {
      if (process.env.XENO_MALLOC_ENV !== "0") assert.ok(environ.includes(`${k}=${process.env[k] ?? v}`), `the hypervisor's environment has ${k}=${process.env[k] ?? v}`);
    }
    await new Promise((res) => setTimeout(res, 500)); // xenod's listing catches up with the creates

    const t0 = Date.now();
    process.kill(hvPid, "SIGKILL");
    const cl = c;
    const after = await until("keeper running again", async () => {
      let l: DomainInfo[];
      try { l = await cl.request("list"); } catch { return undefined; } // EHVDOWN while the new hypervisor starts
      const k = l.find((x) => x.name === "keeper");
      return k !== undefined && (k.state === "running" || k.state === "blocked") ? l : undefined;
    }, 30_000);
    process.stderr.write(`# keeper running again ${((Date.now() - t0) / 1000).toFixed(1)} s after kill -9\n`);
    const keeper = after.find((x) => x.name === "keeper")!;
    assert.notEqual(keeper.domid, r.domid, "a new domid");
    assert.equal(keeper.uuid, keeperUuid, "the same uuid (as xl's restart)");
    assert.equal(after.find((x) => x.name === "goner"), undefined, "on_crash=destroy: not created again");
    const newPid = Number(readFileSync(join(dir, "hv.pid"), "utf8"));
    assert.notEqual(newPid, hvPid);
    await until("xenod's log of the restart", () => /created again as id/.test(log) || undefined, 5000);
    await new Promise((res) => setTimeout(res, 300));
    assert.match(log, new RegExp(`the hypervisor \\(pid ${hvPid}\\) is gone without a clean stop`));
    assert.match(log, new RegExp(`the hypervisor lost 2 domains .*: (keeper \\(id ${r.domid}, on_crash=restart\\), goner \\(id ${d.domid}, on_crash=destroy\\)|goner \\(id ${d.domid}, on_crash=destroy\\), keeper \\(id ${r.domid}, on_crash=restart\\))`));
    assert.match(log, new RegExp(`keeper \\(id ${r.domid}\\) lost with the hypervisor: on_crash=restart: created again as id ${keeper.domid}`));
    assert.match(log, new RegExp(`goner \\(id ${d.domid}\\) lost with the hypervisor: on_crash=destroy: not created again`));

    // Every line either daemon wrote, from any thread, has time, level, component and domain (src/common/log.ts).
    const hvLog = readFileSync(join(dir, "hv.log"), "utf8");
    const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info |warn |error) \S+ +(-|d\d+) +\S/;
    for (const [name, text] of [["hv.log", hvLog], ["xenod's log", log]] as const) {
      const bad = text.split("\n").filter((l) => l !== "" && !LINE.test(l));
      assert.deepEqual(bad, [], `${name}: lines without the structured fields`);
    }
    assert.match(hvLog, new RegExp(`^\\S+ info  hv +d${keeper.domid} created 'keeper'`, "m"), "a domain's line names its domain");

    // A clean stop (SIGTERM destroys every domain and removes hv.pid) is not followed by a restart.
    process.kill(newPid, "SIGTERM");
    await until("hypervisor stopped", () => !alive(newPid) || undefined, 20_000);
    await new Promise((res) => setTimeout(res, 3000));
    assert.ok(!existsSync(join(dir, "hv.pid")), "no new hypervisor after a clean stop");
    assert.equal((log.match(/is gone without a clean stop/g) ?? []).length, 1);
  } finally {
    c?.close();
    xenod.kill("SIGTERM");
    try { process.kill(Number(readFileSync(join(dir, "hv.pid"), "utf8")), "SIGTERM"); } catch { /* gone */ }
    await new Promise((res) => setTimeout(res, 1000));
    rmSync(dir, { recursive: true, force: true });
  }
});
