/**
 * Host programs the main commands need, installed with apt on first use (README "The main commands"):
 * `xeno create` with a vif and `xeno network-attach` need passt (the bridge's uplink to the host network);
 * `xeno image debian` needs mmdebstrap, mkfs.ext4, unshare and qemu-aarch64-static.
 *
 * When a program is missing: as root (or with sudo that needs no password) one line says what is installed
 * and why, then `apt-get install` runs (after `apt-get update` when apt does not know the package yet);
 * otherwise, or with XENO_NO_INSTALL=1, the command stops with the exact command to run. apt's own output
 * goes to stderr only when it fails (its last lines, in the error).
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** A program a command needs: its name on PATH, the Debian package with it, and what it is for. */
export interface HostTool { cmd: string; pkg: string; why: string }

export const PASST: HostTool = { cmd: "passt", pkg: "passt", why: "the network bridge's uplink to the host (vif bridge=…)" };

export class HostToolError extends Error {
  readonly code = "EHOST_TOOL";
  constructor(message: string) { super(message); this.name = "HostToolError"; }
}

/** The path of `name` on PATH or in the sbin directories (root's tools), or null. */
export function findTool(name: string, path = process.env.PATH ?? ""): string | null {
  for (const d of [...path.split(delimiter), "/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
    if (!d) continue;
    try { accessSync(join(d, name), constants.X_OK); return join(d, name); } catch { /* next */ }
  }
  return null;
}

/** How apt can be run here: as root, through sudo without a password, or not at all. */
function aptRunner(): string[] | null {
  if (typeof process.getuid === "function" && process.getuid() === 0) return [];
  if (findTool("sudo") !== null && spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0) return ["sudo", "-n"];
  return null;
}

function apt(prefix: string[], args: string[]): { ok: boolean; out: string } {
  const argv = [...prefix, "apt-get", ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" }, maxBuffer: 1 << 26,
  });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error.message) : ""}` };
}

/**
 * Makes sure every tool of `tools` is installed: installs the missing ones (saying so through `say`) or throws
 * HostToolError with the command to run. `who`: the command that needs them, for the line ("xeno create").
 */
export function ensureHostTools(tools: readonly HostTool[], who: string, say: (line: string) => void): void {
  const missing = tools.filter((t) => findTool(t.cmd) === null);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((t) => t.pkg))];
  const what = missing.map((t) => `${t.cmd}: ${t.why}`).join("; ");
  const command = `apt-get install --no-install-recommends ${pkgs.join(" ")}`;
  const runner = process.env.XENO_NO_INSTALL === "1" ? null : aptRunner();
  if (runner === null) {
    const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
    throw new HostToolError(`${missing.map((t) => t.cmd).join(", ")} is not installed (${what}); ` +
      `install it with: ${asRoot ? "" : "sudo "}${command}`);
  }
  say(`${who}: installing ${pkgs.join(" ")} with apt (${what})…`);
  const install = ["install", "-y", "-qq", "--no-install-recommends", ...pkgs];
  let r = apt(runner, install);
  // A fresh machine's apt may not have package lists yet ("Unable to locate package").
  if (!r.ok) { const u = apt(runner, ["update", "-qq"]); r = u.ok ? apt(runner, install) : u; }
  const still = missing.filter((t) => findTool(t.cmd) === null);
  if (!r.ok || still.length > 0) {
    const tail = r.out.trim().split("\n").slice(-5).join("\n");
    throw new HostToolError(`could not install ${pkgs.join(" ")} with apt` +
      `${still.length > 0 ? ` (${still.map((t) => t.cmd).join(", ")} still missing)` : ""}; run: ${runner.length > 0 ? "sudo " : ""}${command}` +
      (tail ? `\napt said:\n${tail}` : ""));
  }
}
