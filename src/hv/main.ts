/**
 * `xeno-hv`, the hypervisor process (see protocol.ts for the process split):
 *
 *   node dist/src/hv/main.js [--run-dir DIR] [--memory MiB] [--pcpus N] [--domains-per-thread N] [--xenstored PATH]
 *                            [--first-domid N]
 *
 * Serves the control protocol on DIR/hv.sock (DIR: --run-dir, else $XENO_RUN_DIR, else /run/xeno) and
 * xenstored's wire protocol on PATH (--xenstored, else $XENSTORED_PATH, else /run/xenstored/socket when DIR is
 * the default /run/xeno, else DIR/xenstored/socket — so test instances never take the system's path).
 * --domains-per-thread (default 8; 1 = a thread per domain): how many domains share one worker thread.
 * --first-domid (default 1): xenod starts a hypervisor in place of a dead one above the domids it had.
 * Writes DIR/hv.pid. SIGTERM/SIGINT destroy every domain and exit 0. Exit 1 on a startup error (socket in
 * use, bad arguments), with the reason on stderr.
 */
import { unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Hypervisor } from "./hypervisor.js";
import { ControlServer } from "./control-server.js";
import { HV_SOCKET } from "./protocol.js";
import { XenStoreSocketServer } from "../xenstore/index.js";
import { ensurePrivateDir } from "../common/private-socket.js";
import { formatLogLine } from "../common/log.js";
import { mallocEnvSummary } from "./malloc-env.js";

const DEFAULT_RUN_DIR = "/run/xeno";

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  return v;
}

async function main(argv: string[]): Promise<number> {
  let runDir: string, memoryMiB: number | undefined, xsPath: string, pcpus: number | undefined;
  let domainsPerThread: number | undefined, firstDomid: number | undefined;
  try {
    runDir = arg(argv, "--run-dir") ?? process.env.XENO_RUN_DIR ?? DEFAULT_RUN_DIR;
    const pc = arg(argv, "--pcpus");
    if (pc !== undefined) {
      pcpus = Number(pc);
      if (!Number.isInteger(pcpus) || pcpus < 1 || pcpus > 256) throw new Error(`--pcpus ${pc}: want 1..256`);
    }
    const dpt = arg(argv, "--domains-per-thread") ?? process.env.XENO_DOMAINS_PER_THREAD;
    if (dpt !== undefined) {
      domainsPerThread = Number(dpt);
      if (!Number.isInteger(domainsPerThread) || domainsPerThread < 1 || domainsPerThread > 1024) throw new Error(`--domains-per-thread ${dpt}: want 1..1024`);
    }
    const fd = arg(argv, "--first-domid");
    if (fd !== undefined) {
      firstDomid = Number(fd);
      if (!Number.isInteger(firstDomid) || firstDomid < 1 || firstDomid > 0x7fef) throw new Error(`--first-domid ${fd}: want 1..32751`);
    }
    const mem = arg(argv, "--memory");
    if (mem !== undefined) {
      memoryMiB = Number(mem);
      if (!Number.isInteger(memoryMiB) || memoryMiB < 64) throw new Error(`--memory ${mem}: want MiB >= 64`);
    }
    xsPath = arg(argv, "--xenstored") ?? process.env.XENSTORED_PATH
      ?? (runDir === DEFAULT_RUN_DIR ? "/run/xenstored/socket" : join(runDir, "xenstored", "socket"));
  } catch (e) {
    process.stderr.write(`xeno-hv: ${(e as Error).message}\nusage: xeno-hv [--run-dir DIR] [--memory MiB] [--pcpus N] [--domains-per-thread N] [--xenstored PATH] [--first-domid N]\n`);
    return 2;
  }
  try {
    ensurePrivateDir(runDir); // 0700 whatever the umask, and ours (src/common/private-socket.ts)
  } catch (e) {
    process.stderr.write(formatLogLine("error", "hv", `xeno-hv: ${(e as Error).message}`));
    return 1;
  }
  const hv = new Hypervisor({ memoryMiB, runDir, pcpus, domainsPerThread, firstDomid, log: (l, level, component) => process.stderr.write(formatLogLine(level, component, l)) });
  const control = new ControlServer(hv, join(runDir, HV_SOCKET));
  const xs = new XenStoreSocketServer(hv.store, { path: xsPath, log: (l) => hv.log(l, "warn", "xenstore") });
  try {
    await control.listen();
    hv.xenstoredSocket = await xs.listen();
  } catch (e) {
    process.stderr.write(formatLogLine("error", "hv", `xeno-hv: ${(e as Error).message}`));
    await control.close().catch(() => undefined);
    return 1;
  }
  const pidFile = join(runDir, "hv.pid");
  writeFileSync(pidFile, `${process.pid}\n`);
  hv.log(`listening on ${control.path}; xenstored on ${hv.xenstoredSocket}; malloc: ${mallocEnvSummary()}`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => { hv.log(`${sig}: destroying every domain and exiting`); resolve(); };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await hv.shutdownAll();
  await control.close();
  await xs.close();
  try { unlinkSync(pidFile); } catch { /* gone */ }
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; if (code === 0) setTimeout(() => process.exit(0), 200).unref(); },
  (e) => { process.stderr.write(formatLogLine("error", "hv", `xeno-hv: ${(e as Error)?.stack ?? e}`)); process.exit(1); });
