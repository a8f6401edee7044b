/**
 * Local API users: a JSON file (USERS_FILE in the API directory, mode 0600: only root reads it) holding, per
 * user, a role and a scrypt hash of the password with its own random salt and cost parameters. The `xeno user`
 * subcommands edit it; the server reads it again whenever its mtime changes, so edits apply at the next login.
 *
 * Logins go through an Authenticator. LocalAuthenticator checks this file; a directory (LDAP, Active Directory)
 * would be another Authenticator, tried after or instead of it in `authenticators` of the API server
 * (server.ts, `ApiServerOptions.authenticators`), mapping directory groups to roles — as xapi's external auth
 * (pool.enable_external_auth, subject → role) does.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { isRole, ROLES, type Role } from "./roles.js";

export const USERS_FILE = "users.json";
/** scrypt cost: N=2^15, r=8 (~32 MiB, ~0.1 s on this machine): slow enough to make guessing costly. */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, keylen: 32 } as const;
const MAXMEM = 64 * 1024 * 1024;

const scrypt = (pw: string, salt: Buffer, o: { N: number; r: number; p: number; keylen: number }): Promise<Buffer> =>
  new Promise((resolve, reject) => scryptCb(pw, salt, o.keylen, { N: o.N, r: o.r, p: o.p, maxmem: MAXMEM } as ScryptOptions, (e, k) => (e ? reject(e) : resolve(k))));

const UserSchema = z.object({
  role: z.string().refine(isRole, { message: `role must be one of ${ROLES.join(", ")}` }),
  /** "scrypt$N$r$p$salt-base64$hash-base64" */
  hash: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/),
  created: z.string(),
});
const FileSchema = z.object({ version: z.literal(1), users: z.record(z.string(), UserSchema) });
export type UsersFile = z.infer<typeof FileSchema>;

/** A user name: what xapi accepts for local users, kept simple. */
export const USER_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$/;

export class UsersError extends Error {
  constructor(readonly code: "EINVAL" | "ENOENT_USER" | "EEXIST_USER" | "EFILE", message: string) { super(message); this.name = "UsersError"; }
}

export async function hashPassword(pw: string): Promise<string> {
  const salt = randomBytes(16);
  const k = await scrypt(pw, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString("base64")}$${k.toString("base64")}`;
}

export async function verifyPassword(pw: string, stored: string): Promise<boolean> {
  const [, n, r, p, salt, hash] = stored.split("$");
  const want = Buffer.from(hash ?? "", "base64");
  const k = await scrypt(pw, Buffer.from(salt ?? "", "base64"), { N: Number(n), r: Number(r), p: Number(p), keylen: want.length || 32 });
  return want.length === k.length && timingSafeEqual(want, k);
}

/** Reads the users file (an absent file is no users); EFILE says what is wrong with a bad one. */
export function readUsers(path: string): UsersFile {
  let text: string;
  try { text = readFileSync(path, "utf8"); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, users: {} };
    throw new UsersError("EFILE", `cannot read ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try { json = JSON.parse(text); } catch (e) { throw new UsersError("EFILE", `${path} is not JSON: ${(e as Error).message}`); }
  const r = FileSchema.safeParse(json);
  if (!r.success) throw new UsersError("EFILE", `${path}: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return r.data;
}

/** Writes the users file atomically with mode 0600 (the directory is made 0700 if missing). */
export function writeUsers(path: string, f: UsersFile): void {
  if (!existsSync(dirname(path))) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path + ".new", JSON.stringify(f, null, 1) + "\n", { mode: 0o600 });
  chmodSync(path + ".new", 0o600);
  renameSync(path + ".new", path);
}

export async function addUser(path: string, name: string, role: Role, password: string): Promise<void> {
  if (!USER_NAME_RE.test(name)) throw new UsersError("EINVAL", `'${name}' is not a valid user name (letters, digits, _ . @ -; at most 64)`);
  if (password.length === 0) throw new UsersError("EINVAL", "the password is empty");
  const f = readUsers(path);
  if (f.users[name]) throw new UsersError("EEXIST_USER", `user '${name}' exists (xeno user passwd/role change it)`);
  f.users[name] = { role, hash: await hashPassword(password), created: new Date().toISOString() };
  writeUsers(path, f);
}

export async function setPassword(path: string, name: string, password: string): Promise<void> {
  if (password.length === 0) throw new UsersError("EINVAL", "the password is empty");
  const f = readUsers(path);
  const u = f.users[name];
  if (!u) throw new UsersError("ENOENT_USER", `no user '${name}' (xeno user list shows them)`);
  u.hash = await hashPassword(password);
  writeUsers(path, f);
}

export function setRole(path: string, name: string, role: Role): void {
  const f = readUsers(path);
  const u = f.users[name];
  if (!u) throw new UsersError("ENOENT_USER", `no user '${name}' (xeno user list shows them)`);
  u.role = role;
  writeUsers(path, f);
}

export function removeUser(path: string, name: string): void {
  const f = readUsers(path);
  if (!f.users[name]) throw new UsersError("ENOENT_USER", `no user '${name}' (xeno user list shows them)`);
  delete f.users[name];
  writeUsers(path, f);
}

/** Who logged in, and with which role. */
export interface Principal { user: string; role: Role; via: string }

/**
 * Checks a login. Returns the principal, or null when this authenticator does not know the user or the
 * password is wrong (the next authenticator is tried; none left: SESSION_AUTHENTICATION_FAILED).
 */
export interface Authenticator {
  readonly name: string;
  authenticate(user: string, password: string): Promise<Principal | null>;
}

/** The users file. A login for an unknown user still costs one hash, so timing does not tell who exists. */
export class LocalAuthenticator implements Authenticator {
  readonly name = "local";
  private cache: { mtimeMs: number; size: number; file: UsersFile } | null = null;
  private static readonly DUMMY = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

  constructor(readonly path: string) {}

  static inDir(dir: string): LocalAuthenticator { return new LocalAuthenticator(join(dir, USERS_FILE)); }

  private users(): UsersFile {
    let st;
    try { st = statSync(this.path); } catch { return { version: 1, users: {} }; }
    if (this.cache && this.cache.mtimeMs === st.mtimeMs && this.cache.size === st.size) return this.cache.file;
    const file = readUsers(this.path);
    this.cache = { mtimeMs: st.mtimeMs, size: st.size, file };
    return file;
  }

  /** The role a user has now (null: removed): sessions follow `xeno user role/remove` at their next call. */
  roleOf(user: string): Role | null {
    const u = this.users().users[user];
    return u && isRole(u.role) ? u.role : null;
  }

  async authenticate(user: string, password: string): Promise<Principal | null> {
    const u = this.users().users[user];
    const ok = await verifyPassword(password, u?.hash ?? LocalAuthenticator.DUMMY);
    return ok && u && isRole(u.role) ? { user, role: u.role, via: this.name } : null;
  }
}
