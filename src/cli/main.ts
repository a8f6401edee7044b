/**
 * `xeno` command-line entry: xl's subcommands (src/cli/xl: list, info, console, shutdown, …, talking to the
 * toolstack daemon xenod, which is started on demand) and Xeno's own (create, image, run-user). A unique
 * prefix of a subcommand runs it, as with xl; `xeno help [CMD]` describes them. Xeno's own subcommands load their
 * modules when they run (dynamic import), and one named in full runs without loading xl's: `xeno run-user
 * busybox true` loads 41 modules, not 189 (0.15–0.18 s of CPU instead of 0.26–0.27 s, `/usr/bin/time`).
 */
import type { Command, RawCommand } from "./xl/commands.js";

const OWN: readonly RawCommand[] = [
  {
    kind: "raw", name: "create", usage: "[-c] [-p] [-n] [-q] [-F] [-f FILE] <ConfigFile> [key=value...]",
    desc: "Create a domain from config file <filename>", raw: async (a) => (await import("./create.js")).createMain(a),
  },
  {
    kind: "raw", name: "image", usage: "fetch|debian [options]",
    desc: "Fetch the Debian arm64 kernel and build the guest initramfs (fetch), or a Debian root disk (debian; --uefi: a GPT disk for HVM domains)",
    raw: async (a) => (await import("./image.js")).imageMain(a),
  },
  {
    kind: "raw", name: "user", usage: "add NAME --role ROLE | passwd NAME | role NAME ROLE | list | remove NAME",
    desc: "Manage the XenAPI endpoint's users and their roles (password from standard input when not a terminal)", raw: async (a) => (await import("./api-admin.js")).userMain(a),
  },
  { kind: "raw", name: "audit", usage: "verify | tail [-n N]", desc: "Check or show the XenAPI endpoint's hash-chained audit log", raw: async (a) => (await import("./api-admin.js")).auditMain(a) },
  { kind: "raw", name: "run-user", usage: "[--mem MiB] PROGRAM [ARGS...]", desc: "Run a static arm64 Linux program", raw: runUser },
];

/**
 * run-user's modules come from the bundle with its V8 code cache when the build made one (bundle-loader.ts:
 * busybox true 0.28 s of CPU instead of 0.39, docs/cpu-internals.md "Start-up of `xeno run-user`"), else as ES
 * modules. XENO_BUNDLE=0 forces the latter.
 */
async function runUser(a: string[]): Promise<number> {
  if (process.env.XENO_BUNDLE !== "0") {
    const b = (await import("./bundle-loader.js")).loadRunUserBundle();
    if (b !== null) {
      const code = await b.mod.runUserMain(a);
      b.saveCache();
      return code;
    }
  }
  return (await import("../user/run-user.js")).runUserMain(a);
}

async function main(argv: readonly string[]): Promise<number> {
  const own = OWN.find((c) => c.name === argv[0]);
  if (own !== undefined) return own.raw(argv.slice(1));
  const [{ connectXl }, { runCommand, XL_COMMANDS }, { processEnv }] =
    await Promise.all([import("./xl/client.js"), import("./xl/commands.js"), import("./xl/env.js")]);
  const table: readonly Command[] = [OWN[0]!, ...XL_COMMANDS, ...OWN.slice(1)];
  return runCommand(table, argv, processEnv(connectXl));
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`xeno: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 70;
});
