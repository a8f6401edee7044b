/**
 * `xeno user …` and `xeno audit …`: the XenAPI endpoint's users (src/api/users.ts) and audit trail
 * (src/api/audit.ts), edited and read as files in the API directory ($XENO_API_DIR, default /var/lib/xeno, or
 * --api-dir), as root's CLI on the host — the running xenod reads the users file again at the next login.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { AUDIT_FILE, verifyAudit, type AuditLine } from "../api/audit.js";
import { isRole, ROLES, type Role } from "../api/roles.js";
import { DEFAULT_API_DIR } from "../api/server.js";
import { addUser, readUsers, removeUser, setPassword, setRole, USERS_FILE, UsersError } from "../api/users.js";

export const USER_USAGE = `usage: xeno user add NAME --role ROLE | passwd NAME | role NAME ROLE | list | remove NAME  [--api-dir DIR]
  The password (add, passwd) is read from standard input when it is not a terminal (one line), else asked twice.
  Roles, most powerful first: ${ROLES.join(", ")}.
`;
export const AUDIT_USAGE = `usage: xeno audit verify | tail [-n N]  [--api-dir DIR]
  verify: checks the hash chain of the audit log (exit 1 naming each broken line); tail: the last N entries (10).
`;

const apiDir = (v: string | undefined): string => v ?? (process.env.XENO_API_DIR || DEFAULT_API_DIR);

/** One line from a pipe, or asked twice without echo on a terminal. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0] ?? "";
  }
  const ask = (prompt: string): Promise<string> => new Promise((resolve) => {
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let pw = "";
    const onData = (b: Buffer): void => {
      for (const ch of b.toString("utf8")) {
        if (ch === "\r" || ch === "\n") { stdin.off("data", onData); stdin.setRawMode(false); stdin.pause(); process.stderr.write("\n"); resolve(pw); return; }
        if (ch === "\u0003") { stdin.setRawMode(false); process.stderr.write("\n"); process.exit(130); }
        if (ch === "\u007f") pw = pw.slice(0, -1); else pw += ch;
      }
    };
    stdin.on("data", onData);
  });
  const a = await ask("Password: "), b = await ask("Again: ");
  if (a !== b) throw new UsersError("EINVAL", "the two passwords differ");
  return a;
}

function roleArg(s: string | undefined): Role {
  if (s === undefined || !isRole(s)) throw new UsersError("EINVAL", `${s === undefined ? "a role is needed" : `'${s}' is not a role`} (one of ${ROLES.join(", ")})`);
  return s;
}

export async function userMain(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs({ args: argv, allowPositionals: true, options: { role: { type: "string", short: "r" }, "api-dir": { type: "string" }, help: { type: "boolean", short: "h" } } });
  } catch (e) { process.stderr.write(`xeno user: ${(e as Error).message}\n${USER_USAGE}`); return 2; }
  const [sub, name, third] = a.positionals;
  if (a.values.help) { process.stdout.write(USER_USAGE); return 0; }
  const path = join(apiDir(a.values["api-dir"]), USERS_FILE);
  const need = (n: number): boolean => a.positionals.length === n;
  try {
    switch (sub) {
      case "add":
        if (!need(2)) break;
        await addUser(path, name!, roleArg(a.values.role), await readPassword());
        process.stderr.write(`xeno user: added ${name} (${a.values.role}) to ${path}\n`);
        return 0;
      case "passwd":
        if (!need(2)) break;
        await setPassword(path, name!, await readPassword());
        process.stderr.write(`xeno user: password of ${name} changed\n`);
        return 0;
      case "role":
        if (!need(3)) break;
        setRole(path, name!, roleArg(third));
        process.stderr.write(`xeno user: ${name} is now ${third}\n`);
        return 0;
      case "remove":
        if (!need(2)) break;
        removeUser(path, name!);
        process.stderr.write(`xeno user: removed ${name}\n`);
        return 0;
      case "list": {
        if (!need(1)) break;
        const f = readUsers(path);
        process.stdout.write(`${"Name".padEnd(24)} ${"Role".padEnd(16)} Created\n`);
        for (const [n, u] of Object.entries(f.users).sort()) process.stdout.write(`${n.padEnd(24)} ${u.role.padEnd(16)} ${u.created}\n`);
        return 0;
      }
      default: break;
    }
  } catch (e) {
    if (e instanceof UsersError) { process.stderr.write(`xeno user: ${e.message}\n`); return 1; }
    throw e;
  }
  process.stderr.write(USER_USAGE);
  return 2;
}

export async function auditMain(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs({ args: argv, allowPositionals: true, options: { n: { type: "string", short: "n" }, "api-dir": { type: "string" }, help: { type: "boolean", short: "h" } } });
  } catch (e) { process.stderr.write(`xeno audit: ${(e as Error).message}\n${AUDIT_USAGE}`); return 2; }
  if (a.values.help) { process.stdout.write(AUDIT_USAGE); return 0; }
  const dir = apiDir(a.values["api-dir"]);
  const [sub] = a.positionals;
  if (sub === "verify" && a.positionals.length === 1) {
    const r = verifyAudit(dir);
    if (r.ok) { process.stdout.write(`${join(dir, AUDIT_FILE)}: ${r.lines} entries, hash chain intact\n`); return 0; }
    process.stdout.write(`${join(dir, AUDIT_FILE)}: ${r.lines} lines, the chain is broken:\n${r.problems.map((p) => `  ${p}\n`).join("")}`);
    return 1;
  }
  if (sub === "tail" && a.positionals.length === 1) {
    const n = a.values.n === undefined ? 10 : Number(a.values.n);
    if (!Number.isInteger(n) || n < 0) { process.stderr.write(`xeno audit: -n takes a count, not '${a.values.n}'\n`); return 2; }
    let text: string;
    try { text = readFileSync(join(dir, AUDIT_FILE), "utf8"); } catch (e) { process.stderr.write(`xeno audit: cannot read ${join(dir, AUDIT_FILE)}: ${(e as Error).message}\n`); return 1; }
    const lines = text.split("\n").filter((l) => l !== "");
    for (const raw of n === 0 ? [] : lines.slice(-n)) {
      try {
        const l = JSON.parse(raw) as AuditLine;
        process.stdout.write(`${l.seq} ${l.time} ${l.user} (${l.role}) ${l.from ?? "-"} ${l.method} ${JSON.stringify(l.args)} → ${l.result}\n`);
      } catch { process.stdout.write(`(not JSON) ${raw.slice(0, 200)}\n`); }
    }
    return 0;
  }
  process.stderr.write(AUDIT_USAGE);
  return 2;
}
