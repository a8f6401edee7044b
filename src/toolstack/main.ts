/**
 * `xenod` entry: node dist/src/toolstack/main.js [--run-dir DIR] [--foreground]
 *
 * Without --foreground it starts itself detached (log DIR/xenod.log), waits until its socket answers and exits
 * 0 (or with the child's exit status and the log's tail). With --foreground it serves in this process and logs
 * to stderr. Exit status: 0 stopped by SIGTERM/SIGINT (or detached start done), 1 could not start (the
 * hypervisor did not come up, …), 2 usage, 3 another xenod serves DIR.
 */
import { unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { XENOD_SOCKET } from "../hv/protocol.js";
import { formatLogLine, type LogLevel } from "../common/log.js";
import { XENOD_LOG, XENOD_START_TIMEOUT_MS } from "./client.js";
import { Xenod, XenodInUseError } from "./daemon.js";
import { defaultRunDir, ensureRunDir, spawnDetached, waitForSocket } from "./spawn.js";
import { connectUnix } from "./wire.js";
import { DEFAULT_API_DIR, DEFAULT_LISTEN, parseListen, type ListenAddress } from "../api/server.js";

const USAGE = `usage: xenod [--run-dir DIR] [--foreground]
  --run-dir DIR   run directory with hv.sock and xenod.sock (default $XENO_RUN_DIR, else /run/xeno)
  --foreground    serve in this process, log to stderr (default: start detached, log DIR/xenod.log)
  --hv PATH       hypervisor entry point to start when none listens (default dist/src/hv/main.js)
  --api-listen L  the XenAPI endpoint's addresses: comma-separated http://HOST:PORT and https://HOST:PORT, or
                  none (default $XENO_API_LISTEN, else ${DEFAULT_LISTEN})
  --api-dir DIR   API users, audit log and TLS certificate (default $XENO_API_DIR, else ${DEFAULT_API_DIR})
`;

const EXIT_OK = 0, EXIT_START = 1, EXIT_USAGE = 2, EXIT_IN_USE = 3;
const XENOD_PID = "xenod.pid";

function log(line: string, level: LogLevel = "info"): void {
  process.stderr.write(formatLogLine(level, "xenod", line));
}

interface Args { runDir: string; foreground: boolean; hvMain?: string; apiListen: string; apiDir: string }

function parseArgs(argv: string[]): Args | string {
  const a: Args = { runDir: defaultRunDir(), foreground: false, apiListen: process.env.XENO_API_LISTEN ?? DEFAULT_LISTEN, apiDir: process.env.XENO_API_DIR || DEFAULT_API_DIR };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string | undefined => argv[++i];
    if (arg === "--foreground" || arg === "-F") a.foreground = true;
    else if (arg === "--run-dir" || arg === "--hv" || arg === "--api-listen" || arg === "--api-dir") {
      const v = value();
      if (v === undefined || (v === "" && arg !== "--api-listen")) return `${arg} needs a value`;
      if (arg === "--run-dir") a.runDir = v; else if (arg === "--hv") a.hvMain = v; else if (arg === "--api-dir") a.apiDir = v; else a.apiListen = v;
    } else if (arg.startsWith("--run-dir=")) a.runDir = arg.slice("--run-dir=".length);
    else if (arg === "--help" || arg === "-h") return "";
    else return `unknown argument '${arg}'`;
  }
  return a;
}

async function runForeground(a: Args): Promise<number> {
  let xenod: Xenod;
  try {
    const listen = parseListen(a.apiListen) as ListenAddress[];
    xenod = await Xenod.start({ runDir: a.runDir, log, hvMain: a.hvMain, api: { listen, apiDir: a.apiDir } });
  } catch (e) {
    if (e instanceof XenodInUseError) {
      process.stderr.write(`xenod: ${e.message} (socket in use); not starting a second one\n`);
      return EXIT_IN_USE;
    }
    process.stderr.write(`xenod: cannot start: ${(e as Error).message}\n`);
    return EXIT_START;
  }
  const pidFile = join(a.runDir, XENOD_PID);
  try { writeFileSync(pidFile, `${process.pid}\n`); } catch { /* informative only */ }
  log(`serving ${xenod.socketPath} (pid ${process.pid}); hypervisor at ${xenod.hv.socketPath}`);
  return await new Promise<number>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      log(`${sig}: stopping (domains keep running in the hypervisor)`);
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      void xenod.stop().then(() => {
        try { unlinkSync(pidFile); } catch { /* gone */ }
        resolve(EXIT_OK);
      });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

async function runDetached(a: Args): Promise<number> {
  const sockPath = join(a.runDir, XENOD_SOCKET);
  try {
    (await connectUnix(sockPath)).destroy();
    process.stderr.write(`xenod: another xenod is already serving ${sockPath}\n`);
    return EXIT_IN_USE;
  } catch { /* nothing answers: start one */ }
  try { ensureRunDir(a.runDir); } catch (e) { process.stderr.write(`xenod: cannot start: ${(e as Error).message}\n`); return EXIT_START; }
  const logPath = join(a.runDir, XENOD_LOG);
  const args = ["--run-dir", a.runDir, "--foreground", "--api-listen", a.apiListen, "--api-dir", a.apiDir, ...(a.hvMain ? ["--hv", a.hvMain] : [])];
  const child = spawnDetached(fileURLToPath(import.meta.url), args, logPath);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  try {
    (await waitForSocket(sockPath, { timeoutMs: XENOD_START_TIMEOUT_MS, child, logPath, what: "xenod" })).destroy();
  } catch (e) {
    const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 100))]);
    process.stderr.write(`xenod: ${(e as Error).message}\n`);
    return code === EXIT_IN_USE ? EXIT_IN_USE : EXIT_START;
  }
  process.stderr.write(`xenod: started (pid ${child.pid}), serving ${sockPath}, log ${logPath}\n`);
  return EXIT_OK;
}

async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv);
  if (typeof a !== "string" && typeof parseListen(a.apiListen) === "string") {
    process.stderr.write(`xenod: --api-listen: ${parseListen(a.apiListen) as string}\n`);
    return EXIT_USAGE;
  }
  if (typeof a === "string") {
    if (a) process.stderr.write(`xenod: ${a}\n`);
    (a ? process.stderr : process.stdout).write(USAGE);
    return a ? EXIT_USAGE : EXIT_OK;
  }
  return a.foreground ? runForeground(a) : runDetached(a);
}

main(process.argv.slice(2)).then((code) => { process.exit(code); }, (e: unknown) => {
  process.stderr.write(`xenod: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(EXIT_START);
});
