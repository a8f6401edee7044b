/**
 * bench/storage/qcow2: what the qcow2 mapping (src/storage/qcow2.ts) costs against a raw file on the host, without
 * a guest: the same operations through RawImage and Qcow2Image, alternated, fresh images each run, median of N.
 *
 *   node dist/bench/storage/qcow2.js [--runs N] [--mib MiB]
 *
 *   seqwrite  MiB in 64 KiB writes from offset 0 into an empty image (qcow2: every cluster allocated here)
 *   seqread   the same range back in 64 KiB reads
 *   rewrite   the same range again (qcow2: clusters exist, written in place)
 *   randread  8192 reads of 4 KiB at random 4 KiB offsets in the range (L2 lookups)
 * then one fdatasync (inside seqwrite's timing). The page cache is not dropped: this measures the code paths, not
 * the disk. qemu-img (qemu-utils) makes the qcow2 images (64 KiB clusters, the default).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RawImage, type BlockImage } from "../../src/storage/block-image.js";
import { Qcow2Image } from "../../src/storage/qcow2.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, mib: { type: "string", default: "128" } } });
const runs = Number(values.runs), mib = Number(values.mib);
const bytes = mib * 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), "xeno-bench-qcow2-"));

function fresh(kind: "raw" | "qcow2", k: number): BlockImage {
  const path = join(dir, `${kind}-${k}.img`);
  if (kind === "raw") { writeFileSync(path, ""); truncateSync(path, bytes); return RawImage.open(path, false); }
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", path, String(bytes)]);
  return Qcow2Image.open(path, false);
}

function measure(img: BlockImage): Record<string, number> {
  const buf = new Uint8Array(65536).fill(0x5a), small = new Uint8Array(4096);
  const t = (f: () => void): number => { const t0 = performance.now(); f(); return performance.now() - t0; };
  const r: Record<string, number> = {};
  r.seqwrite = t(() => { for (let p = 0; p < bytes; p += buf.length) img.write(buf, 0, buf.length, p); img.flush(); });
  r.seqread = t(() => { for (let p = 0; p < bytes; p += buf.length) img.read(buf, 0, buf.length, p); });
  r.rewrite = t(() => { for (let p = 0; p < bytes; p += buf.length) img.write(buf, 0, buf.length, p); });
  let x = 12345;
  r.randread = t(() => {
    for (let i = 0; i < 8192; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; img.read(small, 0, 4096, (x % (bytes / 4096)) * 4096); }
  });
  return r;
}

const results: Record<string, Record<string, number[]>> = { raw: {}, qcow2: {} };
try {
  for (let k = 0; k < runs; k++) {
    for (const kind of (k % 2 === 0 ? ["raw", "qcow2"] : ["qcow2", "raw"]) as ("raw" | "qcow2")[]) {
      const img = fresh(kind, k);
      try {
        for (const [name, ms] of Object.entries(measure(img))) (results[kind]![name] ??= []).push(ms);
      } finally { img.close(); rmSync(join(dir, `${kind}-${k}.img`)); }
    }
  }
} finally { rmSync(dir, { recursive: true, force: true }); }

const median = (a: number[]): number => { const s = [...a].sort((p, q) => p - q); return s[Math.floor(s.length / 2)]!; };
console.log(`bench/storage/qcow2: ${mib} MiB, ${runs} runs alternated, medians (MB/s; randread in reads/s)`);
console.log("test      raw        qcow2      qcow2/raw");
for (const name of ["seqwrite", "seqread", "rewrite", "randread"]) {
  const rate = (ms: number): number => (name === "randread" ? 8192 / (ms / 1000) : bytes / 1e6 / (ms / 1000));
  const a = rate(median(results.raw![name]!)), b = rate(median(results.qcow2![name]!));
  console.log(`${name.padEnd(9)} ${a.toFixed(0).padStart(9)}  ${b.toFixed(0).padStart(9)}  ${(b / a).toFixed(2).padStart(9)}`);
}
