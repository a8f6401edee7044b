/**
 * Starting a daemon detached (the hypervisor from xenod, xenod from the CLI) and waiting until its socket
 * answers; a daemon that exits or stays silent is reported with the tail of its log.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { ensurePrivateDir } from "../common/private-socket.js";
import type { Socket } from "node:net";
import { connectUnix, isNotListening, ToolstackError } from "./wire.js";

/** The run directory: $XENO_RUN_DIR, else /run/xeno. */
export function defaultRunDir(): string {
  return process.env.XENO_RUN_DIR || "/run/xeno";
}

/**
 * Creates the run directory if needed and makes it 0700 whatever the umask or its earlier mode: the sockets
 * inside give root's powers (src/common/private-socket.ts).
 */
export function ensureRunDir(dir: string): void {
  ensurePrivateDir(dir);
}

/** The last `lines` lines of a log file ("" when unreadable). */
export function logTail(path: string, lines = 25): string {
  try {
    const text = readFileSync(path, "utf8").trimEnd();
    return text.split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Runs `node script args…` in its own session (detached, unref'd) with stdout and stderr appended to `logPath`,
 * so that it outlives the caller; `env`: its environment (default this process's).
 */
export function spawnDetached(script: string, args: readonly string[], logPath: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const fd = openSync(logPath, "a", 0o600);
  try {
    const child = spawn(process.execPath, [script, ...args], { detached: true, stdio: ["ignore", fd, fd], env });
    child.on("error", () => { /* reported by waitForSocket as an exit */ });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/**
 * Polls `path` until a connection succeeds (resolving with it) — failing with ESTART and the log's tail when
 * `child` exits first or `timeoutMs` passes.
 */
export async function waitForSocket(path: string, opts: { timeoutMs: number; child?: ChildProcess; logPath: string; what: string }): Promise<Socket> {
  const deadline = Date.now() + opts.timeoutMs;
  let exited: string | null = null;
  const onExit = (code: number | null, signal: NodeJS.Signals | null): void => { exited = signal ? `signal ${signal}` : `code ${code}`; };
  const onError = (e: Error): void => { exited = `spawn error: ${e.message}`; };
  opts.child?.once("exit", onExit);
  opts.child?.once("error", onError);
  try {
    for (let delay = 50; ; delay = Math.min(delay * 2, 250)) {
      try {
        return await connectUnix(path);
      } catch (e) {
        if (!isNotListening(e)) throw new ToolstackError("ESTART", `cannot connect to ${opts.what} at ${path}: ${(e as Error).message}`, { cause: e });
      }
      const fail = (why: string): never => {
        const tail = logTail(opts.logPath);
        throw new ToolstackError("ESTART", `${opts.what} ${why}` + (tail ? `; last lines of ${opts.logPath}:\n${tail}` : ` (${opts.logPath} is empty)`));
      };
      if (exited !== null) fail(`exited (${exited}) before answering on ${path}`);
      if (Date.now() >= deadline) fail(`did not answer on ${path} within ${Math.round(opts.timeoutMs / 1000)} s`);
      await new Promise((r) => setTimeout(r, delay));
    }
  } finally {
    opts.child?.off("exit", onExit);
    opts.child?.off("error", onError);
  }
}
