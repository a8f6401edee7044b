/**
 * Firmware boot (src/machine/firmware.ts): Debian's UEFI firmware for arm64 (qemu-efi-aarch64's AAVMF_CODE.fd,
 * unmodified) runs from Xeno's CFI flash on QEMU virt's memory map and reaches the UEFI shell on the PL011:
 *  - its banner and the boot manager's lines up to the first `Shell> ` are the same as under
 *    `qemu-system-aarch64 -M virt -cpu cortex-a72` with the same firmware (the oracle);
 *  - a shell command typed on the serial console runs (`setvar` writes a non-volatile variable: flash
 *    erase and buffered programs through the NorFlash driver), and the domain's variable store file gets the
 *    bytes (Board → CfiFlash onChange → file);
 *  - a second boot from that file reads the variable back, and so does QEMU booted with the same file — the
 *    variable store Xeno's flash wrote is valid for the real firmware on QEMU's flash.
 * Boots poll the console with a deadline (no fixed sleeps). The firmware and QEMU come from apt
 * (scripts/setup.sh installs qemu-efi-aarch64 and qemu-system-arm).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Board } from "../../src/machine/board.js";
import { bootFirmware, FLASH_BYTES } from "../../src/machine/firmware.js";

const AAVMF_CODE = "/usr/share/AAVMF/AAVMF_CODE.fd", AAVMF_VARS = "/usr/share/AAVMF/AAVMF_VARS.fd";
const BOOT_MS = 5 * 60_000, CMD_MS = 60_000;
const GUID = "3cf0dd34-6d05-4a4c-9a8a-29e7b3e7ab6d";
const SET = `setvar XenoTest -nv -bs -guid ${GUID} =4142`, GET = `setvar XenoTest -guid ${GUID}`;
/** What `setvar` prints for the variable: its GUID, name and size, then the bytes. */
const VALUE_RE = new RegExp(`${GUID.toUpperCase()} - XenoTest - 0002 Bytes\\r?\\n41 42`);

const dir = mkdtempSync(join(tmpdir(), "xeno-fw-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const varsPath = join(dir, "vars.fd");

for (const f of [AAVMF_CODE, AAVMF_VARS]) {
  if (!existsSync(f)) throw new Error(`${f} is missing: run scripts/setup.sh (apt package qemu-efi-aarch64)`);
}

/** Console text without ANSI escape sequences (the shell paints with colours and cursor moves). */
const plain = (s: string): string => s.replace(/\x1b\[[0-9;=?]*[a-zA-Z]/g, "");
/** The lines before the first prompt that say what booted (the countdown line is timing, not content). */
const banner = (s: string): string[] => plain(s).split("Shell> ")[0]!.split(/\r?\n/).map((l) => l.trim())
  .filter((l) => l !== "" && !/^Press ESC/.test(l));

/** Xeno's board with the firmware and the vars file; its console text; type() and until(). */
function xenoFirmware(): { out: () => string; type: (s: string) => void; until: (re: RegExp, ms: number, what: string) => Promise<void>; close: () => void } {
  let text = "";
  const fd = openSync(varsPath, "r+");
  const board = new Board({ memMiB: 256, vcpus: 1, romBytes: FLASH_BYTES, consoleOut: (b) => { text += Buffer.from(b).toString("latin1"); } });
  bootFirmware(board, {
    code: readFileSync(AAVMF_CODE), vars: readFileSync(varsPath),
    onVarsChange: (off, bytes) => { writeSync(fd, bytes, 0, bytes.length, off); },
  });
  const until = async (re: RegExp, ms: number, what: string): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!re.test(plain(text))) {
      if (Date.now() > deadline) assert.fail(`${what}: not seen within ${ms / 1000} s\n${plain(text).slice(-1500)}`);
      const w = board.runSlice();
      if (w < 0) assert.fail(`${what}: the board stopped (${board.state}: ${board.reason})\n${plain(text).slice(-1500)}`);
      if (w > 0) await new Promise((r) => setTimeout(r, Math.min(w, 10)));
    }
  };
  return { out: () => text, type: (s) => board.input(Buffer.from(s)), until, close: () => closeSync(fd) };
}

let xenoBanner: string[] = [];

test("AAVMF on Xeno's board: the UEFI shell on the serial console; setvar writes a variable to the domain's store", { timeout: BOOT_MS + 2 * CMD_MS }, async () => {
  copyFileSync(AAVMF_VARS, varsPath);
  const t0 = Date.now();
  const x = xenoFirmware();
  try {
    await x.until(/Shell> /, BOOT_MS, "the UEFI shell prompt");
    const secs = (Date.now() - t0) / 1000;
    xenoBanner = banner(x.out());
    process.stderr.write(`# Xeno: UEFI shell after ${secs.toFixed(1)} s; banner:\n${xenoBanner.map((l) => `#   ${l}\n`).join("")}`);
    assert.ok(xenoBanner.some((l) => /^UEFI firmware \(version/.test(l)), "the firmware's banner");
    assert.ok(xenoBanner.includes("UEFI Interactive Shell v2.2"), "the shell's banner");
    x.type(`${SET}\r`);
    x.type(`${GET}\r`);
    await x.until(VALUE_RE, CMD_MS, "setvar's answer");
  } finally { x.close(); }
  const vars = readFileSync(varsPath), pristine = readFileSync(AAVMF_VARS);
  assert.equal(vars.length, pristine.length);
  assert.ok(!vars.equals(pristine), "the firmware wrote its variable store");
  assert.ok(vars.includes(Buffer.from("XenoTest", "utf16le")), "the variable is in the domain's vars file");
});

test("the variable store persists: a second boot reads the variable back, and QEMU with the same firmware and file does too", { timeout: 2 * BOOT_MS + 2 * CMD_MS }, async () => {
  assert.ok(existsSync(varsPath), "the first test wrote the vars file");
  const x = xenoFirmware();
  try {
    await x.until(/Shell> /, BOOT_MS, "the UEFI shell prompt (second boot)");
    x.type(`${GET}\r`);
    await x.until(VALUE_RE, CMD_MS, "setvar's answer after the restart");
  } finally { x.close(); }

  // The oracle: QEMU's virt with the same pflash images, the serial console on stdio.
  const qemuVars = join(dir, "qemu-vars.fd");
  copyFileSync(varsPath, qemuVars);
  const q = spawn("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a72", "-m", "256", "-net", "none", "-display", "none",
    "-monitor", "none", "-serial", "stdio",
    "-drive", `if=pflash,format=raw,readonly=on,file=${AAVMF_CODE}`, "-drive", `if=pflash,format=raw,file=${qemuVars}`], { stdio: ["pipe", "pipe", "pipe"] });
  let qout = "", qerr = "";
  q.stdout.setEncoding("latin1").on("data", (s: string) => { qout += s; });
  q.stderr.setEncoding("utf8").on("data", (s: string) => { qerr += s; });
  const qUntil = async (re: RegExp, ms: number, what: string): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!re.test(plain(qout))) {
      if (q.exitCode !== null) assert.fail(`QEMU exited (${q.exitCode}) before ${what}: ${qerr}`);
      if (Date.now() > deadline) assert.fail(`QEMU: ${what} not seen within ${ms / 1000} s\n${plain(qout).slice(-1500)}\n${qerr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    const t0 = Date.now();
    await qUntil(/Shell> /, BOOT_MS, "the UEFI shell prompt");
    process.stderr.write(`# QEMU (TCG, -cpu cortex-a72): UEFI shell after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    q.stdin.write(`${GET}\r`);
    await qUntil(VALUE_RE, CMD_MS, "setvar's answer");
    if (xenoBanner.length > 0) assert.deepEqual(banner(qout), xenoBanner, "the same banner and boot manager lines under QEMU");
  } finally {
    q.kill("SIGKILL");
  }
});
