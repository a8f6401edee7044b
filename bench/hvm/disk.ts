/**
 * bench/hvm/disk: throughput on an HVM guest's emulated disk, Xeno's virtio-blk on PCIe vs QEMU's virtio-blk-pci
 * (TCG, `-M virt -cpu cortex-a72`), raw and qcow2 images, sequential and random. With --nvme the two data disks
 * are NVMe controllers instead on both sides (Xeno's vdev=nvme1/nvme2, QEMU's `-device nvme` with those serials;
 * the guest finds each namespace by its controller's serial), the ESP and the program disk staying virtio-blk.
 * Each side boots the same ESP built
 * with Debian's GRUB tools (src/images/uefi-esp.ts) to Debian's kernel and its initramfs's shell, with a raw and a
 * qcow2 data disk (fresh, MiB of zeros / an empty qcow2, per run) and a disk holding bench/hvm/randio.c (built
 * static with aarch64-linux-gnu-gcc), then in the guest, per format:
 *   write:        dd if=/dev/zero of=/dev/vdX bs=1M count=N conv=fsync
 *   read:         echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vdX of=/dev/null bs=1M count=N
 *   rand write:   randio /dev/vdX write COUNT N   (4 KiB O_DIRECT pwrites at seeded random offsets in the first
 *                 N MiB, one at a time, then fdatasync; the qcow2 clusters exist already: the sequential write
 *                 allocated them)
 *   rand read:    randio /dev/vdX read COUNT N
 * QEMU also gets `-device virtio-rng-pci,disable-legacy=on`, the entropy device Xeno's HVM domains have by default.
 * dd is timed by the guest's clock (/proc/uptime before and after, 10 ms ticks), randio by CLOCK_MONOTONIC in the
 * guest. Sides alternate, median of runs.
 *
 *   node dist/bench/hvm/disk.js [--runs N] [--mib N] [--count N] [--nvme]
 */
import { spawn, execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { defaultCacheDir, ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { ensureHostTools } from "../../src/images/host-packages.js";
import { buildGrubEsp, ensureGrubArm64Efi, ESP_TOOLS } from "../../src/images/uefi-esp.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const CODE = "/usr/share/AAVMF/AAVMF_CODE.fd", VARS = "/usr/share/AAVMF/AAVMF_VARS.fd";
const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, mib: { type: "string", default: "64" }, count: { type: "string", default: "2000" }, nvme: { type: "boolean", default: false } } });
const nvme = values.nvme === true;
const runs = Number(values.runs), mib = Number(values.mib), count = Number(values.count);
const dir = mkdtempSync(join(tmpdir(), "xeno-bench-hvm-disk-"));
const plain = (s: string): string => s.replace(/\x1b\[[0-9;=?]*[a-zA-Z]/g, "");

ensureHostTools(ESP_TOOLS, "bench/hvm/disk", (l) => console.log(l));
const images = await ensureImages({ onProgress: (m) => console.log(m) });
const esp = join(dir, "esp.img"), prog = join(dir, "randio"), progDisk = join(dir, "randio.img");
// The random-I/O program, static, on a disk of its own (the guest's vdd), padded to whole 4 KiB blocks.
execFileSync("aarch64-linux-gnu-gcc", ["-static", "-O2", "-o", prog, join(ROOT, "bench", "hvm", "randio.c")]);
const elf = readFileSync(prog);
writeFileSync(progDisk, Buffer.concat([elf, Buffer.alloc(4096 - (elf.length % 4096))]));
await buildGrubEsp({ out: esp, grubModules: await ensureGrubArm64Efi(defaultCacheDir(), (m) => console.log(m)), kernel: images.kernel,
  initrd: images.initrd, cmdline: "console=ttyAMA0 quiet" });

type Result = Record<string, number>; // "raw write" → MB/s, "raw rand read" → IOPS …

/** Boots `cmd args`, runs the dd commands on its serial console, returns MB/s per format and direction. */
function measure(cmd: string, args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "", step = -1, started = false;
    const res: Result = {};
    // [result name ("" for setup), command, timed by randio]
    const steps: [string, string, boolean][] = [[
      "", `dd if=/dev/${nvme ? "vdb" : "vdd"} bs=4096 2>/dev/null | head -c ${elf.length} > /tmp/randio; chmod +x /tmp/randio`, false]];
    // NVMe: /dev/nvmeXn1 by the controller's serial (the driver probes asynchronously: X is not the slot order).
    if (nvme) steps.push(["", "for c in /sys/class/nvme/nvme*; do eval D_$(tr -d ' ' < $c/serial)=$(basename $c)n1; done; echo $D_nvme1 $D_nvme2", false]);
    for (const [fmt, dev] of nvme ? [["raw", "${D_nvme1}"], ["qcow2", "${D_nvme2}"]] : [["raw", "vdb"], ["qcow2", "vdc"]]) {
      steps.push([`${fmt} write`, `dd if=/dev/zero of=/dev/${dev} bs=1M count=${mib} conv=fsync`, false]);
      steps.push([`${fmt} read`, `echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/${dev} of=/dev/null bs=1M count=${mib}`, false]);
      steps.push([`${fmt} rand write`, `/tmp/randio /dev/${dev} write ${count} ${mib}`, true]);
      steps.push([`${fmt} rand read`, `/tmp/randio /dev/${dev} read ${count} ${mib}`, true]);
    }
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`${cmd}: timed out\n${plain(out).slice(-1500)}\n${err}`)); }, 15 * 60_000);
    const next = (): void => {
      step++;
      if (step === steps.length) { clearTimeout(timer); p.kill("SIGKILL"); resolve(res); return; }
      // Timed with the guest's /proc/uptime (10 ms ticks; busybox dd here prints no rate). The result line is
      // computed by the shell, so the echo of the typed command cannot match it.
      p.stdin.write(`a=$(cut -d' ' -f1 /proc/uptime); ${steps[step]![1]}${steps[step]![2] ? "" : " 2>/dev/null"}; b=$(cut -d' ' -f1 /proc/uptime); echo T$((6*7))T $a $b\n`);
    };
    p.stdout.setEncoding("latin1").on("data", (s: string) => {
      out += s;
      const t = plain(out);
      // The shell prints its banner after the ready line: give it a moment before typing.
      if (!started && t.includes(GUEST_READY_MARKER)) { started = true; setTimeout(next, 2000); return; }
      const ms = [...t.matchAll(/T42T ([\d.]+) ([\d.]+)\r?\n/g)]; // whole lines only: output arrives in chunks
      if (step >= 0 && ms.length === step + 1) {
        const m = ms[step]!, [name, , rand] = steps[step]!;
        if (rand) {
          // randio's own line (the typed command has no "elapsed_us="): IOPS.
          const r = [...t.matchAll(/RANDIO (?:read|write) (\d+) 4096 elapsed_us=(\d+)\r?\n/g)];
          if (r.length === 0) { clearTimeout(timer); p.kill("SIGKILL"); reject(new Error(`${name}: randio printed no result\n${t.slice(-1500)}`)); return; }
          const last = r[r.length - 1]!;
          res[name] = Number(last[1]) / (Number(last[2]) / 1e6);
        } else if (name !== "") res[name] = (mib * 1048576) / (Number(m[2]) - Number(m[1])) / 1e6;
        next();
      }
    });
    p.stderr.setEncoding("utf8").on("data", (s: string) => { err += s; });
    p.on("exit", (code) => { if (step < steps.length) { clearTimeout(timer); reject(new Error(`${cmd} exited ${code}\n${plain(out).slice(-1500)}\n${err}`)); } });
  });
}

function dataDisks(k: number, side: string): [string, string] {
  const raw = join(dir, `${side}-${k}.raw`), qcow = join(dir, `${side}-${k}.qcow2`);
  writeFileSync(raw, new Uint8Array(0));
  execFileSync("truncate", ["-s", `${mib + 16}M`, raw]);
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", qcow, `${mib + 16}M`]);
  return [raw, qcow];
}

const xeno = (k: number): Promise<Result> => {
  const [raw, qcow] = dataDisks(k, "xeno");
  const vars = join(dir, `xeno-${k}.fd`);
  copyFileSync(VARS, vars);
  const cfg = join(dir, "disk.cfg");
  writeFileSync(cfg, `name = "bench-hvm-disk"\ntype = "hvm"\nmemory = 512\n` +
    (nvme ? `disk = [ '${esp},raw,xvda,ro', '${raw},raw,nvme1,rw', '${qcow},qcow2,nvme2,rw', '${progDisk},raw,xvdd,ro' ]\n`
      : `disk = [ '${esp},raw,xvda,ro', '${raw},raw,xvdb,rw', '${qcow},qcow2,xvdc,rw', '${progDisk},raw,xvdd,ro' ]\n`));
  return measure(process.execPath, [join(ROOT, "dist", "src", "cli", "main.js"), "create", "--standalone", "-c", cfg, `uefi_vars="${vars}"`]);
};
const qemu = (k: number): Promise<Result> => {
  const [raw, qcow] = dataDisks(k, "qemu");
  const vars = join(dir, `qemu-${k}.fd`);
  copyFileSync(VARS, vars);
  // --nvme: the data disks d1 and d2 are NVMe controllers with Xeno's serials (its vdevs nvme1, nvme2).
  const nvmeSerial: Record<string, string> = nvme ? { d1: "nvme1", d2: "nvme2" } : {};
  const drive = (id: string, file: string, fmt: string, ro: boolean): string[] =>
    ["-drive", `if=none,id=${id},format=${fmt},file=${file}${ro ? ",readonly=on" : ""}`,
      "-device", nvmeSerial[id] !== undefined ? `nvme,drive=${id},serial=${nvmeSerial[id]}` : `virtio-blk-pci,drive=${id},disable-legacy=on`];
  return measure("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a72", "-m", "512", "-net", "none", "-display", "none", "-monitor", "none",
    "-serial", "stdio", "-drive", `if=pflash,format=raw,readonly=on,file=${CODE}`, "-drive", `if=pflash,format=raw,file=${vars}`,
    ...drive("d0", esp, "raw", true), ...drive("d1", raw, "raw", false), ...drive("d2", qcow, "qcow2", false), ...drive("d3", progDisk, "raw", true),
    // Xeno's HVM domains have a virtio-rng device unless virtio_rng = 0 (docs/hvm.md): the same device here.
    "-device", "virtio-rng-pci,disable-legacy=on"]);
};

const unit = (n: string): string => (n.includes("rand") ? "IOPS" : "MB/s");
const all: Record<string, Result[]> = { xeno: [], qemu: [] };
try {
  for (let k = 0; k < runs; k++) {
    for (const side of k % 2 === 0 ? ["xeno", "qemu"] : ["qemu", "xeno"]) {
      const r = await (side === "xeno" ? xeno(k) : qemu(k));
      all[side]!.push(r);
      console.log(`run ${k + 1} ${side}: ${Object.entries(r).map(([n, v]) => `${n} ${v.toFixed(1)} ${unit(n)}`).join(", ")} (load ${loadavg()[0]!.toFixed(1)})`);
    }
  }
} finally { rmSync(dir, { recursive: true, force: true }); }
const median = (a: number[]): number => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]!; };
for (const n of Object.keys(all.xeno![0]!)) {
  const x = median(all.xeno!.map((r) => r[n]!)), q = median(all.qemu!.map((r) => r[n]!));
  const what = n.includes("rand") ? `${count} x 4 KiB random in ${mib} MiB` : `${mib} MiB sequential`;
  console.log(`bench/hvm/disk${nvme ? " --nvme" : ""} ${n} (${what}, median of ${runs}): Xeno ${x.toFixed(1)} ${unit(n)}, QEMU ${q.toFixed(1)} ${unit(n)}, Xeno/QEMU ${(x / q).toFixed(2)}`);
}
