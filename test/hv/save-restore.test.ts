/**
 * xl save / restore against the hypervisor process with the stock Debian kernel (one boot): a DomU with a
 * disk runs a counter on its console and keeps a file in a tmpfs;
 *  - `save -c` (a checkpoint) leaves it running: the counter goes on, the shell answers; a save that cannot
 *    write its file leaves it running; `save -p` leaves it paused;
 *  - `xeno save` (CLI → xenod → hypervisor) destroys it after writing the file; `xeno restore CONFIG FILE`
 *    brings it back (`xeno list` shows it by name) with its domid, its disk a copy at the path the config names
 *    (a config with other memory is refused first): the counter continues from where it was (not from 1), the
 *    tmpfs file is there, a disk write after the restore reaches the config's image, and the store answers
 *    the guest (its xenbus works);
 *  - hostile files (truncated, a flipped byte, a checkpoint of a domain that runs) are refused with a clear
 *    error and nothing is left running: `list` and the pool's free memory are as before;
 *  - `xeno migrate` (live, the default) with its transport cut mid-stream leaves the source running; then
 *    `xeno migrate --non-live` (paused for the whole stream) to a second hypervisor on this machine (`-s ''`,
 *    HOST the receiving command): the counter and the tmpfs go on there (test/hv/live-migrate.test.ts covers
 *    live migration: rounds, network, a dirtying guest).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import type { DomainInfo, HostInfo } from "../../src/hv/protocol.js";
import { ConsoleTap, HvClient, stopHv } from "./hv-client.js";
import { CLI, xeno } from "./xeno-cli.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/** Runs `xeno ARGS…` against the run directory (it starts xenod, which uses the running hypervisor). */
test("save -c keeps the domain running; save → restore continues its counter, tmpfs and disk; bad files refused",
  { timeout: 20 * 60_000 }, async () => {
    const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
    const dir = mkdtempSync(join(tmpdir(), "xeno-save-"));
    const disk = join(dir, "data.img");
    writeFileSync(disk, Buffer.alloc(8 << 20));
    const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "1024"], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    hv.stderr!.on("data", (d) => { log += d; });
    const sock = join(dir, "hv.sock");
    let c: HvClient | undefined;
    const taps: ConsoleTap[] = [];
    const dirs: string[] = [];
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
      c = await HvClient.connect(sock);
      const spec = { name: "saver", memMiB: 128, vcpus: 2, kernel: images.kernel, ramdisk: images.initrd, cmdline: "console=hvc0",
        xen: true, disks: [{ path: disk, devid: 51712, vdev: "xvda", readOnly: false }], vifs: [] };
      const { domid } = await c.ok<{ domid: number }>("create", { spec });
      let tap = await ConsoleTap.open(sock, domid);
      taps.push(tap);
      const t0 = Date.now();
      await tap.waitFor(new RegExp(GUEST_READY_MARKER), 0, 10 * 60_000, "guest ready");
      process.stderr.write(`# guest ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      await tap.run("mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo keep-me-$((6*7)) > /mnt/t/f && echo TMPFS-OK", /^TMPFS-OK\r?$/m);
      tap.type("(i=0; while :; do i=$((i+1)); echo CNT-$i; sleep 1; done) &\n");
      await tap.waitFor(/CNT-3\r?\n/, 0, 60_000, "counter at 3");
      const lastCount = (t: ConsoleTap): number => Math.max(0, ...[...t.out.matchAll(/CNT-(\d+)\r?\n/g)].map((m) => Number(m[1])));

      // Checkpoint: the domain runs on.
      const ckpt = join(dir, "ckpt.xeno");
      const r1 = await c.ok<{ bytes: number; pages: number; zeroPages: number; ms: number }>("save", { domid, path: ckpt, checkpoint: true });
      process.stderr.write(`# save -c: ${r1.bytes} bytes, ${r1.pages - r1.zeroPages}/${r1.pages} pages with data, ${r1.ms.toFixed(0)} ms\n`);
      assert.equal(statSync(ckpt).size, r1.bytes);
      let list = await c.ok<DomainInfo[]>("list");
      assert.ok(["running", "blocked"].includes(list.find((d) => d.domid === domid)!.state), "save -c leaves it running");
      const n1 = lastCount(tap);
      await tap.waitFor(new RegExp(`CNT-${n1 + 2}\\r?\\n`), 0, 30_000, "counter goes on after save -c");
      await tap.run("echo AFTER-CKPT-$((2+3))", /^AFTER-CKPT-5\r?$/m);

      // A save that cannot write its file: EIO, the domain runs on. `save -p`: it stays paused, then unpauses.
      const eio = await c.call("save", { domid, path: join(dir, "no-such-dir", "x.xeno") });
      assert.equal(eio.ok, false);
      assert.match(JSON.stringify(eio), /EIO.*cannot write.*is as it was/);
      assert.ok(["running", "blocked"].includes((await c.ok<DomainInfo[]>("list")).find((d) => d.domid === domid)!.state), "a failed save resumes it");
      await tap.run("echo AFTER-EIO-$((4+4))", /^AFTER-EIO-8\r?$/m);
      // A FIFO as the save file: refused at its open (never blocks, never written to or removed), the domain runs on.
      const fifo = join(dir, "save.fifo");
      execFileSync("mkfifo", [fifo]);
      const onFifo = await c.call("save", { domid, path: fifo });
      assert.equal(onFifo.ok, false);
      assert.match(JSON.stringify(onFifo), /EIO.*cannot write save file .*save\.fifo: is a FIFO.*is as it was/);
      assert.ok(lstatSync(fifo).isFIFO(), "the FIFO is left as it was");
      assert.ok(["running", "blocked"].includes((await c.ok<DomainInfo[]>("list")).find((d) => d.domid === domid)!.state), "a refused save resumes it");
      await c.ok("save", { domid, path: join(dir, "paused.xeno"), paused: true });
      assert.equal((await c.ok<DomainInfo[]>("list")).find((d) => d.domid === domid)!.state, "paused", "save -p leaves it paused");
      await c.ok("unpause", { domid });
      await tap.run("echo AFTER-P-$((5+5))", /^AFTER-P-10\r?$/m);

      // A checkpoint of a domain that still runs is refused (its domid and uuid are taken).
      const free0 = (await c.ok<HostInfo>("info")).freeMemoryMiB;
      const dup = await c.call("restore", { path: ckpt, name: "saver-copy" });
      assert.equal(dup.ok, false);
      assert.match(JSON.stringify(dup), /ESTATE.*in use/);

      // Save through the CLI and xenod (the domain is destroyed), then restore.
      const file = join(dir, "saver.xeno");
      const saveOut = await xeno(dir, ["save", "saver", file]);
      assert.equal(saveOut.code, 0, saveOut.err);
      process.stderr.write(`# $ xeno save saver ${file}\n${saveOut.err.replace(/^/gm, "#   ")}\n`);
      assert.match(saveOut.err, /^Saving to .* new xl format\nSaved domain 'saver' \(\d+\): [\d.]+ MiB file, \d+ of 32768 pages with data, \d+ ms; it is destroyed\n$/);
      const nSaved = lastCount(tap);
      process.stderr.write(`# counter at ${nSaved} when saved\n`);
      list = await c.ok<DomainInfo[]>("list");
      assert.equal(list.find((d) => d.name === "saver"), undefined, "save without -c destroys the domain");
      assert.doesNotMatch((await xeno(dir, ["list"])).out, /^saver /m);
      const freeSaved = (await c.ok<HostInfo>("info")).freeMemoryMiB;
      assert.ok(freeSaved > free0 + 100, `frames released: ${free0} → ${freeSaved} MiB free`);

      // Hostile files: refused, nothing left, no frames claimed.
      const good = readFileSync(file);
      const truncated = join(dir, "truncated.xeno");
      writeFileSync(truncated, good.subarray(0, good.length - 1000));
      const flipped = join(dir, "flipped.xeno");
      const fb = Buffer.from(good); fb[fb.length >> 1] ^= 0x10; writeFileSync(flipped, fb);
      for (const [p, code, re] of [[truncated, "EFORMAT", /truncated/], [flipped, "EFORMAT", /checksum|record|page|state/i],
        [join(dir, "missing.xeno"), "EIO", /cannot read/], [disk, "EFORMAT", /magic/]] as const) {
        const r = await c.call("restore", { path: p });
        assert.equal(r.ok, false, p);
        assert.equal((r as { error: { code: string } }).error.code, code, JSON.stringify(r));
        assert.match((r as { error: { message: string } }).error.message, re);
      }
      assert.equal((await c.ok<DomainInfo[]>("list")).length, 1, "nothing left running after refused restores");
      assert.equal((await c.ok<HostInfo>("info")).freeMemoryMiB, freeSaved, "no frames kept by refused restores");

      // Restore with a config (xl restore CONFIG FILE): the disk is a copy at another path. A config that does
      // not fit the saved domain (other memory) is refused first.
      const disk2 = join(dir, "data2.img");
      copyFileSync(disk, disk2);
      const cfg = (mem: number): string => `name = "saver"\ntype = "pvh"\nmemory = ${mem}\nvcpus = 2\nkernel = "${images.kernel}"\n` +
        `ramdisk = "${images.initrd}"\ncmdline = "console=hvc0"\ndisk = [ "format=raw, vdev=xvda, access=rw, target=${disk2}" ]\n`;
      writeFileSync(join(dir, "bad.cfg"), cfg(256));
      writeFileSync(join(dir, "saver.cfg"), cfg(128));
      const bad = await xeno(dir, ["restore", join(dir, "bad.cfg"), file]);
      assert.equal(bad.code, 1, bad.err);
      assert.match(bad.err, /does not fit the saved domain: memory 256 MiB, saved 128 MiB/);
      assert.equal((await c.ok<DomainInfo[]>("list")).length, 1, "nothing left after a refused config");
      const restoreOut = await xeno(dir, ["restore", "-d", join(dir, "saver.cfg"), file]);
      assert.equal(restoreOut.code, 0, restoreOut.err);
      process.stderr.write(`# $ xeno restore -d saver.cfg ${file}\n${restoreOut.err.replace(/^/gm, "#   ")}\n`);
      assert.match(restoreOut.err, new RegExp(`Restored domain ${domid} from `), "restored with its domid");
      const listOut = (await xeno(dir, ["list"])).out;
      process.stderr.write(`# $ xeno list\n${listOut.replace(/^/gm, "#   ")}\n`);
      assert.match(listOut, new RegExp(`^saver {35} +${domid} +\\d+ +2 +`, "m"), "xeno list shows it by name");
      list = await c.ok<DomainInfo[]>("list");
      const row = list.find((d) => d.name === "saver");
      assert.ok(row !== undefined && row.domid === domid, JSON.stringify(list));
      tap.close();
      tap = await ConsoleTap.open(sock, domid);
      taps.push(tap);
      // The counter goes on from where it was.
      const m = await tap.waitFor(/CNT-(\d+)\r?\n/, 0, 60_000, "counter after restore");
      const first = Number(m[1]);
      assert.ok(first > nSaved - 1 && first <= nSaved + 3, `counter continues: saved at ${nSaved}, first after restore ${first}`);
      await tap.waitFor(new RegExp(`CNT-${first + 2}\\r?\\n`), 0, 30_000, "counter runs after restore");
      await tap.run("cat /mnt/t/f", /^keep-me-42\r?$/m);
      await tap.run("echo after-restore | dd of=/dev/xvda bs=512 conv=sync,fsync 2>/dev/null; echo DISK-DONE", /^DISK-DONE\r?$/m);
      assert.equal(readFileSync(disk2).subarray(0, 13).toString(), "after-restore", "the disk write after the restore reached the config's image");
      assert.notEqual(readFileSync(disk).subarray(0, 13).toString(), "after-restore", "not the saved config's image");
      // xenbus answers: the guest reads its own name from the store.
      await tap.run("cat /sys/hypervisor/uuid; echo XB-OK", /^XB-OK\r?$/m);
      assert.match(tap.out, new RegExp(row.uuid));
      assert.doesNotMatch(tap.out, /Kernel panic|kernel BUG|Oops|xenbus.*timeout/i);

      // Migration to a second hypervisor on this machine, through `-s ''` (HOST is the command).
      // First a transport cut mid-stream: the source runs on and answers.
      const cut = await xeno(dir, ["migrate", "-s", "", "saver",
        `sh -c 'printf "xl migration receiver ready, send binary domain data.\\n"; head -c 100000 >/dev/null'`]);
      process.stderr.write(`# $ xeno migrate (transport cut after 100000 bytes)\n${cut.err.replace(/^/gm, "#   ")}\n`);
      assert.equal(cut.code, 1, cut.err);
      assert.match(cut.err, /Migration failed, resuming at sender\./);
      assert.ok(["running", "blocked"].includes((await c.ok<DomainInfo[]>("list")).find((d) => d.name === "saver")!.state));
      await tap.run("echo STILL-HERE-$((3*3))", /^STILL-HERE-9\r?$/m);
      const dirB = mkdtempSync(join(tmpdir(), "xeno-save-b-"));
      dirs.push(dirB);
      const nBefore = lastCount(tap);
      const mig = await xeno(dir, ["migrate", "--non-live", "-s", "", "saver", `XENO_RUN_DIR=${dirB} ${process.execPath} ${CLI} migrate-receive`]);
      process.stderr.write(`# $ xeno migrate --non-live -s '' saver 'XENO_RUN_DIR=B xeno migrate-receive'\n${mig.err.replace(/^/gm, "#   ")}\n`);
      assert.equal(mig.code, 0, mig.err);
      assert.match(mig.err, /not live \(not asked\): all memory sent paused/);
      assert.doesNotMatch(mig.err, /round \d+:/);
      assert.match(mig.err, /migration target: Got permission, starting domain\.[\s\S]*Migration successful\./);
      assert.equal((await c.ok<DomainInfo[]>("list")).find((d) => d.name.startsWith("saver")), undefined, "the source's copy is destroyed");
      const listB = (await xeno(dirB, ["list"])).out;
      assert.match(listB, new RegExp(`^saver {35} +${domid} `, "m"), listB);
      const tapB = await ConsoleTap.open(join(dirB, "hv.sock"), domid);
      taps.push(tapB);
      const mB = await tapB.waitFor(/CNT-(\d+)\r?\n/, 0, 60_000, "counter after the migration");
      assert.ok(Number(mB[1]) >= nBefore, `counter continues on the destination: ${nBefore} → ${mB[1]}`);
      await tapB.run("cat /mnt/t/f", /^keep-me-42\r?$/m);
      assert.equal((await xeno(dirB, ["destroy", "saver"])).code, 0);
    } catch (e) {
      process.stderr.write(`# hypervisor log:\n${log.slice(-4000)}\n`);
      throw e;
    } finally {
      for (const t of taps) t.close();
      c?.close();
      for (const x of [dir, ...dirs]) {
        for (const pid of ["xenod.pid", ...(x === dir ? [] : ["hv.pid"])]) {
          try { process.kill(Number(readFileSync(join(x, pid), "utf8")), "SIGTERM"); } catch { /* not started */ }
        }
      }
      await stopHv(hv, dir);
      for (const x of dirs) rmSync(x, { recursive: true, force: true });
    }
  });
