/**
 * A booted guest at its shell, for tests that need only that: the first test of a suite run to ask boots the
 * stock Debian kernel and initramfs to the ready marker and saves a checkpoint of it (`save` with checkpoint:
 * the domain runs on); every later one restores that file instead of booting (a restore takes well under a
 * second, a boot 10–60 s on this host). The file is in $TMPDIR/xeno-test-snapshots, shared by the suite's test
 * processes (a lock directory serialises the first boot), keyed by the spec (memory, vCPUs, cmdline), the image
 * files (path, size, mtime) and a hash of every file of this build's dist/src: a change to the code or the
 * images boots afresh, so a test never runs on a guest another build produced. A file the hypervisor refuses
 * as malformed or of another version (EFORMAT) is booted again and replaced; any other refusal fails the test.
 * XENO_TEST_BOOT=1 boots every time (and writes no file).
 *
 * Several guests of one spec (shellGuests: a test's busy domains) are slots 0, 1, …, each a snapshot of its own:
 * a restore keeps the saved domid (the guest's XenStore paths name it), so slot k is always the (k+1)-th domain
 * of a fresh hypervisor — booted so, restored so — and its saved domid k+1 is free when it is restored.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GUEST_READY_MARKER } from "../../src/images/index.js";
import { ConsoleTap, type HvClient } from "./hv-client.js";

const DIST_SRC = fileURLToPath(new URL("../../src", import.meta.url));
const CACHE = join(tmpdir(), "xeno-test-snapshots");
/**
 * A lock whose owner process is gone (or, without its pid, older than this) was left by a killed test: taken
 * over. Files unused this long are removed.
 */
const STALE_LOCK_MS = 15 * 60_000, OLD_FILE_MS = 24 * 3600_000;

/** Whether the lock directory `lock` was left behind: its owner's pid no longer runs (or it is old and has none). */
function staleLock(lock: string): boolean {
  let pid = NaN;
  try { pid = Number(readFileSync(join(lock, "pid"), "utf8")); } catch { /* not written yet, or gone */ }
  if (Number.isInteger(pid) && pid > 0) {
    try { process.kill(pid, 0); return false; } catch (e) { return (e as NodeJS.ErrnoException).code === "ESRCH"; }
  }
  try { return Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS; } catch { return false; }
}

export interface ShellGuestSpec {
  name: string;
  memMiB: number;
  vcpus: number;
  kernel: string;
  ramdisk: string;
  cmdline: string;
  /** Which of a test's guests of this spec (shellGuests); 0 (the default) is the one hotplug and sched-vcpus share. */
  slot?: number;
}

export interface ShellGuest {
  domid: number;
  /** A console tap on the domain (its output from the restore on, or the whole boot). */
  tap: ConsoleTap;
  /** Restored from the suite's snapshot (false: booted here). */
  restored: boolean;
  /** From the call to the shell answering. */
  ms: number;
}

let buildHash: string | null = null;

/** SHA-256 over the paths and contents of every file under dist/src (this build's code). */
function distHash(): string {
  if (buildHash !== null) return buildHash;
  const h = createHash("sha256");
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) { h.update(p.slice(DIST_SRC.length)); h.update(readFileSync(p)); }
    }
  };
  walk(DIST_SRC);
  return (buildHash = h.digest("hex"));
}

function snapshotKey(s: ShellGuestSpec): string {
  const img = (p: string): string => { const st = statSync(p); return `${p}:${st.size}:${st.mtimeMs}`; };
  const key: unknown[] = [s.memMiB, s.vcpus, s.cmdline, img(s.kernel), img(s.ramdisk), distHash()];
  if ((s.slot ?? 0) !== 0) key.push(`slot ${s.slot}`); // slot 0's key as before slots existed
  return createHash("sha256").update(JSON.stringify(key)).digest("hex").slice(0, 32);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Running domains named `names` of `spec` at their shells, slots 0, 1, … (see the file comment), in a hypervisor
 * that has no other domain yet. When every slot has a snapshot they are restored together; otherwise one after
 * the other, in slot order, so each gets the domid its slot's snapshot has (or will have) — and a restored one is
 * paused until the last is at its shell: a guest just restored is busy for a while (its decode cache refills),
 * and beside a booting one in its thread it made the balancer move domains while the others booted, which the
 * balance-guests test then took for the move it waits for (it failed so once, 55/104/54 % shares).
 */
export async function shellGuests(c: HvClient, sock: string, spec: Omit<ShellGuestSpec, "name" | "slot">, names: readonly string[]): Promise<ShellGuest[]> {
  const specs = names.map((name, slot) => ({ ...spec, name, slot }));
  const all = process.env.XENO_TEST_BOOT !== "1" && specs.every((s) => existsSync(join(CACHE, `${snapshotKey(s)}.xeno`)));
  if (all) return Promise.all(specs.map((s) => shellGuest(c, sock, s)));
  const out: ShellGuest[] = [];
  for (const s of specs) {
    const g = await shellGuest(c, sock, s);
    if (g.restored) await c.ok("pause", { domid: g.domid });
    out.push(g);
  }
  for (const g of out) if (g.restored) await c.ok("unpause", { domid: g.domid });
  return out;
}

/**
 * A running domain `spec.name` at its shell in the hypervisor `c` (control socket `sock`): restored from the
 * suite's snapshot of this spec when there is one, else booted (and, if this call booted first, saved for the
 * next test). The shell has answered a command when it returns.
 */
export async function shellGuest(c: HvClient, sock: string, spec: ShellGuestSpec): Promise<ShellGuest> {
  const t0 = performance.now();
  if (process.env.XENO_TEST_BOOT === "1") return boot(c, sock, spec, null, t0);
  mkdirSync(CACHE, { recursive: true, mode: 0o700 });
  const key = snapshotKey(spec);
  const file = join(CACHE, `${key}.xeno`), lock = join(CACHE, `${key}.lock`);
  for (;;) {
    if (existsSync(file)) {
      const r = await c.call("restore", { path: file, name: spec.name });
      if (r.ok) {
        const { domid, timing } = r.result as { domid: number; timing: { runningMs?: number } };
        // The answer comes once the restored domain runs (its first slice began: Hypervisor.restore).
        if (typeof timing.runningMs !== "number" || !Number.isFinite(timing.runningMs) || timing.runningMs <= 0) {
          throw new Error(`restore of the suite's snapshot ${file} answered without the domain running (runningMs ${String(timing.runningMs)})`);
        }
        const tap = await ConsoleTap.open(sock, domid, false);
        await tap.run("echo SHELL-$((20+1))", /^SHELL-21\r?$/m, 60_000);
        return { domid, tap, restored: true, ms: performance.now() - t0 };
      }
      if (r.error.code !== "EFORMAT") throw new Error(`restore of the suite's snapshot ${file}: ${r.error.code}: ${r.error.message}`);
      process.stderr.write(`# shell-guest: ${file} refused (${r.error.message.slice(0, 200)}); booting again\n`);
      rmSync(file, { force: true });
    }
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
    } catch {
      // Another test process is booting this spec: wait for its file, or for its lock to go (or its owner to die).
      if (staleLock(lock)) rmSync(lock, { recursive: true, force: true });
      else await sleep(500);
      continue;
    }
    try {
      if (existsSync(file)) continue; // written between the look above and the lock
      for (const f of readdirSync(CACHE)) {
        const p = join(CACHE, f);
        try { if (f.endsWith(".xeno") && Date.now() - statSync(p).mtimeMs > OLD_FILE_MS) rmSync(p, { force: true }); } catch { /* gone */ }
      }
      return await boot(c, sock, spec, file, t0);
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

/** Boots `spec` to the ready marker; with `file`, saves a checkpoint there (written aside, then renamed). */
async function boot(c: HvClient, sock: string, spec: ShellGuestSpec, file: string | null, t0: number): Promise<ShellGuest> {
  const { slot: _slot, ...domain } = spec;
  const { domid } = await c.ok<{ domid: number }>("create", { spec: { ...domain, xen: true, disks: [], vifs: [] } });
  const tap = await ConsoleTap.open(sock, domid);
  await tap.waitFor(new RegExp(GUEST_READY_MARKER), 0, 10 * 60_000, "ready");
  await tap.run("echo SHELL-$((20+1))", /^SHELL-21\r?$/m, 60_000);
  if (file !== null) {
    const part = `${file}.${process.pid}.part`;
    await c.ok("save", { domid, path: part, checkpoint: true });
    renameSync(part, file);
  }
  return { domid, tap, restored: false, ms: performance.now() - t0 };
}
