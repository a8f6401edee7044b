/**
 * bench/hvm: power-on → UEFI shell prompt with Debian's AAVMF, Xeno (`xeno create --standalone -c
 * examples/hvm.cfg`) vs QEMU TCG (`qemu-system-aarch64 -M virt -cpu cortex-a72`, the same firmware as pflash),
 * each from a fresh copy of AAVMF_VARS.fd, alternated, median of N. The clock runs from the spawn of the process
 * to the first "Shell> " on its serial console (both include their own start-up). GRUB and a kernel from a disk
 * come when the device model has storage (docs/hvm.md).
 *
 *   node dist/bench/hvm/run.js [--runs N] [--timeout SEC]
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const CODE = "/usr/share/AAVMF/AAVMF_CODE.fd", VARS = "/usr/share/AAVMF/AAVMF_VARS.fd";
const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, timeout: { type: "string", default: "600" } } });
const runs = Number(values.runs), timeoutMs = Number(values.timeout) * 1000;
const dir = mkdtempSync(join(tmpdir(), "xeno-bench-hvm-"));

/** Spawns `cmd args`, returns ms until "Shell> " appears on its stdout (then kills it). */
function toShell(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`${cmd}: no shell within ${timeoutMs / 1000} s\n${err}`)); }, timeoutMs);
    p.stdout.setEncoding("latin1").on("data", (s: string) => {
      out += s;
      if (out.replace(/\x1b\[[0-9;=?]*[a-zA-Z]/g, "").includes("Shell> ")) {
        const ms = performance.now() - t0;
        clearTimeout(timer);
        p.kill("SIGKILL");
        resolve(ms);
      }
    });
    p.stderr.setEncoding("utf8").on("data", (s: string) => { err += s; });
    p.on("exit", (code) => { if (!out.includes("Shell> ")) { clearTimeout(timer); reject(new Error(`${cmd} exited ${code} first\n${err}`)); } });
  });
}

const xeno = (k: number): Promise<number> => {
  const vars = join(dir, `xeno-${k}.fd`);
  copyFileSync(VARS, vars);
  return toShell(process.execPath, [join(ROOT, "dist", "src", "cli", "main.js"), "create", "--standalone", "-c", join(ROOT, "examples", "hvm.cfg"), `uefi_vars="${vars}"`]);
};
const qemu = (k: number): Promise<number> => {
  const vars = join(dir, `qemu-${k}.fd`);
  copyFileSync(VARS, vars);
  return toShell("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a72", "-m", "256", "-net", "none", "-display", "none", "-monitor", "none",
    "-serial", "stdio", "-drive", `if=pflash,format=raw,readonly=on,file=${CODE}`, "-drive", `if=pflash,format=raw,file=${vars}`]);
};

const times: Record<string, number[]> = { xeno: [], qemu: [] };
try {
  for (let k = 0; k < runs; k++) {
    for (const side of k % 2 === 0 ? ["xeno", "qemu"] : ["qemu", "xeno"]) {
      const ms = await (side === "xeno" ? xeno(k) : qemu(k));
      times[side]!.push(ms);
      console.log(`run ${k + 1} ${side}: ${(ms / 1000).toFixed(1)} s`);
    }
  }
} finally { rmSync(dir, { recursive: true, force: true }); }
const median = (a: number[]): number => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]!; };
const mx = median(times.xeno!), mq = median(times.qemu!);
console.log(`bench/hvm: power-on → UEFI shell, median of ${runs}: Xeno ${(mx / 1000).toFixed(1)} s, QEMU ${(mq / 1000).toFixed(1)} s, Xeno/QEMU ${(mx / mq).toFixed(2)}`);
