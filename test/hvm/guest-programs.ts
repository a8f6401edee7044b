/**
 * Programs for HVM guests in the integration tests (test/hvm/disk-boot, test/hvm/hvm-net): the hostile device
 * driver test/hvm/programs/virtio_hostile.c built static for arm64, and a raw disk carrying such files, from which
 * the guest's shell copies them (Xeno's initramfs has no network file transfer and no 9p).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../machine/cli-domain.js";

/** test/hvm/programs/virtio_hostile.c built static for the guest, in `dir`. */
export function hostileProgram(dir: string): Uint8Array {
  const prog = join(dir, "virtio_hostile");
  execFileSync("aarch64-linux-gnu-gcc", ["-static", "-O2", "-o", prog, join(ROOT, "test/hvm/programs/virtio_hostile.c")]);
  return readFileSync(prog);
}

/**
 * A raw disk holding `files` at 4 KiB-aligned offsets, and `fetch(name, to)`: the guest shell command copying one
 * from the disk (the last virtio disk, /dev/vdX given by `dev`) to a file.
 */
export function programDisk(dir: string, files: Record<string, Uint8Array>, dev: string): { disk: string; fetch: (name: string, to: string) => string } {
  const parts: Uint8Array[] = [], at = new Map<string, { block: number; bytes: number }>();
  let block = 0;
  for (const [name, b] of Object.entries(files)) {
    const blocks = Math.ceil(b.length / 4096);
    at.set(name, { block, bytes: b.length });
    parts.push(b, new Uint8Array(blocks * 4096 - b.length));
    block += blocks;
  }
  const disk = join(dir, "prog.img");
  writeFileSync(disk, Buffer.concat(parts));
  return {
    disk,
    fetch: (name, to) => {
      const f = at.get(name)!;
      return `dd if=${dev} bs=4096 skip=${f.block} count=${Math.ceil(f.bytes / 4096)} 2>/dev/null | head -c ${f.bytes} > ${to}`;
    },
  };
}
