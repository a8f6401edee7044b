/**
 * ensureHostTools (src/images/host-packages.ts): a present tool needs nothing; a missing one is installed with
 * apt after one line saying what and why, or the command stops with the exact apt-get command. The apt-get
 * run here is a stand-in script first on PATH (the real one would change this machine): it records its
 * arguments and installs (creates) the tool, or fails like apt does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureHostTools, findTool, HostToolError } from "../../src/images/host-packages.js";

const TOOL = { cmd: "xeno-test-no-such-tool", pkg: "xeno-test-pkg", why: "the test's reason" };
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

function withFakeApt(script: string, f: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "xeno-apt-"));
  const saved = { PATH: process.env.PATH, NO: process.env.XENO_NO_INSTALL };
  try {
    writeFileSync(join(dir, "apt-get"), `#!/bin/sh\necho "$*" >> ${dir}/log\n${script}\n`);
    chmodSync(join(dir, "apt-get"), 0o755);
    process.env.PATH = `${dir}:${saved.PATH}`;
    delete process.env.XENO_NO_INSTALL;
    f(dir);
  } finally {
    process.env.PATH = saved.PATH;
    if (saved.NO === undefined) delete process.env.XENO_NO_INSTALL; else process.env.XENO_NO_INSTALL = saved.NO;
    rmSync(dir, { recursive: true, force: true });
  }
}

test("host tools: present → nothing; XENO_NO_INSTALL=1 → the exact apt-get command", () => {
  const lines: string[] = [];
  ensureHostTools([{ cmd: "sh", pkg: "dash", why: "x" }], "xeno test", (l) => lines.push(l));
  assert.deepEqual(lines, []);
  assert.equal(findTool(TOOL.cmd), null);
  withFakeApt("exit 0", (dir) => {
    process.env.XENO_NO_INSTALL = "1";
    const said: string[] = [];
    assert.throws(() => ensureHostTools([TOOL], "xeno test", (l) => said.push(l)), (e: unknown) =>
      e instanceof HostToolError && e.message === `${TOOL.cmd} is not installed (${TOOL.cmd}: the test's reason); ` +
        `install it with: ${isRoot ? "" : "sudo "}apt-get install --no-install-recommends xeno-test-pkg`);
    assert.equal(existsSync(join(dir, "log")), false, "apt-get not run");
    assert.deepEqual(said, []);
  });
});

test("host tools: missing → one line, apt-get install (update first when apt does not know it), then found", { skip: isRoot ? false : "needs root (or sudo) to reach apt" }, () => {
  withFakeApt(`case "$*" in
  *update*) touch ${"$(dirname $0)"}/updated ;;
  *install*) [ -e "$(dirname $0)/updated" ] || { echo "E: Unable to locate package xeno-test-pkg" >&2; exit 100; }
             printf '#!/bin/sh\\n' > "$(dirname $0)/${TOOL.cmd}"; chmod +x "$(dirname $0)/${TOOL.cmd}" ;;
esac`, (dir) => {
    const lines: string[] = [];
    ensureHostTools([TOOL], "xeno test", (l) => lines.push(l));
    assert.deepEqual(lines, [`xeno test: installing xeno-test-pkg with apt (${TOOL.cmd}: the test's reason)…`]);
    assert.deepEqual(readFileSync(join(dir, "log"), "utf8").trim().split("\n"), [
      "install -y -qq --no-install-recommends xeno-test-pkg", "update -qq", "install -y -qq --no-install-recommends xeno-test-pkg",
    ]);
    assert.equal(findTool(TOOL.cmd), join(dir, TOOL.cmd));
  });
});

test("host tools: apt fails → the command to run and apt's last lines", { skip: isRoot ? false : "needs root (or sudo) to reach apt" }, () => {
  withFakeApt(`echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2; exit 100`, () => {
    assert.throws(() => ensureHostTools([TOOL], "xeno test", () => {}), (e: unknown) =>
      e instanceof HostToolError && e.message.startsWith("could not install xeno-test-pkg with apt (xeno-test-no-such-tool still missing); " +
        "run: apt-get install --no-install-recommends xeno-test-pkg\napt said:\n") && /Could not get lock/.test(e.message));
  });
});
