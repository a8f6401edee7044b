/**
 * The `xeno` subcommand table and its dispatch, with xl's rules (tools/xl/xl.c, xl_cmdtable.c):
 *   - a unique prefix of a subcommand runs it (`xeno li` = list); an exact name wins even when it prefixes
 *     another; an ambiguous prefix is an error that lists the candidates;
 *   - `xeno help [CMD]` and `xeno CMD -h|--help` print the help (status 0);
 *   - usage errors (unknown option, missing argument) print the command's help on stderr, status 2;
 *   - a failed operation prints `xeno CMD: why` on stderr, status 1.
 * Xeno's own subcommands (create, image, run-user) parse their arguments themselves.
 */
import type { XlEnv } from "./env.js";
import { XlError } from "./errors.js";
import { getopt, UsageError, type OptSpec, type ParsedOpts } from "./getopt.js";

/**
 * Each command's module is loaded when the command runs (dynamic import): a static import of all of them made
 * every `xeno` command load 193 modules — cmd-migrate's reaches the hypervisor's worker host and the emulator
 * — and spend ~0.18 s of CPU on it before its first request (docs/benchmarks.md, session 22).
 */
type Run = (p: ParsedOpts, env: XlEnv) => Promise<number>;
const lazy = <M>(load: () => Promise<M>, pick: (m: M) => Run): Run => async (p, env) => pick(await load())(p, env);
const cmdConsole = (): Promise<typeof import("./cmd-console.js")> => import("./cmd-console.js");
const cmdControl = (): Promise<typeof import("./cmd-control.js")> => import("./cmd-control.js");
const cmdHotplug = (): Promise<typeof import("./cmd-hotplug.js")> => import("./cmd-hotplug.js");
const cmdInfo = (): Promise<typeof import("./cmd-info.js")> => import("./cmd-info.js");
const cmdMigrate = (): Promise<typeof import("./cmd-migrate.js")> => import("./cmd-migrate.js");
const cmdSave = (): Promise<typeof import("./cmd-save.js")> => import("./cmd-save.js");
const cmdSched = (): Promise<typeof import("./cmd-sched.js")> => import("./cmd-sched.js");
const cmdTop = (): Promise<typeof import("./cmd-top.js")> => import("./cmd-top.js");

interface CommandBase {
  name: string;
  /** What follows the name in the usage line. */
  usage: string;
  /** One line, as in xl's table (printed with a final '.'). */
  desc: string;
  /** The options' help, one per line. */
  options?: string;
}

/** An xl-style subcommand: options parsed here, then `run`. */
export interface XlCommand extends CommandBase {
  kind: "xl";
  opts?: OptSpec[];
  minArgs?: number;
  maxArgs?: number;
  run(p: ParsedOpts, env: XlEnv): Promise<number>;
}

/** A subcommand that takes its arguments as they are (Xeno's create, image, run-user). */
export interface RawCommand extends CommandBase {
  kind: "raw";
  raw(args: string[]): Promise<number>;
}

export type Command = XlCommand | RawCommand;

/** The xl subcommands (the raw ones are added by main.ts). Order: as `xeno help` lists them. */
export const XL_COMMANDS: readonly XlCommand[] = [
  {
    kind: "xl", name: "list", usage: "[options] [Domain...]", desc: "List information about all/some domains",
    options: "-l, --long              Output all VM details (JSON)\n" +
      "-v, --verbose           Prints out UUIDs, shutdown reason codes and security context\n" +
      "-Z, --context           Prints out security context\n" +
      "-c, --cpupool           Prints the cpupool the domain is in\n" +
      "-n, --numa              Prints out NUMA node affinity",
    opts: [{ short: "l", long: "long" }, { short: "v", long: "verbose" }, { short: "Z", long: "context" },
      { short: "c", long: "cpupool" }, { short: "n", long: "numa" }],
    run: lazy(cmdInfo, (m) => m.listCmd),
  },
  {
    kind: "xl", name: "destroy", usage: "[options] <Domain>", desc: "Terminate a domain immediately",
    options: "-f                      (xl: permit destroying domain 0; Domain-0 is Xeno's toolstack and is never destroyed)",
    opts: [{ short: "f" }], minArgs: 1, maxArgs: 1, run: lazy(cmdControl, (m) => m.destroyCmd),
  },
  {
    kind: "xl", name: "shutdown", usage: "[options] <-a|Domain>", desc: "Issue a shutdown signal to a domain",
    options: "-a, --all               Shutdown all guest domains.\n" +
      "-F                      (xl: fall back to an ACPI power event; Xeno has none, the PV request is used)\n" +
      "-w, --wait              Wait for guest(s) to shutdown (twice: until destroyed).",
    opts: [{ short: "a", long: "all" }, { short: "w", long: "wait" }, { short: "F" }], run: lazy(cmdControl, (m) => m.shutdownCmd),
  },
  {
    kind: "xl", name: "reboot", usage: "[options] <-a|Domain>", desc: "Issue a reboot signal to a domain",
    options: "-a, --all               Reboot all guest domains.\n" +
      "-F                      (xl: fall back to an ACPI reset event; Xeno has none, the PV request is used)\n" +
      "-w, --wait              Wait for guest(s) to reboot (twice: until the old domain is destroyed).",
    opts: [{ short: "a", long: "all" }, { short: "w", long: "wait" }, { short: "F" }], run: lazy(cmdControl, (m) => m.rebootCmd),
  },
  { kind: "xl", name: "pause", usage: "<Domain>", desc: "Pause execution of a domain", minArgs: 1, maxArgs: 1, run: lazy(cmdControl, (m) => m.pauseCmd) },
  { kind: "xl", name: "unpause", usage: "<Domain>", desc: "Unpause a paused domain", minArgs: 1, maxArgs: 1, run: lazy(cmdControl, (m) => m.unpauseCmd) },
  {
    kind: "xl", name: "console", usage: "[options] <Domain>", desc: "Attach to domain's console",
    options: "-t <type>       console type, pv or serial (the domain has one: pv for Xen guests, serial with xen_platform=0)\n" +
      "-n <number>     console number (0)\n" +
      "-e <escape>     escape character that detaches, ^X or one character (default ^])",
    opts: [{ short: "t", value: true }, { short: "n", value: true }, { short: "e", value: true }], minArgs: 1, run: lazy(cmdConsole, (m) => m.consoleCmd),
  },
  {
    kind: "xl", name: "save", usage: "[options] <Domain> <CheckpointFile>", desc: "Save a domain state to restore later",
    options: "-c                      Leave domain running after creating the snapshot.\n" +
      "-p                      Leave domain paused after creating the snapshot.\n" +
      "--suspend               Xen's suspend protocol: ask the guest to suspend itself (control/shutdown) and\n" +
      "                        save it then; restored, it reconnects its devices as in a new domain.\n" +
      "Without -c or -p the domain is destroyed once the file is written. The hypervisor writes the file\n" +
      "(docs/save-format.md); a relative path is taken from the current directory. Without --suspend the\n" +
      "guest is stopped between two instructions and never knows it was saved.",
    opts: [{ short: "c" }, { short: "p" }, { short: "S", long: "suspend" }], minArgs: 2, maxArgs: 3, run: lazy(cmdSave, (m) => m.saveCmd),
  },
  {
    kind: "xl", name: "migrate", usage: "[options] <Domain> <host>", desc: "Migrate a domain to another host",
    options: "-s <sshcommand>         Use <sshcommand> instead of ssh.  String will be passed\n" +
      "                        to sh. If empty, run <host> instead of ssh <host> xeno\n" +
      "                        migrate-receive [-d -e]\n" +
      "-e                      Do not wait in the background (on <host>) for the death\n" +
      "                        of the domain (xenod supervises it there).\n" +
      "--debug                 Print huge (!) amount of debug during the migration process (passes -d).\n" +
      "-p                      Do not unpause domain after migrating it.\n" +
      "--non-live              Pause the domain while all its memory travels (no pre-copy).\n" +
      "--max-rounds N          Pre-copy rounds at most, the first included (default 5).\n" +
      "--min-dirty N           Stop pre-copy once fewer than N pages are dirty (default 50).\n" +
      "Live: memory is sent while the domain runs, then the pages it wrote, round after round; then it is\n" +
      "paused and the rest goes with its state (docs/save-format.md). -C is not supported.",
    opts: [{ short: "s", value: true }, { short: "e" }, { short: "p" }, { short: "C", value: true }, { short: "F" },
      { short: "D", long: "debug" }, { short: "L", long: "live" }, { short: "N", long: "non-live" },
      { short: "R", long: "max-rounds", value: true }, { short: "M", long: "min-dirty", value: true }],
    minArgs: 2, maxArgs: 2, run: lazy(cmdMigrate, (m) => m.migrateCmd),
  },
  {
    kind: "xl", name: "migrate-receive", usage: "[-e] [-d] [-p]", desc: "Restore a domain from a saved state (the receiving end of migrate)",
    options: "Reads the stream on stdin and answers on stdout; run by 'xeno migrate' through its transport.\n" +
      "-p                      Do not unpause the domain after the migration.\n" +
      "-e, -d, -t, -F          Accepted (xl's daemon, debug, terminal and foreground flags).",
    opts: [{ short: "e" }, { short: "d" }, { short: "p" }, { short: "t" }, { short: "F" }], maxArgs: 0, run: lazy(cmdMigrate, (m) => m.migrateReceiveCmd),
  },
  {
    kind: "xl", name: "restore", usage: "[options] [<ConfigFile>] <CheckpointFile>", desc: "Restore a domain from a saved state",
    options: "-p                      Do not unpause domain after restoring it.\n" +
      "-e                      Do not wait in the background for the death of the domain (xenod always supervises it).\n" +
      "-d                      Enable debug messages (size and time of the restore).\n" +
      "The domain comes back with its saved name and domain id (its guest's XenStore paths name the id): a\n" +
      "domain using either is refused. A <ConfigFile> replaces the saved config: the same memory, vCPUs and\n" +
      "devices (vdev, read-only, vif MAC and MTU); name, disk paths, bridges and on_* policies may differ.",
    opts: [{ short: "p" }, { short: "e" }, { short: "d" }], minArgs: 1, maxArgs: 2, run: lazy(cmdSave, (m) => m.restoreCmd),
  },
  {
    kind: "xl", name: "mem-max", usage: "<Domain> <MemMB['b'[bytes]|'k'[KB]|'m'[MB]|'g'[GB]|'t'[TB]]>",
    desc: "Set the maximum amount reservation for a domain",
    options: "A bare number is MiB; at most the RAM the domain was created with (populate_physmap stops there).",
    minArgs: 2, maxArgs: 2, run: lazy(cmdControl, (m) => m.memMaxCmd),
  },
  {
    kind: "xl", name: "mem-set", usage: "<Domain> <MemMB['b'[bytes]|'k'[KB]|'m'[MB]|'g'[GB]|'t'[TB]]>",
    desc: "Set the current memory usage for a domain",
    options: "A bare number is MiB. The guest's balloon driver moves toward the target.",
    minArgs: 2, maxArgs: 2, run: lazy(cmdControl, (m) => m.memSetCmd),
  },
  { kind: "xl", name: "vcpu-list", usage: "[Domain, ...]", desc: "List the VCPUs for all/some domains", run: lazy(cmdInfo, (m) => m.vcpuListCmd) },
  {
    kind: "xl", name: "vcpu-pin", usage: "[option] <Domain> <VCPU|all> <Hard affinity|-|all> <Soft affinity|-|all>",
    desc: "Set which CPUs a VCPU can use",
    options: "Xeno schedules a domain's vCPUs together (one thread), so the hard affinity applies to the whole domain\n" +
      "whichever vCPU is named; soft affinity is accepted and not used.",
    minArgs: 3, maxArgs: 4, run: lazy(cmdSched, (m) => m.vcpuPinCmd),
  },
  { kind: "xl", name: "vcpu-set", usage: "[option] <Domain> <vCPUs>", desc: "Set the number of active VCPUs allowed for the domain",
    options: "At most the vcpus= the domain was created with; the guest takes vCPUs on and offline (cpu/N/availability).",
    minArgs: 2, maxArgs: 2, run: lazy(cmdControl, (m) => m.vcpuSetCmd) },
  {
    kind: "xl", name: "info", usage: "[FIELD]", desc: "Get information about Xen host",
    options: "FIELD                   print only the value(s) of the line(s) starting with FIELD",
    maxArgs: 1, run: lazy(cmdInfo, (m) => m.infoCmd),
  },
  {
    kind: "xl", name: "sched-credit", usage: "[-d <Domain> [-w[=WEIGHT]|-c[=CAP]]] [-s [-t TSLICE] [-r RATELIMIT]] [-p CPUPOOL]",
    desc: "Get/set credit scheduler parameters",
    options: "-d DOMAIN, --domain=DOMAIN     Domain to modify\n" +
      "-w WEIGHT, --weight=WEIGHT     Weight (int, 1..65535)\n" +
      "-c CAP,    --cap=CAP           Cap (int, % of one pCPU, 0 = none)\n" +
      "-s         --schedparam        Query / modify scheduler parameters\n" +
      "-t TSLICE, --tslice_ms=TSLICE  Set the timeslice, in milliseconds\n" +
      "-p CPUPOOL, --cpupool=CPUPOOL  Restrict output to CPUPOOL (Xeno has Pool-0)",
    opts: [{ short: "d", long: "domain", value: true }, { short: "w", long: "weight", value: true }, { short: "c", long: "cap", value: true },
      { short: "s", long: "schedparam" }, { short: "t", long: "tslice_ms", value: true }, { short: "r", long: "ratelimit_us", value: true },
      { short: "p", long: "cpupool", value: true }],
    maxArgs: 0, run: lazy(cmdSched, (m) => m.schedCreditCmd),
  },
  { kind: "xl", name: "domid", usage: "<DomainName>", desc: "Convert a domain name to domain id", minArgs: 1, maxArgs: 1, run: lazy(cmdInfo, (m) => m.domidCmd) },
  { kind: "xl", name: "domname", usage: "<DomainId>", desc: "Convert a domain id to domain name", minArgs: 1, maxArgs: 1, run: lazy(cmdInfo, (m) => m.domnameCmd) },
  { kind: "xl", name: "rename", usage: "<Domain> <NewDomainName>", desc: "Rename a domain", minArgs: 2, maxArgs: 2, run: lazy(cmdControl, (m) => m.renameCmd) },
  { kind: "xl", name: "sysrq", usage: "<Domain> <letter>", desc: "Send a sysrq to a domain", minArgs: 2, maxArgs: 2, run: lazy(cmdControl, (m) => m.sysrqCmd) },
  {
    kind: "xl", name: "dmesg", usage: "[-c]", desc: "Read and/or clear dmesg buffer",
    options: "  -c                        Clear dmesg buffer as well as printing it",
    opts: [{ short: "c", long: "clear" }], maxArgs: 0, run: lazy(cmdInfo, (m) => m.dmesgCmd),
  },
  {
    kind: "xl", name: "top", usage: "[options]", desc: "Monitor a host and the domains in real time",
    options: "-d, --delay=SECONDS  seconds between updates (default 3)\n" +
      "-b, --batch          output in batch mode, no user input accepted\n" +
      "-i, --iterations     number of iterations before exiting\n" +
      "-f, --full-name      output the full domain name (not truncated)\n" +
      "-z, --dom0-first     display dom0 first (ignore sorting)\n" +
      "-r, --repeat-header  repeat table header before each domain",
    opts: [{ short: "d", long: "delay", value: true }, { short: "b", long: "batch" }, { short: "i", long: "iterations", value: true },
      { short: "f", long: "full-name" }, { short: "z", long: "dom0-first" }, { short: "r", long: "repeat-header" }],
    maxArgs: 0, run: lazy(cmdTop, (m) => m.topCmd),
  },
  { kind: "xl", name: "network-attach", usage: "<Domain> [type=<type>] [mac=<mac>] [bridge=<bridge>] ...",
    desc: "Create a new virtual network device", minArgs: 1, run: lazy(cmdHotplug, (m) => m.networkAttachCmd) },
  { kind: "xl", name: "network-list", usage: "<Domain(s)>", desc: "List virtual network interfaces for a domain", minArgs: 1, run: lazy(cmdInfo, (m) => m.networkListCmd) },
  { kind: "xl", name: "network-detach", usage: "[-f] <Domain> <DevId|mac>", desc: "Destroy a domain's virtual network device",
    options: "-f  remove it without waiting for the guest to let go (xl's forced removal).\n" +
      "Without -f: waits up to 10 s for the guest's netfront to close; if it does not, fails and the vif stays (closing).",
    opts: [{ short: "f" }], minArgs: 2, maxArgs: 2, run: lazy(cmdHotplug, (m) => m.networkDetachCmd) },
  { kind: "xl", name: "block-attach", usage: "<Domain> <disk-spec-component(s)>...", desc: "Create a new virtual block device",
    minArgs: 2, run: lazy(cmdHotplug, (m) => m.blockAttachCmd) },
  { kind: "xl", name: "block-list", usage: "<Domain(s)>", desc: "List virtual block devices for a domain", minArgs: 1, run: lazy(cmdInfo, (m) => m.blockListCmd) },
  { kind: "xl", name: "block-detach", usage: "[-f] <Domain> <DevId>", desc: "Destroy a domain's virtual block device",
    options: "-f  remove it without waiting for the guest to let go (xl's forced removal).\n" +
      "DevId: the device number or its vdev name (xvdb). Without -f: waits up to 10 s for the guest's blkfront to\n" +
      "close; if it does not, fails and the disk stays (closing).",
    opts: [{ short: "f" }], minArgs: 2, maxArgs: 2, run: lazy(cmdHotplug, (m) => m.blockDetachCmd) },
  {
    kind: "xl", name: "uptime", usage: "[-s] [Domain]", desc: "Print uptime for all/some domains",
    options: "-s                      short format", opts: [{ short: "s" }], run: lazy(cmdInfo, (m) => m.uptimeCmd),
  },
];

/** The command `name` names: exact, else a unique prefix. Throws UsageError for none or several. */
export function lookupCommand(table: readonly Command[], name: string): Command {
  const exact = table.find((c) => c.name === name);
  if (exact) return exact;
  const cands = name === "" ? [] : table.filter((c) => c.name.startsWith(name));
  if (cands.length === 1) return cands[0]!;
  if (cands.length > 1) {
    throw new UsageError(`'${name}' is ambiguous: it could be ${cands.map((c) => c.name).join(", ")}`);
  }
  throw new UsageError(`unknown command '${name}'; the commands are: ${table.map((c) => c.name).join(", ")} ('xeno help' describes them)`);
}

/** `xeno help`: xl's " %-19s %s" list. */
export function helpAll(table: readonly Command[]): string {
  let s = "Usage: xeno <subcommand> [args]\n\nxeno full list of subcommands:\n\n";
  for (const c of table) {
    s += ` ${c.name.padEnd(19)} `;
    if (c.name.length > 19) s += `\n ${"".padEnd(19)} `;
    s += `${c.desc}\n`;
  }
  return s + "\nA unique prefix of a subcommand works ('xeno li' is 'xeno list'); 'xeno help <subcommand>' describes one.\n";
}

/** `xeno help CMD`: "Usage: xeno CMD USAGE\n\nDESC.\n\n" and the options, as xl's help(). */
export function helpOne(c: CommandBase): string {
  return `Usage: xeno ${c.name} ${c.usage}\n\n${c.desc}.\n\n` + (c.options ? `Options:\n\n${c.options}\n` : "");
}

/** Runs `xeno ARGV…` against `table`; returns the exit status. */
export async function runCommand(table: readonly Command[], argv: readonly string[], env: XlEnv): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) { env.err(helpAll(table)); return 2; }
  if (name === "help" || name === "--help" || name === "-h") {
    if (name !== "help" || rest.length === 0) { env.out(helpAll(table)); return 0; }
    let c: Command;
    try { c = lookupCommand(table, rest[0]!); } catch (e) { env.err(`xeno help: ${(e as Error).message}\n`); return 2; }
    if (c.kind === "raw") return c.raw(["--help"]);
    env.out(helpOne(c));
    return 0;
  }
  let cmd: Command;
  try { cmd = lookupCommand(table, name); } catch (e) { env.err(`xeno: ${(e as Error).message}\n`); return 2; }
  if (cmd.kind === "raw") return cmd.raw([...rest]);
  try {
    const p = getopt(rest, cmd.opts ?? []);
    if (p.help) { env.out(helpOne(cmd)); return 0; }
    const min = cmd.minArgs ?? 0;
    if (p.args.length < min) throw new UsageError(`'xeno ${cmd.name}' requires at least ${min} argument${min > 1 ? "s" : ""}`);
    if (cmd.maxArgs !== undefined && p.args.length > cmd.maxArgs) {
      throw new UsageError(`'xeno ${cmd.name}' takes ${cmd.maxArgs === 0 ? "no" : `at most ${cmd.maxArgs}`} argument${cmd.maxArgs === 1 ? "" : "s"}`);
    }
    return await cmd.run(p, env);
  } catch (e) {
    if (e instanceof UsageError) { env.err(`xeno ${cmd.name}: ${e.message}\n\n${helpOne(cmd)}`); return 2; }
    if (e instanceof XlError) { env.err(`xeno ${cmd.name}: ${e.message}\n`); return e.status; }
    throw e;
  }
}
