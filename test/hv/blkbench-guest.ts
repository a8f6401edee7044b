/**
 * A guest with bench/io/blkbench.c in its initramfs, driven through a console tap of the hypervisor process
 * (test/hv/io-fair.test.ts, bench/io/wakeups.ts).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeCpio } from "../../src/images/cpio.js";
import { framedCommand, framedOutput } from "../xen/run-machine.js";
import type { ConsoleTap } from "./hv-client.js";

export interface Bench { test: string; bytes: number; ops: number; secs: number }

/** The initramfs with /bin/blkbench appended (compiled here from bench/io/blkbench.c). */
export function initrdWithBlkbench(root: string, initrd: Buffer, dir: string): string {
  const bin = join(dir, "blkbench");
  execFileSync("aarch64-linux-gnu-gcc", ["-static", "-O2", "-s", "-o", bin, join(root, "bench/io/blkbench.c")]);
  const extra = writeCpio([{ type: "file", path: "bin/blkbench", data: readFileSync(bin), mode: 0o755 }]);
  const out = join(dir, "initrd");
  writeFileSync(out, Buffer.concat([initrd, Buffer.alloc((4 - (initrd.length % 4)) % 4), extra]));
  return out;
}

/** A guest's shell through its console tap: framed commands, their output. */
export class Shell {
  private n = 0;
  constructor(readonly name: string, private readonly tap: ConsoleTap) {}

  async sh(cmd: string, ms = 180_000): Promise<string> {
    const k = ++this.n + 3000, from = this.tap.out.length;
    this.tap.type(framedCommand(cmd, k));
    const deadline = Date.now() + ms;
    for (;;) {
      const o = framedOutput(this.tap.out.slice(from), k);
      if (o !== undefined) return o;
      if (Date.now() > deadline) throw new Error(`${this.name}: no end of '${cmd}' in ${ms / 1000} s; console:\n${this.tap.out.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** One blkbench run on `dev`; fails the test on a bad line (a stamp mismatch among them). */
  async bench(dev: string, args: string): Promise<Bench> {
    const text = await this.sh(`blkbench ${dev} ${args}`);
    const m = /BLKBENCH test=(\w+) bytes=(\d+) ops=(\d+) ns=(\d+) MBps=[\d.]+ iops=[\d.]+ ok=1/.exec(text);
    assert.ok(m, `${this.name}: blkbench ${dev} ${args}: ${text}`);
    return { test: m[1]!, bytes: Number(m[2]), ops: Number(m[3]), secs: Number(m[4]) / 1e9 };
  }
}

