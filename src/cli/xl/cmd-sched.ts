/**
 * xl sched-credit and vcpu-pin on Xeno's credit scheduler (src/hv/credit.ts). Formats from xl's
 * tools/xl/xl_sched.c: the pool line "Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us", then
 * "%-33s %4s %6s %4s" Name ID Weight Cap and rows "%-33s %4d %6d %4d".
 *
 * Xeno schedules a domain as a unit (its vCPUs share one worker thread), so vcpu-pin sets the whole domain's
 * hard affinity whatever vCPU is named, and soft affinity is not kept (both said in the help).
 */
import { ask, fetchTable, type XlClient } from "./client.js";
import { refuseDomain0, resolveDomain, type Dom } from "./domains.js";
import { withClient, type XlEnv } from "./env.js";
import { XlError } from "./errors.js";
import { UsageError, count, value, type ParsedOpts } from "./getopt.js";
import { parseCpuList, resolveCpuList } from "../../config/cpus.js";

const pad = (s: string, n: number): string => s.padEnd(n);
const lpad = (s: string | number, n: number): string => String(s).padStart(n);

function intArg(p: ParsedOpts, c: string, what: string, min: number, max: number): number | undefined {
  const v = value(p, c);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`-${c} ${v}: ${what} must be ${min}..${max}`);
  return Number(v);
}

function row(d: Dom): string {
  const s = d.sched ?? { weight: 256, cap: 0 };
  return `${pad(d.name, 33)} ${lpad(d.domid, 4)} ${lpad(s.weight, 6)} ${lpad(s.cap, 4)}\n`;
}

export async function schedCreditCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  return withClient(env, async (c: XlClient) => {
    const weight = intArg(p, "w", "weight", 1, 65535);
    const cap = intArg(p, "c", "cap", 0, 100);
    const tslice = intArg(p, "t", "tslice (ms)", 1, 1000);
    if (value(p, "r") !== undefined) throw new XlError("sched-credit -r: Xeno's scheduler has no rate limit to set");
    if (value(p, "p") !== undefined && value(p, "p") !== "Pool-0") throw new XlError(`no cpupool '${value(p, "p")}' (Xeno has Pool-0)`);
    const params = await ask(c, "read the scheduler parameters", "sched-params", tslice !== undefined ? { tsliceMs: tslice } : {});
    if (count(p, "s") > 0) {
      env.out(`Cpupool Pool-0: tslice=${params.tsliceMs}ms ratelimit=0us migration-delay=0us\n`);
      return 0;
    }
    if (tslice !== undefined) throw new UsageError("-t needs -s");
    const domArg = value(p, "d");
    if (domArg === undefined && (weight !== undefined || cap !== undefined)) throw new UsageError("-w/-c need -d DOMAIN");
    const { table } = await fetchTable(c, env.now());
    if (domArg !== undefined) {
      const d = resolveDomain(table, domArg);
      if (weight !== undefined || cap !== undefined) {
        refuseDomain0(d, "set the scheduling parameters of");
        await ask(c, `set the credit parameters of domain '${d.name}' (${d.domid})`, "sched-credit",
          { domid: d.domid, ...(weight !== undefined ? { weight } : {}), ...(cap !== undefined ? { cap } : {}) });
        return 0;
      }
      env.out(`${pad("Name", 33)} ${lpad("ID", 4)} ${lpad("Weight", 6)} ${lpad("Cap", 4)}\n${row(d)}`);
      return 0;
    }
    env.out(`Cpupool Pool-0: tslice=${params.tsliceMs}ms ratelimit=0us migration-delay=0us\n`);
    env.out(`${pad("Name", 33)} ${lpad("ID", 4)} ${lpad("Weight", 6)} ${lpad("Cap", 4)}\n`);
    for (const d of table) env.out(row(d));
    return 0;
  });
}

/** vcpu-pin DOMAIN VCPU|all HARD [SOFT]: HARD is a CPU list, "all" or "-" (unchanged). */
export async function vcpuPinCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const [domArg, vcpu, hard] = p.args as [string, string, string];
  if (vcpu !== "all" && !/^\d+$/.test(vcpu)) throw new UsageError(`bad vCPU '${vcpu}' (a number or all)`);
  return withClient(env, async (c: XlClient) => {
    const { table } = await fetchTable(c, env.now());
    const d = resolveDomain(table, domArg);
    refuseDomain0(d, "pin");
    if (vcpu !== "all" && Number(vcpu) >= d.vcpus) throw new XlError(`domain '${d.name}' has vCPUs 0..${d.vcpus - 1}`);
    if (hard === "-") return 0;
    const params = await ask(c, "read the scheduler parameters", "sched-params", {});
    let cpus: number[] | null = null;
    if (hard !== "all") {
      const terms = parseCpuList(hard);
      if (typeof terms === "string") throw new UsageError(terms);
      cpus = resolveCpuList(terms, params.pcpus);
      if (cpus.length === 0) throw new XlError(`'${hard}' names no pCPU of this host (pCPUs 0..${params.pcpus - 1})`);
    }
    await ask(c, `pin domain '${d.name}' (${d.domid})`, "vcpu-pin", { domid: d.domid, cpus });
    return 0;
  });
}
