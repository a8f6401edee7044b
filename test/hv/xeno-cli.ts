/** The `xeno` CLI as the save/restore and migration tests run it: against the run directory `dir`. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** dist/src/cli/main.js of this checkout. */
export const CLI = join(fileURLToPath(new URL("../../..", import.meta.url)), "dist/src/cli/main.js");

/** Runs `xeno ARGS` with XENO_RUN_DIR=dir; resolves with its exit code and output once it exits. */
export function xeno(dir: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, XENO_RUN_DIR: dir }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (b: Buffer) => { out += b.toString(); });
    p.stderr.on("data", (b: Buffer) => { err += b.toString(); });
    p.on("exit", (code) => resolve({ code, out, err }));
  });
}
