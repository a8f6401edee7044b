/**
 * xl top (xentop): the domains' CPU and memory use, refreshed every -d seconds.
 *   -b           batch mode: the header and one line per domain for each refresh, no summary, no screen control
 *                (also used when stdout is not a terminal)
 *   -i N         stop after N refreshes
 *   -d SECONDS   delay between refreshes (default 3; fractions allowed)
 *   -f           full domain names (not cut at 10 characters)
 *   -z           Domain-0 first (otherwise sorted by name, xentop's default)
 *   -r           repeat the header before each domain
 * Interactively q, Q or Esc quits. CPU(%) needs two samples: 0.0 on the first refresh, as in xentop.
 */
import { fetchTable, type XlClient } from "./client.js";
import type { Dom } from "./domains.js";
import { withClient, type XlEnv } from "./env.js";
import { topHeader, topOrder, topRow, topSummary } from "./format.js";
import { count, UsageError, value, type ParsedOpts } from "./getopt.js";

interface Sample { at: number; cpu: Map<number, number> }

/** CPU(%) of `d` between the previous sample and now (xentop get_cpu_pct): Δcpu / Δwall × 100. */
export function cpuPercent(prev: Sample | undefined, d: Dom, nowS: number): number {
  const before = prev?.cpu.get(d.domid);
  if (prev === undefined || before === undefined || nowS <= prev.at) return 0;
  return Math.max(0, ((d.cpuSeconds - before) / (nowS - prev.at)) * 100);
}

/** One refresh's table: header(s) and rows. */
export function topTable(doms: readonly Dom[], totalKiB: number, prev: Sample | undefined, nowS: number,
  o: { full: boolean; dom0First: boolean; repeatHeader: boolean }): string {
  const ordered = topOrder(doms, o.dom0First);
  const nameWidth = o.full ? Math.max(10, ...ordered.map((d) => d.name.length)) : undefined;
  let s = "";
  ordered.forEach((d, i) => {
    if (i === 0 || o.repeatHeader) s += topHeader(nameWidth);
    s += topRow(d, cpuPercent(prev, d, nowS), totalKiB, nameWidth);
  });
  return s;
}

export async function topCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const d = value(p, "d");
  const delay = d === undefined ? 3 : Number(d);
  if (!(delay > 0) || !Number.isFinite(delay)) throw new UsageError(`-d ${d}: the delay is a positive number of seconds`);
  const it = value(p, "i");
  const iterations = it === undefined ? Infinity : Number(it);
  if (it !== undefined && !(Number.isInteger(iterations) && iterations > 0)) throw new UsageError(`-i ${it}: the number of iterations is a positive integer`);
  const batch = count(p, "b") > 0 || env.stdout.isTTY !== true;
  const o = { full: count(p, "f") > 0, dom0First: count(p, "z") > 0, repeatHeader: count(p, "r") > 0 };

  return withClient(env, async (c: XlClient) => {
    let quit = false;
    let wakeSleep = (): void => {};
    const stop = (): void => { quit = true; wakeSleep(); };
    const onKey = (b: Buffer): void => { if (b.includes(0x71) || b.includes(0x51) || b.includes(0x1b) || b.includes(0x03)) stop(); };
    const interactive = !batch && env.stdin.isTTY === true;
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    if (interactive) { env.stdin.setRawMode(true); env.stdin.on("data", onKey); env.stdin.resume(); }
    try {
      let prev: Sample | undefined;
      for (let n = 0; n < iterations && !quit; n++) {
        const now = env.now();
        const { table, host } = await fetchTable(c, now);
        const text = topTable(table, host.totalMemoryMiB * 1024, prev, now, o);
        if (batch) env.out(text);
        else env.out("\x1b[H\x1b[2J" + topSummary(table, host, now) + text + "\nq: quit\n");
        prev = { at: now, cpu: new Map(table.map((x) => [x.domid, x.cpuSeconds])) };
        if (n + 1 >= iterations) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay * 1000);
          wakeSleep = () => { clearTimeout(t); resolve(); };
        });
      }
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      if (interactive) { env.stdin.off("data", onKey); env.stdin.setRawMode(false); env.stdin.pause(); }
    }
    return 0;
  });
}
