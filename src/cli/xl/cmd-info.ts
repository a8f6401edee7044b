/**
 * The read-only xl subcommands: list, info, uptime, domid, domname, vcpu-list, block-list, network-list, dmesg.
 * Output formats: format.ts.
 */
import { ask, fetchTable } from "./client.js";
import { isDomid, resolveDomain, type Dom } from "./domains.js";
import { withClient, type XlEnv } from "./env.js";
import { XlError } from "./errors.js";
import {
  formatBlockList, formatInfo, formatList, formatListLong, formatNetworkList, formatUptime, formatVcpuList, infoLines,
} from "./format.js";
import { count, type ParsedOpts } from "./getopt.js";

/** The domains named by `args` (in order), or the whole table when there are none. */
function pick(table: readonly Dom[], args: readonly string[]): Dom[] {
  return args.length === 0 ? [...table] : args.map((a) => resolveDomain(table, a));
}

export async function listCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  return withClient(env, async (c) => {
    const { table } = await fetchTable(c, env.now());
    const doms = pick(table, p.args);
    if (count(p, "l") > 0) env.out(formatListLong(doms));
    else env.out(formatList(doms, { verbose: count(p, "v") > 0, context: count(p, "Z") > 0, cpupool: count(p, "c") > 0, numa: count(p, "n") > 0 }));
    return 0;
  });
}

export async function infoCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const field = p.args[0];
  return withClient(env, async (c) => {
    const host = await ask(c, "read the host information", "info");
    const text = formatInfo(host, env.osVersion(), field);
    if (text === null) {
      throw new XlError(`no field of 'xeno info' starts with '${field}' (fields: ${infoLines(host, "").map(([k]) => k).join(", ")})`);
    }
    env.out(text);
    return 0;
  });
}

export async function uptimeCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  return withClient(env, async (c) => {
    const now = env.now();
    const { table, host } = await fetchTable(c, now);
    env.out(formatUptime(pick(table, p.args), now, count(p, "s") > 0, host.uptime));
    return 0;
  });
}

export async function domidCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const name = p.args[0]!;
  return withClient(env, async (c) => {
    const { table } = await fetchTable(c, env.now());
    const d = table.find((x) => x.name === name);
    if (!d) throw new XlError(`no domain is named '${name}' ('xeno list' shows the domains)`);
    env.out(`${d.domid}\n`);
    return 0;
  });
}

export async function domnameCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const arg = p.args[0]!;
  if (!isDomid(arg)) throw new XlError(`invalid domain id '${arg}': a domain id is a number ('xeno domid NAME' gives a name's)`);
  return withClient(env, async (c) => {
    const { table } = await fetchTable(c, env.now());
    env.out(`${resolveDomain(table, arg).name}\n`);
    return 0;
  });
}

export async function vcpuListCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  return withClient(env, async (c) => {
    const { table } = await fetchTable(c, env.now());
    env.out(formatVcpuList(pick(table, p.args)));
    return 0;
  });
}

export async function blockListCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  return withClient(env, async (c) => {
    const { table } = await fetchTable(c, env.now());
    env.out(formatBlockList(pick(table, p.args)));
    return 0;
  });
}

export async function networkListCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  return withClient(env, async (c) => {
    const { table } = await fetchTable(c, env.now());
    env.out(formatNetworkList(pick(table, p.args)));
    return 0;
  });
}

export async function dmesgCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const clear = count(p, "c") > 0;
  return withClient(env, async (c) => {
    const lines = await ask(c, clear ? "read and clear the hypervisor's log" : "read the hypervisor's log", "dmesg", clear ? { clear } : {});
    env.out(lines.map((l) => (l.endsWith("\n") ? l : l + "\n")).join(""));
    return 0;
  });
}
