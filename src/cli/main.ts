/**
 * `xeno` command-line entry: xl's subcommands (src/cli/xl: list, info, console, shutdown, …, talking to the
 * toolstack daemon xenod, which is started on demand) and Xeno's own (create, image, run-user). A unique
 * prefix of a subcommand runs it, as with xl; `xeno help [CMD]` describes them. Xeno's own subcommands load their
 * modules when they run (dynamic import): `run-user` then starts in ~0.1 s instead of loading the API server.
 */
import { connectXl } from "./xl/client.js";
import { runCommand, XL_COMMANDS, type Command } from "./xl/commands.js";
import { processEnv } from "./xl/env.js";

const COMMANDS: readonly Command[] = [
  {
    kind: "raw", name: "create", usage: "[-c] [-p] [-n] [-q] [-F] [-f FILE] <ConfigFile> [key=value...]",
    desc: "Create a domain from config file <filename>", raw: async (a) => (await import("./create.js")).createMain(a),
  },
  ...XL_COMMANDS,
  {
    kind: "raw", name: "image", usage: "fetch|debian [options]",
    desc: "Fetch the Debian arm64 kernel and build the guest initramfs (fetch), or a Debian root disk (debian)",
    raw: async (a) => (await import("./image.js")).imageMain(a),
  },
  {
    kind: "raw", name: "user", usage: "add NAME --role ROLE | passwd NAME | role NAME ROLE | list | remove NAME",
    desc: "Manage the XenAPI endpoint's users and their roles (password from standard input when not a terminal)", raw: async (a) => (await import("./api-admin.js")).userMain(a),
  },
  { kind: "raw", name: "audit", usage: "verify | tail [-n N]", desc: "Check or show the XenAPI endpoint's hash-chained audit log", raw: async (a) => (await import("./api-admin.js")).auditMain(a) },
  { kind: "raw", name: "run-user", usage: "[--mem MiB] PROGRAM [ARGS...]", desc: "Run a static arm64 Linux program", raw: async (a) => (await import("../user/run-user.js")).runUserMain(a) },
];

runCommand(COMMANDS, process.argv.slice(2), processEnv(connectXl)).then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`xeno: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 70;
});
