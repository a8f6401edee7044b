/**
 * The state of a bridge's uplink, for the commands that join the bridge. The daemon runs detached, its output
 * going to `<run>/net/<bridge>.log`, so a command that started it (`xeno create`, `network-attach`, through
 * xenod and the hypervisor process) cannot see what it logs. The daemon therefore keeps one small JSON file,
 * `<run>/net/<bridge>.uplink`, next to its socket: written when it claims the socket (before the socket appears,
 * so a client that can connect can read it) and whenever passt's state changes; removed with the socket. A
 * command reads it after joining and prints one line when the uplink is not up (uplinkNotice).
 */

import { readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { bridgeSocketPath, siblingPath } from "./paths.js";

/**
 * - up: passt answers;
 * - starting: a passt is starting (first start or a restart after it exited);
 * - down: passt exited or did not answer; the daemon restarts it with backoff (detail: why);
 * - missing: no passt binary; the daemon looks for it every `retryMs` and starts it once it is installed;
 * - none: the bridge was started without an uplink (--uplink none): a host-only segment, on purpose.
 */
export type UplinkState = "up" | "starting" | "down" | "missing" | "none";

export interface UplinkStatus {
  state: UplinkState;
  /** For down and missing: what is wrong, in a few words. */
  detail?: string;
  /** For missing: how often the daemon looks for passt. */
  retryMs?: number;
  /** The daemon's pid (whose file this is). */
  pid: number;
  /** ISO time of the change. */
  since: string;
}

/** Writes the file atomically (a reader sees the old state or the new one, never half of one). */
export function writeUplinkStatus(socketPath: string, s: Omit<UplinkStatus, "pid" | "since">): void {
  const path = siblingPath(socketPath, "uplink");
  const tmp = `${path}.${process.pid}.tmp`;
  const full: UplinkStatus = { ...s, pid: process.pid, since: new Date().toISOString() };
  writeFileSync(tmp, `${JSON.stringify(full)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

/** Removes the file if it is this process's (another daemon may own the bridge by now). */
export function removeUplinkStatus(socketPath: string): void {
  const path = siblingPath(socketPath, "uplink");
  if (readUplinkStatusAt(path)?.pid !== process.pid) return;
  try { unlinkSync(path); } catch { /* gone */ }
}

function readUplinkStatusAt(path: string): UplinkStatus | undefined {
  try {
    const s = JSON.parse(readFileSync(path, "utf8")) as UplinkStatus;
    return typeof s === "object" && s !== null && typeof s.state === "string" ? s : undefined;
  } catch {
    return undefined;
  }
}

export function readUplinkStatus(socketPath: string): UplinkStatus | undefined {
  return readUplinkStatusAt(siblingPath(socketPath, "uplink"));
}

/**
 * One line for the terminal of a command that joined `bridge`, when its uplink is not up; undefined when it is
 * up, when the bridge has no uplink on purpose, or when there is no state to read (no daemon, or one older than
 * this file).
 */
export function uplinkNotice(bridge: string, who: string, opts: { runDir?: string; env?: NodeJS.ProcessEnv } = {}): string | undefined {
  let sock: string;
  try { sock = bridgeSocketPath(bridge, opts.env ?? process.env, opts.runDir); } catch { return undefined; }
  const s = readUplinkStatus(sock);
  if (s === undefined) return undefined;
  const log = siblingPath(sock, "log");
  switch (s.state) {
    case "up":
    case "none":
      return undefined;
    case "missing":
      return `${who}: bridge ${bridge} has no uplink to the host network: passt is not installed ` +
        `(install it with: apt-get install --no-install-recommends passt); the bridge looks for it every ` +
        `${(s.retryMs ?? 10_000) / 1000} s and connects once it is there (log ${log})`;
    case "starting":
    case "down":
      return `${who}: bridge ${bridge}'s uplink to the host network (passt) is not up` +
        `${s.detail === undefined ? "" : `: ${s.detail}`}; the bridge keeps retrying (log ${log})`;
    default:
      return undefined;
  }
}
