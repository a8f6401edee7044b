/**
 * Where a bridge daemon lives: `${XENO_RUN_DIR:-/run/xeno}/net/<bridge>.sock` (its socket), `.pid` (the
 * daemon's pid, informational), `.lock` (held for a moment while a daemon replaces a stale socket), `.log`
 * (the output of a daemon ensureBridge started) and `.uplink` (the state of its passt uplink: uplink-status.ts).
 */

import { join } from "node:path";
import { NetError } from "./errors.js";

export const DEFAULT_RUN_DIR = "/run/xeno";

/** Bridge names as Linux allows interface names (IFNAMSIZ 16 with the NUL), restricted to a portable set, which
 * also keeps them from escaping the directory. */
export function checkBridgeName(name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name) || name === "." || name === "..") {
    throw new NetError("NET_BAD_NAME", `bad bridge name '${name}': 1-15 characters of A-Z a-z 0-9 _ . -`);
  }
  return name;
}

/** The directory holding bridge sockets: $XENO_RUN_DIR/net, default /run/xeno/net. */
export function bridgeDir(env: NodeJS.ProcessEnv = process.env, runDir?: string): string {
  return join(runDir ?? (env["XENO_RUN_DIR"] || DEFAULT_RUN_DIR), "net");
}

export function bridgeSocketPath(name: string, env: NodeJS.ProcessEnv = process.env, runDir?: string): string {
  return join(bridgeDir(env, runDir), `${checkBridgeName(name)}.sock`);
}

/** `<socket path without .sock>.<ext>`: the pid, lock, log and uplink-state files next to a socket. */
export function siblingPath(socketPath: string, ext: "pid" | "lock" | "log" | "uplink"): string {
  return `${socketPath.replace(/\.sock$/, "")}.${ext}`;
}
