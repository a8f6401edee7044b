/** `xeno` command-line entry: dispatches to subcommands. */
import { runUserMain } from "../user/run-user.js";

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "run-user":
      return runUserMain(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write("usage: xeno run-user PROGRAM [ARGS...]   run a static arm64 Linux program\n");
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
