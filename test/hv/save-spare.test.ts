/**
 * Restores into the spare memory (src/hv/save-spare-memory.ts) with the stock Debian kernel (one boot): the
 * memory of a domain destroyed after its save is taken by the next restore of its size, and what that restore
 * sees is exactly its file — no page of the memory's previous domain shows through:
 *  - boot, save A (destroyed: its memory becomes the spare), restore A (into the spare), the guest answers and
 *    writes 8 MiB of random bytes into a tmpfs (pages A has as zero), save B (destroyed: the spare now holds
 *    B's pages);
 *  - restore A again, paused (into the spare: B's 8 MiB must be gone), checkpoint it paused as C: every page
 *    zero in A is zero in C (thousands of them had data in B), the guest then runs and answers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { readSaveFile } from "../../src/hv/save-file.js";
import type { HostInfo, RestoreTimingInfo } from "../../src/hv/protocol.js";
import { ConsoleTap, HvClient, stopHv } from "./hv-client.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const PAGE = 4096;

/** The RAM of a save file, page by page: whether each page is zero (the memory as a restore fills it). */
async function zeroMap(file: string): Promise<Uint8Array> {
  const f = await readSaveFile(file, (cfg) => (cfg.memMiB as number) * 256 + 256);
  const u32 = new Uint32Array(f.memory.buffer);
  const pages = ((f.config.memMiB as number) * 256) + 256;
  const zero = new Uint8Array(pages);
  for (let p = 0; p < pages; p++) {
    let or = 0;
    for (let i = p * (PAGE / 4), e = i + PAGE / 4; i < e; i++) or |= u32[i]!;
    zero[p] = or === 0 ? 1 : 0;
  }
  return zero;
}

test("a restore into the spare memory sees its file only: no page of the previous domain shows through",
  { timeout: 15 * 60_000 }, async () => {
    const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
    const dir = mkdtempSync(join(tmpdir(), "xeno-spare-"));
    const hv = spawn(process.execPath, [join(ROOT, "dist/src/hv/main.js"), "--run-dir", dir, "--memory", "512"],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, XENO_SPARE_MEMORY: "1" } });
    let log = "";
    hv.stderr!.on("data", (d) => { log += d; });
    const sock = join(dir, "hv.sock");
    let c: HvClient | undefined;
    const taps: ConsoleTap[] = [];
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
      c = await HvClient.connect(sock);
      const spec = { name: "spare", memMiB: 128, vcpus: 1, kernel: images.kernel, ramdisk: images.initrd, cmdline: "console=hvc0", xen: true, disks: [], vifs: [] };
      const { domid } = await c.ok<{ domid: number }>("create", { spec });
      let tap = await ConsoleTap.open(sock, domid);
      taps.push(tap);
      await tap.waitFor(new RegExp(GUEST_READY_MARKER), 0, 10 * 60_000, "guest ready");
      await tap.run("mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo TMPFS-OK", /^TMPFS-OK\r?$/m);

      const fileA = join(dir, "a.xeno"), fileB = join(dir, "b.xeno"), fileC = join(dir, "c.xeno");
      await c.ok("save", { domid, path: fileA });
      const info = await c.ok<HostInfo>("info");
      assert.ok((info.spareMemoryBytes ?? 0) > 128 << 20, `the saved domain's memory is the spare: ${JSON.stringify(info)}`);
      const r1 = await c.ok<{ timing: RestoreTimingInfo }>("restore", { path: fileA });
      assert.equal(r1.timing.spareMemory, true, "restored into the spare");
      tap.close();
      tap = await ConsoleTap.open(sock, domid);
      taps.push(tap);
      await tap.run("head -c 8388608 /dev/urandom > /mnt/t/r && echo RAND-$((40+2))", /^RAND-42\r?$/m);
      await c.ok("save", { domid, path: fileB });

      // A again, paused, into the memory that held B; checkpointed as it is (still paused) into C.
      const r2 = await c.ok<{ timing: RestoreTimingInfo }>("restore", { path: fileA, paused: true });
      assert.equal(r2.timing.spareMemory, true, "restored into the spare again");
      await c.ok("save", { domid, path: fileC, paused: true });
      const [a, b, cz] = await Promise.all([zeroMap(fileA), zeroMap(fileB), zeroMap(fileC)]);
      let exposed = 0, leaked = 0;
      for (let p = 0; p < a.length; p++) {
        if (a[p] === 1 && b[p] === 0) exposed++;
        if (a[p] === 1 && cz[p] === 0) leaked++;
      }
      process.stderr.write(`# pages zero in A with data in B: ${exposed}; of those (or any zero in A) with data in C: ${leaked}\n`);
      assert.ok(exposed >= 1500, `B has data where A has none (the 8 MiB of random bytes): ${exposed} pages`);
      assert.equal(leaked, 0, "every page zero in A is zero in the restored copy");

      await c.ok("unpause", { domid });
      tap.close();
      tap = await ConsoleTap.open(sock, domid);
      taps.push(tap);
      await tap.run("ls /mnt/t; echo AFTER-$((3*7))", /^AFTER-21\r?$/m);
      assert.doesNotMatch(tap.out, /Kernel panic|kernel BUG|Oops/i);
      assert.doesNotMatch(tap.out.slice(tap.out.lastIndexOf("ls /mnt/t")), /^r\r?$/m, "A's tmpfs has no random file (it came after A)");
      await c.ok("destroy", { domid });
    } catch (e) {
      process.stderr.write(`# hypervisor log:\n${log.slice(-4000)}\n`);
      throw e;
    } finally {
      for (const t of taps) t.close();
      c?.close();
      await stopHv(hv, dir);
    }
  });
