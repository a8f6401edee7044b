/** Shared by the CLI boot tests: a `xeno create -c` child process driven through its console pipes. */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../..", import.meta.url)); // dist/test/machine → repo root
export const CLI = join(ROOT, "dist", "src", "cli", "main.js");
export const CMD_MS = 120_000;

/** A `xeno create -c` child with its console on pipes. */
export class Domain {
  readonly child: ChildProcess;
  out = "";
  err = "";
  private waiters: (() => void)[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], env?: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [CLI, "create", "--standalone", "-c", ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
    this.child.stdout!.setEncoding("latin1");
    this.child.stderr!.setEncoding("utf8");
    this.child.stdout!.on("data", (s: string) => { this.out += s; this.wake(); });
    this.child.stderr!.on("data", (s: string) => { this.err += s; this.wake(); });
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => { this.wake(); resolve({ code, signal }); }));
  }

  private wake(): void { for (const w of this.waiters.splice(0)) w(); }

  /** Waits until `re` matches the console output after offset `from`; returns the match and where it ended. */
  async waitFor(re: RegExp, from: number, ms: number, what: string): Promise<{ m: RegExpExecArray; end: number }> {
    const deadline = Date.now() + ms;
    for (;;) {
      const g = new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g");
      g.lastIndex = from;
      const m = g.exec(this.out);
      if (m) return { m, end: m.index + m[0].length };
      if (/Kernel panic - not syncing/.test(this.out.slice(from))) assert.fail(`${what}: the guest kernel panicked\n${this.tail()}`);
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        assert.fail(`${what}: xeno create exited (${this.child.exitCode ?? this.child.signalCode}) first\n${this.tail()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`${what}: not seen within ${ms / 1000} s\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Types a command line and waits for an output line matching `re` (after the command was sent). */
  async run(cmd: string, re: RegExp, ms = CMD_MS): Promise<RegExpExecArray> {
    const from = this.out.length;
    this.child.stdin!.write(cmd + "\n");
    return (await this.waitFor(re, from, ms, `output of '${cmd}'`)).m;
  }

  tail(): string { return `--- console (last 1500 chars) ---\n${this.out.slice(-1500)}\n--- stderr ---\n${this.err}`; }

  async ended(ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`xeno create did not exit within ${ms / 1000} s\n${this.tail()}`)), ms); });
    try { return await Promise.race([this.exited, timeout]); } finally { clearTimeout(t); }
  }

  kill(): void { if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL"); }
}

