/**
 * The audit trail: one JSON object per line (AUDIT_FILE in the API directory, mode 0600), appended for every
 * mutating call, every refused call and every login: {seq, time, user, role, method, args, result, prev, hash}.
 * `hash` is SHA-256 over `prev` and the line's other fields (canonical JSON), and `prev` is the hash of the line
 * before (64 zeros for the first), so editing, removing or reordering a line breaks the chain at that line.
 * Cutting lines off the end keeps a valid chain; AUDIT_HEAD (the last seq and hash, rewritten after each append)
 * catches that, as long as it is not cut as well — a copy of it kept elsewhere (or shipped to a log host) is
 * what would make the tail tamper-evident against root.
 *
 * Secrets never reach the log: passwords become "(secret)", session refs "(session)".
 */
import { createHash } from "node:crypto";
import { appendFileSync, chmodSync, closeSync, existsSync, openSync, readFileSync, readSync, fstatSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const AUDIT_FILE = "audit.log";
export const AUDIT_HEAD = "audit.head";
const ZERO = "0".repeat(64);

export interface AuditEntry {
  time: string;
  user: string;
  role: string;
  method: string;
  args: unknown[];
  /** "ok", or the XAPI error code with its parameters ("RBAC_PERMISSION_DENIED(…)"). */
  result: string;
  /** Where the call came from (remote address). */
  from?: string;
}

export interface AuditLine extends AuditEntry { seq: number; prev: string; hash: string }

/** JSON with keys sorted at every level: the form that is hashed. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

export function hashLine(l: Omit<AuditLine, "hash">): string {
  return createHash("sha256").update(canonical(l)).digest("hex");
}

export class AuditLog {
  readonly path: string;
  readonly headPath: string;
  private seq = 0;
  private last = ZERO;

  constructor(dir: string) {
    this.path = join(dir, AUDIT_FILE);
    this.headPath = join(dir, AUDIT_HEAD);
    if (existsSync(this.path)) {
      const tail = lastLine(this.path);
      if (tail) {
        try {
          const l = JSON.parse(tail) as AuditLine;
          this.seq = l.seq; this.last = l.hash;
        } catch { /* a damaged last line: the chain goes on from zero; verify reports the damage */ }
      }
    }
  }

  append(e: AuditEntry): AuditLine {
    const body = { seq: this.seq + 1, time: e.time, user: e.user, role: e.role, method: e.method, args: e.args, result: e.result, from: e.from, prev: this.last };
    const line: AuditLine = { ...body, hash: hashLine(body) };
    appendFileSync(this.path, JSON.stringify(line) + "\n", { mode: 0o600 });
    this.seq = line.seq; this.last = line.hash;
    writeFileSync(this.headPath + ".new", JSON.stringify({ seq: line.seq, hash: line.hash }) + "\n", { mode: 0o600 });
    renameSync(this.headPath + ".new", this.headPath);
    return line;
  }

  /** Makes sure the log's mode is 0600 (a file made by hand may not be). */
  secure(): void { if (existsSync(this.path)) chmodSync(this.path, 0o600); }
}

/** The last non-empty line of a file, reading at most its last 1 MiB. */
function lastLine(path: string): string | null {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const n = Math.min(size, 1 << 20);
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, size - n);
    const lines = b.toString("utf8").split("\n").filter((l) => l.trim() !== "");
    return lines[lines.length - 1] ?? null;
  } finally { closeSync(fd); }
}

export interface VerifyResult { ok: boolean; lines: number; problems: string[] }

/** Checks the chain of `dir`'s audit log and its head; each problem names the line (1-based) and what is wrong. */
export function verifyAudit(dir: string): VerifyResult {
  const path = join(dir, AUDIT_FILE);
  const problems: string[] = [];
  let text = "";
  try { text = readFileSync(path, "utf8"); } catch (e) {
    // No log and no head: nothing was audited yet. No log but a head: the log was removed.
    if ((e as NodeJS.ErrnoException).code === "ENOENT" && !existsSync(join(dir, AUDIT_HEAD))) return { ok: true, lines: 0, problems: [] };
    return { ok: false, lines: 0, problems: [`cannot read ${path}: ${(e as Error).message}`] };
  }
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  let prev = ZERO, seq = 0;
  lines.forEach((raw, i) => {
    const n = i + 1;
    let l: AuditLine;
    try { l = JSON.parse(raw) as AuditLine; } catch { problems.push(`line ${n}: not JSON`); return; }
    const { hash, ...body } = l;
    if (hashLine(body) !== hash) problems.push(`line ${n} (seq ${l.seq}): its hash does not match its contents (edited)`);
    if (l.prev !== prev) problems.push(`line ${n} (seq ${l.seq}): prev does not match the hash of line ${n - 1} (a line before it was edited, removed or moved)`);
    if (l.seq !== seq + 1) problems.push(`line ${n}: seq ${l.seq} follows seq ${seq} (lines removed or reordered)`);
    prev = hash; seq = l.seq;
  });
  try {
    const head = JSON.parse(readFileSync(join(dir, AUDIT_HEAD), "utf8")) as { seq: number; hash: string };
    if (head.seq !== seq || head.hash !== prev) problems.push(`${AUDIT_HEAD} names seq ${head.seq}, the log ends at seq ${seq} (lines cut off the end, or the head replaced)`);
  } catch (e) {
    if (lines.length > 0) problems.push(`cannot read ${join(dir, AUDIT_HEAD)}: ${(e as Error).message}`);
  }
  return { ok: problems.length === 0, lines: lines.length, problems };
}
