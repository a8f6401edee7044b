/**
 * `xeno user` and `xeno audit` as a script runs them: passwords from standard input, the users file 0600 with
 * scrypt hashes (no password in it), roles checked; `audit verify` passes on a real chain and fails, naming the
 * line, after one line is edited, removed, moved, or the end cut off; `audit tail`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog, AUDIT_FILE } from "../../src/api/audit.js";
import { LocalAuthenticator } from "../../src/api/users.js";
import { CLI, ROOT } from "../machine/cli-domain.js";

test("xeno user: add/passwd/role/list/remove with passwords from stdin; the file is 0600 and holds scrypt hashes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-users-"));
  const xeno = (input: string, ...args: string[]) => spawnSync(process.execPath, [CLI, ...args, "--api-dir", dir], { cwd: ROOT, input, encoding: "utf8" });
  try {
    let r = xeno("first-pass\n", "user", "add", "ops", "--role", "vm-operator");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(xeno("x\n", "user", "add", "ops", "--role", "read-only").status, 1, "a second add of one name is refused");
    r = xeno("x\n", "user", "add", "eve", "--role", "root");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /'root' is not a role \(one of pool-admin, pool-operator, vm-power-admin, vm-admin, vm-operator, read-only\)/);
    assert.equal(xeno("", "user", "add", "empty", "--role", "read-only").status, 1, "an empty password is refused");
    const file = join(dir, "users.json");
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.doesNotMatch(readFileSync(file, "utf8"), /first-pass/);
    assert.match(readFileSync(file, "utf8"), /"hash": "scrypt\$32768\$8\$1\$/);
    const auth = LocalAuthenticator.inDir(dir);
    assert.deepEqual(await auth.authenticate("ops", "first-pass"), { user: "ops", role: "vm-operator", via: "local" });
    assert.equal(await auth.authenticate("ops", "wrong"), null);
    assert.equal(xeno("second-pass\n", "user", "passwd", "ops").status, 0);
    assert.equal(await auth.authenticate("ops", "first-pass"), null);
    assert.ok(await auth.authenticate("ops", "second-pass"));
    assert.equal(xeno("", "user", "role", "ops", "pool-admin").status, 0);
    assert.equal(auth.roleOf("ops"), "pool-admin");
    assert.match(xeno("", "user", "list").stdout, /^ops\s+pool-admin\s+\d{4}-/m);
    assert.equal(xeno("", "user", "remove", "ops").status, 0);
    assert.equal(auth.roleOf("ops"), null);
    assert.equal(xeno("", "user", "remove", "ops").status, 1);
    assert.equal(xeno("", "user", "frob").status, 2);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("xeno audit verify: an intact chain passes; an edited, removed, moved or cut line fails naming it; tail", () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-audit-"));
  const xeno = (...args: string[]) => spawnSync(process.execPath, [CLI, "audit", ...args, "--api-dir", dir], { cwd: ROOT, encoding: "utf8" });
  try {
    assert.equal(xeno("verify").status, 0, "no log yet: nothing to check");
    const log = new AuditLog(dir);
    for (let i = 0; i < 6; i++) log.append({ time: new Date(1_700_000_000_000 + i * 1000).toISOString(), user: "admin", role: "pool-admin", method: `VM.pause`, args: ["(session)", `OpaqueRef:${i}`], result: "ok", from: "127.0.0.1" });
    // A new AuditLog (a restarted xenod) continues the chain.
    new AuditLog(dir).append({ time: new Date().toISOString(), user: "ro", role: "read-only", method: "VM.hard_shutdown", args: ["(session)", "OpaqueRef:9"], result: "RBAC_PERMISSION_DENIED(vm.hard_shutdown, …)" });
    let r = xeno("verify");
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /7 entries, hash chain intact/);
    r = xeno("tail", "-n", "2");
    assert.equal(r.stdout.trim().split("\n").length, 2);
    assert.match(r.stdout, /^7 \S+ ro \(read-only\) - VM.hard_shutdown \["\(session\)","OpaqueRef:9"\] → RBAC_PERMISSION_DENIED/m);

    const path = join(dir, AUDIT_FILE);
    const good = readFileSync(path, "utf8");
    const lines = good.trimEnd().split("\n");
    const check = (text: string, re: RegExp, what: string): void => {
      writeFileSync(path, text);
      const v = xeno("verify");
      assert.equal(v.status, 1, `${what}: verify passed\n${v.stdout}`);
      assert.match(v.stdout, re, what);
    };
    check(good.replace('"OpaqueRef:2"', '"OpaqueRef:7"'), /line 3 \(seq 3\): its hash does not match its contents \(edited\)/, "edited");
    check([...lines.slice(0, 2), ...lines.slice(3)].join("\n") + "\n", /line 3 \(seq 4\): prev does not match/, "removed");
    check([lines[0], lines[2], lines[1], ...lines.slice(3)].join("\n") + "\n", /line 2 \(seq 3\): prev does not match/, "reordered");
    check(lines.slice(0, 5).join("\n") + "\n", /audit\.head names seq 7, the log ends at seq 5/, "cut off the end");
    writeFileSync(path, good);
    assert.equal(xeno("verify").status, 0);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
