/** `xeno` command-line entry: dispatches to subcommands. */
import { createMain } from "./create.js";
import { imageMain } from "./image.js";
import { runUserMain } from "../user/run-user.js";

const USAGE = `usage: xeno COMMAND [ARGS...]
  create [-c] [-p] [-n] [-q] CONFIGFILE [key=value...]   create a domain from an xl.cfg file (foreground; -c: console)
  image fetch [--dir DIR] [--force] [--quiet] [--json]  fetch the Debian arm64 kernel and build the guest initramfs
  run-user PROGRAM [ARGS...]                           run a static arm64 Linux program
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "create":
      return createMain(rest);
    case "image":
      return imageMain(rest);
    case "run-user":
      return runUserMain(rest);
    case "console":
    case "list":
    case "destroy":
    case "shutdown":
    case "reboot":
    case "pause":
    case "unpause":
      process.stderr.write(`xeno ${cmd}: needs the toolstack daemon (xenod), which does not exist yet; ` +
        "for now a domain lives in its 'xeno create' process (use 'xeno create -c' for its console)\n");
      return 1;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`xeno: unknown command '${cmd}' (try 'xeno help')\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`xeno: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 70;
});
