/**
 * The bridge daemon as a process (see bridge-daemon.ts, docs/networking.md):
 *
 *   node dist/src/net/bridge-main.js --name xenbr0 [options]
 *
 * Exit status: 0 after SIGTERM/SIGINT (also one during startup: the daemon then never claims the socket) or an
 * idle exit, 1 on a startup error, 2 on bad usage, 3 (EXIT_BRIDGE_IN_USE) when another daemon already serves the
 * bridge. SIGUSR1 logs the switch statistics.
 */

import { BridgeDaemon, type BridgeDaemonOptions } from "./bridge-daemon.js";
import { formatLogLine } from "../common/log.js";
import { EXIT_BRIDGE_IN_USE, NetError } from "./errors.js";
import { parseIpv4, parseMac } from "./ethernet.js";
import { parseForward, type PasstOptions, type PortForward } from "./passt.js";

const USAGE = `usage: bridge-main --name BRIDGE [options]
  --name BRIDGE            bridge name (e.g. xenbr0); socket at \${XENO_RUN_DIR:-/run/xeno}/net/BRIDGE.sock
  --run-dir DIR            instead of $XENO_RUN_DIR
  --socket PATH            explicit socket path
  --uplink auto|passt|none uplink to the host (default auto: passt if installed, else none with a warning,
                           looking for passt every 10 s and starting it once installed)
  --passt-retry SECONDS    with --uplink auto, how often a missing passt is looked for (default 10)
  --passt PATH             passt executable (default: passt on PATH)
  --address A.B.C.D        the guest address passt serves (default 10.0.2.15)
  --netmask BITS           prefix length (default 24)
  --gateway A.B.C.D        gateway, mapped to the host's loopback (default 10.0.2.2)
  --passt-mac MAC          passt's MAC (default 9a:55:9a:55:9a:55)
  --dns A.B.C.D            DNS server handed out by DHCP (repeatable; default: the host's resolv.conf)
  --dns-forward A.B.C.D    address whose port 53 passt forwards to the host's resolver
  --no-dhcp                no DHCP server
  --forward tcp|udp:[ADDR/]HOSTPORT[-LAST][:GUESTPORT]
                           forward host port(s) to the uplink guest (repeatable)
  --uplink-owner MAC       the only station allowed to use the uplink (default: first come)
  --passt-arg ARG          extra passt argument (repeatable)
  --max-ports N            switch ports (default 64)
  --max-macs N             MAC table size (default 4096)
  --max-macs-per-port N    MACs learned per port (default 64)
  --ageing SECONDS         MAC ageing time (default 300)
  --idle-exit SECONDS      exit after this long without clients (default 0: never)
  --quiet                  log only errors and lifecycle, not passt's informational lines
`;

class UsageError extends Error {}

/** --uplink auto: how often a bridge without passt looks for it. */
const MISSING_PASST_RETRY_MS = 10_000;

interface Parsed {
  daemon: BridgeDaemonOptions;
  uplinkMode: "auto" | "passt" | "none";
}

function parseArgs(argv: string[], log: (l: string) => void): Parsed {
  let name: string | undefined;
  let uplinkMode: Parsed["uplinkMode"] = "auto";
  let retryMs = MISSING_PASST_RETRY_MS;
  const passt: PasstOptions = {};
  const forwards: PortForward[] = [];
  const dns: string[] = [];
  const extra: string[] = [];
  const sw: NonNullable<BridgeDaemonOptions["switch"]> = {};
  const d: Omit<BridgeDaemonOptions, "name"> = {};
  const num = (flag: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`${flag}: '${v}' is not a number >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--name": name = val(); break;
      case "--run-dir": d.runDir = val(); break;
      case "--socket": d.socketPath = val(); break;
      case "--uplink": {
        const v = val();
        if (v !== "auto" && v !== "passt" && v !== "none") throw new UsageError(`--uplink: '${v}' is not auto, passt or none`);
        uplinkMode = v;
        break;
      }
      case "--passt": passt.binary = val(); break;
      case "--passt-retry": retryMs = num(flag, val(), 0.1) * 1000; break;
      case "--address": passt.address = val(); parseIpv4(passt.address); break;
      case "--netmask": passt.prefixLength = num(flag, val(), 1); if (passt.prefixLength > 30) throw new UsageError("--netmask: at most 30"); break;
      case "--gateway": passt.gateway = val(); parseIpv4(passt.gateway); break;
      case "--passt-mac": passt.mac = val(); parseMac(passt.mac); break;
      case "--dns": dns.push(val()); parseIpv4(dns[dns.length - 1]!); break;
      case "--dns-forward": passt.dnsForward = val(); parseIpv4(passt.dnsForward); break;
      case "--no-dhcp": passt.dhcp = false; break;
      case "--forward": forwards.push(parseForward(val())); break;
      case "--uplink-owner": passt.ownerMac = val(); parseMac(passt.ownerMac); break;
      case "--passt-arg": extra.push(val()); break;
      case "--max-ports": sw.maxPorts = num(flag, val(), 2); break;
      case "--max-macs": sw.maxMacs = num(flag, val(), 1); break;
      case "--max-macs-per-port": sw.maxMacsPerPort = num(flag, val(), 1); break;
      case "--ageing": sw.ageingMs = num(flag, val(), 1) * 1000; break;
      case "--idle-exit": d.idleExitMs = num(flag, val(), 0) * 1000; break;
      case "--quiet": passt.quiet = true; break;
      case "-h": case "--help": process.stdout.write(USAGE); process.exit(0); break;
      default: throw new UsageError(`unknown option '${flag}'`);
    }
  }
  if (name === undefined) throw new UsageError("--name is required");
  if (dns.length > 0) passt.dns = dns;
  if (forwards.length > 0) passt.forwards = forwards;
  if (extra.length > 0) passt.extraArgs = extra;
  const daemon: BridgeDaemonOptions = { name, ...d, switch: sw, log };
  // auto: a missing passt is looked for every 10 s and started once installed (passt.ts waitForBinary).
  if (uplinkMode === "auto") passt.missingRetryMs = retryMs;
  if (uplinkMode !== "none") daemon.uplink = passt;
  return { daemon, uplinkMode };
}

async function main(argv: string[]): Promise<number> {
  const log = (line: string): void => {
    process.stderr.write(formatLogLine("info", "bridge", line));
  };
  let parsed: Parsed;
  try {
    parsed = parseArgs(argv, log);
  } catch (e) {
    if (e instanceof UsageError || e instanceof NetError) {
      process.stderr.write(`bridge-main: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  // Signals are handled from the start. One that arrives during startup aborts it: the daemon does not claim the
  // socket (ensureBridge stops a daemon of its own that lost the race this way; left to start, it would take the
  // bridge over once the winner exits). One that arrives after the claim stops the daemon once it is up.
  let daemon: BridgeDaemon | undefined;
  let stopRequested: string | undefined;
  const abort = new AbortController();
  parsed.daemon.signal = abort.signal;
  const stop = (sig: string): void => {
    stopRequested ??= sig;
    if (daemon === undefined) {
      abort.abort();
      return;
    }
    log(`bridge ${daemon.name}: ${sig}; shutting down`);
    void daemon.close();
  };
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => stop(sig));
  process.on("SIGUSR1", () => {
    if (daemon !== undefined) log(`bridge ${daemon.name}: stats ${JSON.stringify(daemon.stats())}`);
  });
  try {
    daemon = await BridgeDaemon.start(parsed.daemon);
  } catch (e) {
    if (!(e instanceof NetError && e.code === "NET_PASST_NOT_FOUND" && parsed.uplinkMode === "auto")) return startupFailure(e, log);
    log(`bridge ${parsed.daemon.name}: ${e.message}; running without an uplink to the host`);
    delete parsed.daemon.uplink;
    try {
      daemon = await BridgeDaemon.start(parsed.daemon);
    } catch (e2) {
      return startupFailure(e2, log);
    }
  }
  if (stopRequested !== undefined) stop(stopRequested);
  await daemon.closed;
  log(`bridge ${daemon.name}: stopped`);
  return 0;
}

function startupFailure(e: unknown, log: (l: string) => void): number {
  if (e instanceof NetError && e.code === "NET_START_ABORTED") {
    log(`${e.message} by a signal; not serving`);
    return 0;
  }
  log(`bridge-main: ${e instanceof Error ? e.message : String(e)}`);
  return e instanceof NetError && e.code === "NET_BRIDGE_IN_USE" ? EXIT_BRIDGE_IN_USE : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bridge-main: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
