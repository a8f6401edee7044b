/**
 * bench/hvm: power-on → UEFI shell prompt with Debian's AAVMF, Xeno (`xeno create --standalone -c
 * examples/hvm.cfg`) vs QEMU TCG (`qemu-system-aarch64 -M virt -cpu cortex-a72`, the same firmware as pflash),
 * each from a fresh copy of AAVMF_VARS.fd, alternated, median of N. The clock runs from the spawn of the process
 * to the first "Shell> " on its serial console (both include their own start-up).
 *
 * With --grub: power-on → firmware → GRUB → Debian's kernel → its initramfs's ready line, from an ESP built with
 * Debian's GRUB tools (src/images/uefi-esp.ts, as test/hvm/disk-boot builds it) as the one disk: Xeno's virtio-blk
 * on PCIe vs QEMU's `-device virtio-blk-pci,disable-legacy=on` with the same image, 512 MiB each. QEMU also gets
 * `-device virtio-rng-pci,disable-legacy=on`, the entropy device Xeno's HVM domains have by default.
 *
 * Each run also reports the process's CPU time (user + system, all its threads: /proc/PID/stat read just before
 * the kill), less sensitive to a loaded host than the wall clock.
 *
 *   node dist/bench/hvm/run.js [--runs N] [--timeout SEC] [--grub]
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { defaultCacheDir, ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { ensureHostTools } from "../../src/images/host-packages.js";
import { buildGrubEsp, ensureGrubArm64Efi, ESP_TOOLS } from "../../src/images/uefi-esp.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const CODE = "/usr/share/AAVMF/AAVMF_CODE.fd", VARS = "/usr/share/AAVMF/AAVMF_VARS.fd";
const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, timeout: { type: "string", default: "600" }, grub: { type: "boolean", default: false } } });
const runs = Number(values.runs), timeoutMs = Number(values.timeout) * 1000, grub = values.grub === true;
const dir = mkdtempSync(join(tmpdir(), "xeno-bench-hvm-"));
const MARKER = grub ? GUEST_READY_MARKER : "Shell> ";
const TICK = 100; // USER_HZ: /proc/PID/stat's clock ticks per second on Linux

/** utime + stime of `pid` in seconds (all its threads), or NaN when it is gone. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const after = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return (Number(after[11]) + Number(after[12])) / TICK; // fields 14 and 15 of proc(5), counted after the name
  } catch { return NaN; }
}

let esp = "";
if (grub) {
  ensureHostTools(ESP_TOOLS, "bench/hvm --grub", (l) => console.log(l));
  const images = await ensureImages({ onProgress: (m) => console.log(m) });
  const modules = await ensureGrubArm64Efi(defaultCacheDir(), (m) => console.log(m));
  esp = join(dir, "esp.img");
  await buildGrubEsp({ out: esp, grubModules: modules, kernel: images.kernel, initrd: images.initrd, cmdline: "console=ttyAMA0" });
}

/** Spawns `cmd args`, returns ms and CPU seconds until MARKER appears on its stdout (then kills it). */
function toShell(cmd: string, args: string[]): Promise<{ ms: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`${cmd}: no shell within ${timeoutMs / 1000} s\n${err}`)); }, timeoutMs);
    p.stdout.setEncoding("latin1").on("data", (s: string) => {
      out += s;
      if (out.replace(/\x1b\[[0-9;=?]*[a-zA-Z]/g, "").includes(MARKER)) {
        const ms = performance.now() - t0, cpu = cpuSeconds(p.pid);
        clearTimeout(timer);
        p.kill("SIGKILL");
        resolve({ ms, cpu });
      }
    });
    p.stderr.setEncoding("utf8").on("data", (s: string) => { err += s; });
    p.on("exit", (code) => { if (!out.includes(MARKER)) { clearTimeout(timer); reject(new Error(`${cmd} exited ${code} first\n${err}`)); } });
  });
}

const xeno = (k: number): Promise<{ ms: number; cpu: number }> => {
  const vars = join(dir, `xeno-${k}.fd`);
  copyFileSync(VARS, vars);
  const cfg = join(dir, "grub.cfg");
  if (grub) writeFileSync(cfg, `name = "bench-hvm"\ntype = "hvm"\nmemory = 512\ndisk = [ '${esp},raw,xvda,ro' ]\n`);
  return toShell(process.execPath, [join(ROOT, "dist", "src", "cli", "main.js"), "create", "--standalone", "-c",
    grub ? cfg : join(ROOT, "examples", "hvm.cfg"), `uefi_vars="${vars}"`]);
};
const qemu = (k: number): Promise<{ ms: number; cpu: number }> => {
  const vars = join(dir, `qemu-${k}.fd`);
  copyFileSync(VARS, vars);
  const disk = grub ? ["-drive", `if=none,id=d0,format=raw,readonly=on,file=${esp}`, "-device", "virtio-blk-pci,drive=d0,disable-legacy=on"] : [];
  return toShell("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a72", "-m", grub ? "512" : "256", "-net", "none", "-display", "none", "-monitor", "none",
    "-serial", "stdio", "-drive", `if=pflash,format=raw,readonly=on,file=${CODE}`, "-drive", `if=pflash,format=raw,file=${vars}`, ...disk,
    // Xeno's HVM domains have a virtio-rng device unless virtio_rng = 0 (docs/hvm.md): the same device here.
    "-device", "virtio-rng-pci,disable-legacy=on"]);
};

const times: Record<string, number[]> = { xeno: [], qemu: [] }, cpus: Record<string, number[]> = { xeno: [], qemu: [] };
try {
  for (let k = 0; k < runs; k++) {
    for (const side of k % 2 === 0 ? ["xeno", "qemu"] : ["qemu", "xeno"]) {
      const { ms, cpu } = await (side === "xeno" ? xeno(k) : qemu(k));
      times[side]!.push(ms);
      cpus[side]!.push(cpu);
      console.log(`run ${k + 1} ${side}: ${(ms / 1000).toFixed(1)} s wall, ${cpu.toFixed(1)} s CPU`);
    }
  }
} finally { rmSync(dir, { recursive: true, force: true }); }
const median = (a: number[]): number => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]!; };
const mx = median(times.xeno!), mq = median(times.qemu!);
const cx = median(cpus.xeno!), cq = median(cpus.qemu!);
console.log(`bench/hvm${grub ? " --grub" : ""}: power-on → ${grub ? "firmware → GRUB → kernel shell" : "UEFI shell"}, median of ${runs}: ` +
  `Xeno ${(mx / 1000).toFixed(1)} s, QEMU ${(mq / 1000).toFixed(1)} s, Xeno/QEMU ${(mx / mq).toFixed(2)} (wall); ` +
  `CPU Xeno ${cx.toFixed(1)} s, QEMU ${cq.toFixed(1)} s, Xeno/QEMU ${(cx / cq).toFixed(2)}`);
