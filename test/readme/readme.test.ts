/**
 * The README's example sessions, run. The commands of every `console` block under "## Example sessions" are
 * parsed from README.md (`$ ` host commands, with a heredoc's lines; `/ # ` guest commands; trailing
 * `  # comments` dropped) and must equal, in order, the list this test runs — so a README edit that changes a
 * command fails here until the test runs the new one, and each command is run and its output checked.
 *
 * How they run: host commands with bash in a scratch directory holding links to the checkout's bin/, examples/
 * and scripts/ (so `my.cfg` lands there, not in the checkout), under a private XENO_RUN_DIR (its own xenod,
 * hypervisor and bridge); guest commands are typed on the console of the last `create -c`/`console`. Two
 * substitutions, so parallel runs do not collide: `/tmp/` is the scratch directory, and the host port 8000
 * (the README's web server on the host) is a free port this test serves "hello from the host" on.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureImages } from "../../src/images/index.js";
import { linkStableImages } from "../../src/images/stable-links.js";
import { ROOT } from "../machine/cli-domain.js";

const BOOT_MS = 8 * 60_000;

/** The README's session commands: "$ cmd" (host) and "/ # cmd" (guest), in order. */
export function readmeCommands(readme: string): string[] {
  const start = readme.indexOf("\n## Example sessions");
  assert.ok(start >= 0, "README has no '## Example sessions' section");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const out: string[] = [];
  const strip = (c: string): string => c.replace(/\s{2,}#\s.*$/, "").trimEnd();
  for (const m of section.matchAll(/```console\n([\s\S]*?)```/g)) {
    const lines = m[1]!.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      if (l.startsWith("$ ")) {
        let cmd = strip(l.slice(2));
        const here = /<<'?(\w+)'?/.exec(cmd);
        if (here) { while (++i < lines.length) { cmd += "\n" + lines[i]; if (lines[i] === here[1]) break; } }
        out.push(`$ ${cmd}`);
      } else if (l.startsWith("/ # ")) {
        out.push(`/ # ${strip(l.slice(4))}`);
      }
    }
  }
  return out;
}

test("README example sessions: the commands run as written and print what the README shows", {
  timeout: 30 * 60_000, skip: spawnSync("passt", ["--version"]).error !== undefined ? "passt is not installed (apt-get install passt)" : false,
}, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  await linkStableImages(images.cacheDir);
  const work = mkdtempSync(join(tmpdir(), "xeno-readme-"));
  for (const d of ["bin", "examples", "scripts"]) symlinkSync(join(ROOT, d), join(work, d));
  const run = join(work, "run");
  const env = { ...process.env, XENO_RUN_DIR: run };
  const http = createServer((_q, r) => r.end("hello from the host\n"));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const port = (http.address() as AddressInfo).port;
  const subst = (cmd: string): string => cmd.replaceAll("/tmp/", `${work}/`).replaceAll(":8000/", `:${port}/`);
  const sh = (cmd: string, extraEnv: Record<string, string> = {}) => {
    const r = spawnSync("bash", ["-c", subst(cmd)], { cwd: work, env: { ...env, ...extraEnv }, encoding: "utf8", timeout: 300_000 });
    assert.equal(r.status, 0, `${cmd}\n${r.stderr}`);
    return r;
  };
  let con: { child: ChildProcess; out: string; err: string } | null = null;
  const attach = (cmd: string) => {
    const child = spawn("bash", ["-c", `exec ${subst(cmd)}`], { cwd: work, env, stdio: ["pipe", "pipe", "pipe"] });
    const c = { child, out: "", err: "" };
    child.stdout!.setEncoding("latin1").on("data", (d: string) => { c.out += d; });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => { c.err += d; });
    con = c;
    return c;
  };
  const waitOut = async (re: RegExp, from: number, ms: number, what: string): Promise<string> => {
    const c = con!;
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(c.out.slice(from));
      if (m) return m[0];
      if (c.child.exitCode !== null) assert.fail(`${what}: exited ${c.child.exitCode}\n${c.err}\n${c.out.slice(-2000)}`);
      if (Date.now() > end) assert.fail(`${what}: not seen\n${c.err}\n${c.out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const guest = async (cmd: string, re: RegExp, ms = 240_000): Promise<void> => {
    const from = con!.out.length;
    con!.child.stdin!.write(cmd + "\n");
    await waitOut(re, from, ms, `guest: ${cmd}`);
  };
  const detach = async (): Promise<void> => {
    const c = con!;
    c.child.stdin!.write("\x1d");
    const code = c.child.exitCode ?? await new Promise<number | null>((r) => c.child.once("exit", r));
    assert.equal(code, 0, c.err);
  };
  let bb = "";

  const steps: [string, () => Promise<void> | void][] = [
    ["$ ./bin/xeno create -c examples/demo.cfg", async () => {
      attach("./bin/xeno create -c examples/demo.cfg");
      await waitOut(/XENO-GUEST-READY/, 0, BOOT_MS, "boot");
      assert.match(con!.err, /^Parsing config from examples\/demo\.cfg\nStarted domain demo \(id=1\)\n/);
      assert.match(con!.out, /^\[ +0\.000000\] Booting Linux on physical CPU 0x0000000000 /);
      assert.match(con!.out, /\[ +0\.000000\] Xen 4\.17 support found/);
    }],
    ["/ # cat /sys/hypervisor/type; echo $((6*7))", () => guest("cat /sys/hypervisor/type; echo $((6*7))", /\nxen\r?\n42\r?\n/)],
    ["/ # ^]", detach],
    ["$ ./bin/xeno list", () => {
      const r = sh("./bin/xeno list");
      const lines = r.stdout.split("\n");
      assert.equal(lines[0], "Name                                        ID   Mem VCPUs\tState\tTime(s)");
      assert.match(lines[1]!, /^Domain-0 {37}0 +\d+ +\d+ {5}r----- +\d+\.\d$/);
      assert.match(lines[2]!, /^demo {41}1 +256 {5}1 {5}[-r][-b]---- +\d+\.\d$/);
    }],
    ["$ ./bin/xeno mem-set demo 128", () => { sh("./bin/xeno mem-set demo 128"); }],
    ["$ ./bin/xeno console demo", async () => {
      attach("./bin/xeno console demo");
      await waitOut(/XENO-GUEST-READY/, 0, 30_000, "replayed output");
      await detach();
    }],
    ["$ ./bin/xeno shutdown -w demo", () => {
      const t0 = Date.now();
      const r = sh("./bin/xeno shutdown -w demo");
      assert.ok(Date.now() - t0 < 30_000, `shutdown -w took ${Date.now() - t0} ms`);
      assert.match(r.stderr, /^Shutting down domain 1\nWaiting for 1 domains\nDomain 1 has been (shut down, reason code 0|destroyed)\n$/);
    }],
    ["$ XENSTORED_PATH=$(./bin/xeno info xenstored_socket) xenstore-ls /local/domain", () => {
      const r = sh("XENSTORED_PATH=$(./bin/xeno info xenstored_socket) xenstore-ls /local/domain");
      assert.match(r.stdout, /^0 = ""/m);
    }],
    ["$ ./bin/xeno create -n examples/demo.cfg", () => {
      const j = JSON.parse(sh("./bin/xeno create -n examples/demo.cfg").stdout) as { c_info: { name: string }; b_info: { max_memkb: number } };
      assert.equal(j.c_info.name, "demo");
      assert.equal(j.b_info.max_memkb, 256 * 1024);
    }],
    ["$ ./bin/xeno image fetch", () => {
      const r = sh("./bin/xeno image fetch");
      assert.match(r.stdout, /^kernel {2}\/.*\/Image \(/m);
      assert.match(r.stdout, /^initrd {2}\/.*\.cpio\.gz \(/m);
    }],

    ["$ truncate -s 64M /tmp/data.img /tmp/ro.img", () => { sh("truncate -s 64M /tmp/data.img /tmp/ro.img"); }],
    [`$ cp examples/demo.cfg my.cfg && cat >> my.cfg <<'CFG'
disk = [ 'format=raw, vdev=xvdb, access=rw, target=/tmp/data.img', '/tmp/ro.img,raw,xvdc,ro' ]
vif = [ 'mac=00:16:3e:00:00:0a, bridge=xenbr0' ]
CFG`, () => {
      sh(`cp examples/demo.cfg my.cfg && cat >> my.cfg <<'CFG'
disk = [ 'format=raw, vdev=xvdb, access=rw, target=/tmp/data.img', '/tmp/ro.img,raw,xvdc,ro' ]
vif = [ 'mac=00:16:3e:00:00:0a, bridge=xenbr0' ]
CFG`);
    }],
    ["$ ./bin/xeno create -c my.cfg", async () => {
      attach("./bin/xeno create -c my.cfg");
      await waitOut(/XENO-GUEST-READY/, 0, BOOT_MS, "boot with disks and a vif");
    }],
    ["/ # dd if=/dev/zero of=/dev/xvdb bs=1M count=8 conv=fsync", () =>
      guest("dd if=/dev/zero of=/dev/xvdb bs=1M count=8 conv=fsync", /8\+0 records out/)],
    ["/ # ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2", () =>
      guest("ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2; echo IP-$((1+1))-SET", /IP-2-SET/)],
    ["/ # wget -O - http://10.0.2.2:8000/", async () => {
      await guest(subst("wget -O - http://10.0.2.2:8000/"), /hello from the host/, 120_000);
      sh("./bin/xeno destroy demo");
      await new Promise<void>((r) => (con!.child.exitCode !== null ? r() : con!.child.once("exit", () => r())));
    }],

    ["$ scripts/fetch-busybox.sh", () => {
      const r = sh("scripts/fetch-busybox.sh");
      assert.match(r.stdout, /busybox-static-arm64\/bin\/busybox\n$/);
      assert.ok(existsSync(r.stdout.trim()));
    }],
    ["$ BB=$(scripts/fetch-busybox.sh)", () => { bb = sh("scripts/fetch-busybox.sh").stdout.trim(); }],
    ["$ seq 1 100 | ./bin/xeno run-user $BB sort -rn | head -1", () => {
      assert.equal(sh("seq 1 100 | ./bin/xeno run-user $BB sort -rn | head -1", { BB: bb }).stdout, "100\n");
    }],
    ["$ echo 'scale=20; 4*a(1)' | ./bin/xeno run-user $BB bc -l", () => {
      assert.equal(sh("echo 'scale=20; 4*a(1)' | ./bin/xeno run-user $BB bc -l", { BB: bb }).stdout, "3.14159265358979323844\n");
    }],
    ["$ aarch64-linux-gnu-gcc -static -O2 -o /tmp/hello examples/hello.c && ./bin/xeno run-user /tmp/hello", () => {
      assert.equal(sh("aarch64-linux-gnu-gcc -static -O2 -o /tmp/hello examples/hello.c && ./bin/xeno run-user /tmp/hello").stdout,
        "hello from an arm64 program\n");
    }],
    ["$ XENO_STATS=1 ./bin/xeno run-user $BB sha256sum examples/demo.cfg", () => {
      const r = sh("XENO_STATS=1 ./bin/xeno run-user $BB sha256sum examples/demo.cfg", { BB: bb });
      const want = createHash("sha256").update(readFileSync(join(ROOT, "examples/demo.cfg"))).digest("hex");
      assert.equal(r.stdout, `${want}  examples/demo.cfg\n`);
      assert.match(r.stderr, /^xeno-stats: instructions=\d+ seconds=[\d.]+ mips=[\d.]+ jit-blocks=\d+ jit-modules=\d+ jit-compile-ms=[\d.]+ jit-failed=0 slow-reads=\d+ slow-writes=\d+$/m);
    }],
  ];

  try {
    assert.deepEqual(readmeCommands(readFileSync(join(ROOT, "README.md"), "utf8")), steps.map(([c]) => c),
      "README.md's example-session commands changed: update test/readme/readme.test.ts to run the new ones");
    for (const [cmd, f] of steps) {
      process.stderr.write(`# ${cmd.split("\n")[0]}\n`);
      await f();
    }
  } finally {
    if (con !== null) (con as { child: ChildProcess }).child.kill();
    http.close();
    for (const f of ["xenod.pid", "hv.pid"]) {
      const pf = join(run, f);
      if (existsSync(pf)) { try { process.kill(Number(readFileSync(pf, "utf8").trim()), "SIGTERM"); } catch { /* gone */ } }
    }
    await new Promise((r) => setTimeout(r, 1500));
    rmSync(work, { recursive: true, force: true });
  }
});
