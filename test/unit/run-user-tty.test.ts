/**
 * `xeno run-user` and terminals (src/user/syscalls.ts ioctl TCGETS): busybox `tty` on a real pseudo-terminal
 * (util-linux `script`) prints its name and exits 0 — until 2026-12-08 TCGETS wrote 60 bytes into glibc's
 * 36-byte termios and the guest died of "stack smashing detected"; on a pipe and on /dev/null (a character
 * device that is no terminal) it prints "not a tty" and exits 1, as under Linux.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { fetchBusybox } from "../oracle/oracle-lib.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

test("run-user: TCGETS on a terminal, a pipe and /dev/null", async () => {
  const bb = await fetchBusybox();
  const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;
  const onPty = execFileSync("script", ["-qec", `${q(process.execPath)} ${q(MAIN)} run-user ${q(bb)} tty; echo "rc=$?"`, "/dev/null"],
    { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] }).replace(/\r/g, "");
  assert.match(onPty, /^\/dev\/pts\/\d+\nrc=0\n$/, onPty);
  const onPipe = spawnSync(process.execPath, [MAIN, "run-user", bb, "tty"], { encoding: "utf8", input: "" });
  assert.equal(onPipe.stdout, "not a tty\n");
  assert.equal(onPipe.status, 1);
  const onNull = spawnSync("sh", ["-c", `${q(process.execPath)} ${q(MAIN)} run-user ${q(bb)} tty < /dev/null`], { encoding: "utf8" });
  assert.equal(onNull.stdout, "not a tty\n");
  assert.equal(onNull.status, 1);
});
