/**
 * Code loaded by DMA (issue 10: compiled code is invalidated by back-end writes into guest pages). Boots the
 * stock kernel as a Xen DomU with a disk whose first page holds `mov w0, #2; ret` and whose next pages hold
 * test/xen/programs/dma_code.c, built static. The guest copies the program out and runs it: it calls
 * `mov w0, #1; ret` from an executable page 5,000 times (decoded, then compiled: past the compiler's threshold),
 * reads the disk's first page into that same page with O_DIRECT — blkback writes it through the grant, the guest
 * stores nothing there and does no cache maintenance — and calls it 5,000 times again. The new code must run, as
 * under QEMU: the same program under qemu-aarch64-static (reading the image file) is the oracle.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { XenStore } from "../../src/xenstore/index.js";
import { framedCommand, framedOutput, machineRunner } from "./run-machine.js";

const BOOT_MS = 9 * 60_000;
const ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../..");

test("code loaded by DMA from a disk runs as loaded (compiled code of the page is dropped), as under QEMU",
  { timeout: BOOT_MS + 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "xeno-dma-code-"));
    try {
      const prog = join(dir, "dma_code");
      execFileSync("aarch64-linux-gnu-gcc", ["-static", "-O2", "-o", prog, join(ROOT, "test/xen/programs/dma_code.c")]);
      const elf = readFileSync(prog);
      const page = Buffer.alloc(4096);
      page.writeUInt32LE(0x52800040, 0); // mov w0, #2
      page.writeUInt32LE(0xd65f03c0, 4); // ret
      const pages = Math.ceil(elf.length / 4096);
      const disk = Buffer.alloc(4096 * (1 + pages));
      page.copy(disk, 0);
      elf.copy(disk, 4096);
      const diskPath = join(dir, "disk.img");
      writeFileSync(diskPath, disk);
      const oracle = execFileSync("qemu-aarch64-static", [prog, diskPath, "0"], { encoding: "utf8" }).trim();
      assert.equal(oracle, "first=5000 second=10000 word=52800040", "qemu-aarch64-static runs the new code");

      const images = await ensureImages({ onProgress: (msg) => process.stderr.write(`# images: ${msg}\n`) });
      let out = "";
      const m = new Machine({
        memMiB: 256, vcpus: 1, xen: true, xenstore: new XenStore(), domid: 11, name: "xeno-dma-code",
        kernel: readFileSync(images.kernel), initrd: readFileSync(images.initrd), cmdline: "console=hvc0",
        consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
      });
      try {
        m.attachDisk({ path: diskPath, devid: 51712, vdev: "xvda", readOnly: true });
        const runUntil = machineRunner(m, () => out, Date.now() + BOOT_MS);
        await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
        let n = 0;
        const sh = async (cmd: string): Promise<string> => {
          const k = ++n + 2000, from = out.length;
          m.input(Buffer.from(framedCommand(cmd, k)));
          await runUntil(() => framedOutput(out.slice(from), k) !== undefined, `output of: ${cmd}`);
          return framedOutput(out.slice(from), k)!;
        };
        await sh("for i in $(seq 1 120); do [ -e /sys/block/xvda ] && break; sleep 1; done");
        const got = await sh(`dd if=/dev/xvda bs=4096 skip=1 count=${pages} 2>/dev/null | head -c ${elf.length} > /tmp/dma_code; ` +
          "chmod +x /tmp/dma_code; /tmp/dma_code /dev/xvda 0");
        const line = got.split("\n").find((l) => l.startsWith("first="));
        assert.equal(line?.trim(), oracle, `the guest's run:\n${got}`);
        const jit = m.board.jitStats();
        assert.ok(jit !== null && jit.blocks > 0, "the compiler was on");
        for (const b of m.xenPv!.blk) b.close();
      } finally {
        m.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
