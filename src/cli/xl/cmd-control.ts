/**
 * The xl subcommands that act on a domain: pause, unpause, destroy, shutdown, reboot, rename, sysrq, mem-set,
 * mem-max. Messages on stderr as xl prints them ("Shutting down domain 3", "Waiting for 1 domains", …).
 */
import type { Event } from "../../hv/protocol.js";
import { ask, fetchTable, type XlClient } from "./client.js";
import { DOM0_NAME, isDomid, refuseDomain0, resolveDomain, type Dom } from "./domains.js";
import { withClient, type XlEnv } from "./env.js";
import { XlError } from "./errors.js";
import { SHUTDOWN_REASON_CODE } from "./format.js";
import { count, UsageError, type ParsedOpts } from "./getopt.js";
import { parseMemSizeKiB } from "./parse.js";

/** "domain 'web' (3)": how messages name a domain. */
export function domLabel(d: Dom): string {
  return `domain '${d.name}' (${d.domid})`;
}

/** Resolves the domain argument and refuses Domain-0 for `verb`. */
async function target(c: XlClient, env: XlEnv, arg: string, verb: string): Promise<Dom> {
  const { table } = await fetchTable(c, env.now());
  const d = resolveDomain(table, arg);
  refuseDomain0(d, verb);
  return d;
}

export async function pauseCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  return withClient(env, async (c) => {
    const d = await target(c, env, p.args[0]!, "pause");
    await ask(c, `pause ${domLabel(d)}`, "pause", { domid: d.domid });
    return 0;
  });
}

export async function unpauseCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  return withClient(env, async (c) => {
    const d = await target(c, env, p.args[0]!, "unpause");
    await ask(c, `unpause ${domLabel(d)}`, "unpause", { domid: d.domid });
    return 0;
  });
}

export async function destroyCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  return withClient(env, async (c) => {
    // -f (destroy domain 0 from a disaggregated toolstack) does not apply: Domain-0 is the toolstack itself.
    const d = await target(c, env, p.args[0]!, "destroy");
    await ask(c, `destroy ${domLabel(d)}`, "destroy", { domid: d.domid });
    return 0;
  });
}

/**
 * xl shutdown / reboot [-a] [-w [-w]] [-F] <-a|DOMAIN>: asks the guest(s) through control/shutdown. -w waits
 * for each to shut down or be destroyed; -w twice, to be destroyed. Events are subscribed before the request
 * is sent, so none is missed. While waiting, every PROGRESS_S seconds a line names each domain still running
 * and whether its guest has read the request (control/shutdown cleared) or not.
 */
/** How often `shutdown -w` / `reboot -w` say which domains they still wait for, s. */
const PROGRESS_S = 10;

async function shutdownOrReboot(reboot: boolean, p: ParsedOpts, env: XlEnv): Promise<number> {
  const all = count(p, "a") > 0;
  const waits = count(p, "w");
  const what = reboot ? "reboot" : "shut down";
  if (!all && p.args.length === 0) throw new UsageError("you must give -a or a domain");
  if (all && p.args.length > 0) throw new UsageError("give either -a or a domain, not both");
  if (p.args.length > 1) throw new UsageError("one domain at a time (or -a for all)");
  return withClient(env, async (c) => {
    // Domains asked and not yet stopped (as far as -w asks); events for them wake the waiter. An event may come
    // before the request's answer (a quick guest), so `pending` is filled before each request is sent.
    const pending = new Set<number>();
    let wake = (): void => {};
    const onEvent = (e: Event): void => {
      if (e.event !== "domain" || !pending.has(e.domid)) return;
      if (e.state === "destroyed") {
        env.err(`Domain ${e.domid} has been destroyed\n`);
      } else if (waits < 2 && (e.state === "shutdown" || e.state === "crashed")) {
        const reason = e.shutdownReason ?? (e.state === "crashed" ? "crash" : "poweroff");
        env.err(`Domain ${e.domid} has been shut down, reason code ${SHUTDOWN_REASON_CODE[reason]}\n`);
      } else {
        return;
      }
      pending.delete(e.domid);
      wake();
    };
    if (waits > 0) {
      try { await c.subscribe(onEvent); } catch (e) { throw new XlError(`cannot subscribe to domain events: ${(e as Error).message}`); }
    }
    const { table } = await fetchTable(c, env.now());
    const doms = all ? table.filter((d) => d.domid !== 0) : [resolveDomain(table, p.args[0]!)];
    for (const d of doms) refuseDomain0(d, reboot ? "reboot" : "shut down");

    let failed = 0;
    let asked = 0;
    const fallback = count(p, "F") > 0;
    for (const d of doms) {
      env.err(`${reboot ? "Rebooting" : "Shutting down"} domain ${d.domid}\n`);
      // Already stopped, as far as one -w asks: nothing to wait for.
      if (waits > 0 && !(waits < 2 && (d.state === "shutdown" || d.state === "crashed"))) pending.add(d.domid);
      try {
        await ask(c, `${what} ${domLabel(d)}`, "shutdown", { domid: d.domid, reason: reboot ? "reboot" : "poweroff" });
        asked++;
      } catch (e) {
        pending.delete(d.domid);
        failed++;
        env.err(`xeno ${reboot ? "reboot" : "shutdown"}: ${(e as Error).message}` +
          (fallback ? " (-F: Xeno has no ACPI power/reset button to fall back to)" : "") + "\n");
      }
    }
    if (waits > 0) {
      env.err(`Waiting for ${asked} domains\n`);
      // Events wake the loop; the connection's state is looked at every half second (xenod gone: give up).
      // Every PROGRESS_S a line per domain still waited for: whether its guest has read the request yet.
      const t0 = env.now();
      let lastReport = t0;
      let reporting = false;
      const report = async (): Promise<void> => {
        if (reporting || env.now() - lastReport < PROGRESS_S) return;
        reporting = true;
        lastReport = env.now();
        try {
          const { list } = await fetchTable(c, env.now());
          for (const d of list) {
            if (!pending.has(d.domid)) continue;
            const how = d.controlShutdown === "" ? "its guest acknowledged the request and has not finished yet"
              : d.controlShutdown !== undefined ? "its guest has not read the request yet (is it still booting, or not listening?)"
                : "no request is pending";
            env.err(`Domain ${d.domid} (${d.name}) still running after ${Math.round(env.now() - t0)} s: ${how}\n`);
          }
        } catch { /* the next tick or the close check says more */ } finally { reporting = false; }
      };
      await new Promise<void>((resolve, reject) => {
        const t = setInterval(() => {
          if (c.closed === true) { clearInterval(t); reject(new XlError("the connection to xenod closed while waiting")); return; }
          void report();
        }, 500);
        wake = (): void => { if (pending.size === 0) { clearInterval(t); resolve(); } };
        wake();
      });
    }
    return failed > 0 ? 1 : 0;
  });
}

export function shutdownCmd(p: ParsedOpts, env: XlEnv): Promise<number> { return shutdownOrReboot(false, p, env); }
export function rebootCmd(p: ParsedOpts, env: XlEnv): Promise<number> { return shutdownOrReboot(true, p, env); }

export async function renameCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const name = p.args[1]!;
  if (name === "") throw new UsageError("the new name is empty");
  if (isDomid(name)) throw new UsageError(`'${name}' is all digits: it would read as a domain id; choose a name with a letter`);
  if (name === DOM0_NAME) throw new UsageError(`'${DOM0_NAME}' is the toolstack's name`);
  return withClient(env, async (c) => {
    const d = await target(c, env, p.args[0]!, "rename");
    await ask(c, `rename ${domLabel(d)} to '${name}'`, "rename", { domid: d.domid, name });
    return 0;
  });
}

export async function sysrqCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const key = p.args[1]!;
  if (key.length !== 1) throw new UsageError(`invalid sysrq '${key}': one letter (e.g. 'h' for the guest's sysrq help)`);
  return withClient(env, async (c) => {
    const d = await target(c, env, p.args[0]!, "send a sysrq to");
    await ask(c, `send sysrq '${key}' to ${domLabel(d)}`, "sysrq", { domid: d.domid, key });
    return 0;
  });
}

/** xl mem-set DOMAIN MEM: the balloon target (memory/target); a bare number is MiB (xl's parse_mem_size_kb). */
export async function memSetCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const mem = p.args[1]!;
  const targetKiB = parseMemSizeKiB(mem);
  if (targetKiB === null) throw new UsageError(`invalid memory size: ${mem} (a number of MiB, or with a suffix b, k, m, g or t)`);
  return withClient(env, async (c) => {
    const d = await target(c, env, p.args[0]!, "set the memory of");
    if (targetKiB > d.maxMemKiB) {
      throw new XlError(`cannot set ${domLabel(d)}'s memory to ${mem}: that is above its maximum of ` +
        `${d.maxMemKiB / 1024} MiB (the memory it was created with)`);
    }
    await ask(c, `set ${domLabel(d)}'s memory target to ${mem}`, "mem-set", { domid: d.domid, targetKiB });
    return 0;
  });
}

/** xl mem-max: the domain's maximum reservation (a bare number is MiB); not above the RAM it was built with. */
export async function memMaxCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const mem = p.args[1]!;
  const maxKiB = parseMemSizeKiB(mem);
  if (maxKiB === null) throw new UsageError(`invalid memory size: ${mem} (a number of MiB, or with a suffix b, k, m, g or t)`);
  return withClient(env, async (c) => {
    const d = await target(c, env, p.args[0]!, "set the maximum memory of");
    await ask(c, `set ${domLabel(d)}'s maximum memory to ${mem}`, "mem-max", { domid: d.domid, maxKiB });
    return 0;
  });
}

/** xl vcpu-set: the number of vCPUs the guest may have online (Linux's xen cpu_hotplug acts on it). */
export async function vcpuSetCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const n = p.args[1]!;
  if (!/^\d+$/.test(n) || Number(n) < 1) throw new UsageError(`invalid number of vCPUs: ${n}`);
  return withClient(env, async (c) => {
    const d = await target(c, env, p.args[0]!, "set the vCPUs of");
    await ask(c, `set ${domLabel(d)}'s vCPUs to ${n}`, "vcpu-set", { domid: d.domid, vcpus: Number(n) });
    return 0;
  });
}
