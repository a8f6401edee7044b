/**
 * A throw-away unprivileged user for tests that need one (root reads every file and connects to every socket):
 * created with useradd, removed with userdel. useradd takes /etc/passwd's lock, so two test files creating users
 * at the same moment (the test command runs two at once) retry instead of failing.
 */
import { execFileSync, spawnSync } from "node:child_process";

export interface ProbeUser { name: string; uid: number; gid: number; remove(): void }

export async function createProbeUser(prefix: string): Promise<ProbeUser> {
  const name = `${prefix}${process.pid % 100000}`;
  for (let attempt = 1; ; attempt++) {
    const r = spawnSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], { encoding: "utf8" });
    if (r.status === 0 || /already exists/.test(r.stderr)) break;
    if (attempt >= 20) throw new Error(`useradd ${name}: ${r.stderr || r.error?.message}`);
    await new Promise((res) => setTimeout(res, 250)); // another useradd holds the lock
  }
  const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim());
  return {
    name, uid, gid,
    remove(): void {
      for (let attempt = 0; attempt < 20; attempt++) {
        if (spawnSync("userdel", [name], { stdio: "ignore" }).status === 0) return;
        spawnSync("sleep", ["0.25"]);
      }
    },
  };
}
