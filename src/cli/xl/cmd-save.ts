/**
 * xl save / restore (tools/xl/xl_saverestore.c): the hypervisor writes and reads the file (docs/save-format.md),
 * so paths are made absolute here. On a terminal, progress events show how much of the domain's memory is done.
 */
import { resolve } from "node:path";
import type { DomainSpec, Event } from "../../hv/protocol.js";
import { ask, fetchTable, type XlClient } from "./client.js";
import { refuseDomain0, resolveDomain } from "./domains.js";
import { withClient, type XlEnv } from "./env.js";
import { XlError } from "./errors.js";
import type { ParsedOpts } from "./getopt.js";
import { domLabel } from "./cmd-control.js";

const has = (p: ParsedOpts, o: string): boolean => p.opts.some((x) => x.opt === o);

/** On a terminal: "\rSaving: 45 % of 128 MiB" lines from progress events for `path`; returns a finisher. */
async function showProgress(c: XlClient, env: XlEnv, verb: string, path: string): Promise<() => void> {
  if (process.stderr.isTTY !== true) return () => {};
  let shown = false;
  await c.subscribe((e: Event) => {
    if (e.event !== "progress" || e.path !== path || e.totalPages === 0) return;
    shown = true;
    env.err(`\r${verb}: ${Math.floor((100 * e.pages) / e.totalPages)} % of ${e.totalPages >> 8} MiB`);
  }).catch(() => undefined); // progress is a nicety: without events the command still works
  return () => { if (shown) env.err("\n"); };
}

/** xl save [-c] [-p] [--suspend] DOMAIN FILE [CONFIG] */
export async function saveCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  if (p.args.length > 2) {
    throw new XlError("saving another config than the domain's own is not supported: run without <ConfigFile> (the domain's config is saved)");
  }
  return withClient(env, async (c) => {
    const { table } = await fetchTable(c, env.now());
    const d = resolveDomain(table, p.args[0]!);
    refuseDomain0(d, "save");
    const path = resolve(p.args[1]!);
    const checkpoint = has(p, "c"), paused = has(p, "p"), suspend = has(p, "S");
    env.err(`Saving to ${path} new xl format${suspend ? " (the guest suspends itself first)" : ""}\n`);
    const done = await showProgress(c, env, "Saving", path);
    let r;
    try {
      r = await ask(c, `save ${domLabel(d)} to ${path}`, "save", { domid: d.domid, path, checkpoint, paused, ...(suspend ? { suspend } : {}) });
    } finally { done(); }
    env.err(`Saved ${domLabel(d)}: ${(r.bytes / 2 ** 20).toFixed(1)} MiB file, ${r.pages - r.zeroPages} of ${r.pages} pages with data, ` +
      `${r.ms.toFixed(0)} ms; ${checkpoint ? "it runs on" : paused ? "it stays paused" : "it is destroyed"}\n`);
    return 0;
  });
}

/** xl restore [-p] [-e] [-d] [CONFIG] FILE */
export async function restoreCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const [cfgFile, file] = p.args.length > 1 ? [p.args[0]!, p.args[1]!] : [undefined, p.args[0]!];
  let spec: DomainSpec | undefined;
  if (cfgFile !== undefined) {
    env.err(`Parsing config from ${cfgFile}\n`);
    // Loaded only with a config (the parser and its modules: ~70 of them).
    const [{ configFileSpec }, { ConfigError, renderConfigError }] = await Promise.all([import("../create.js"), import("../../config/index.js")]);
    try { spec = configFileSpec(cfgFile); } catch (e) {
      throw new XlError(e instanceof ConfigError ? renderConfigError(e, { color: false }) : (e as Error).message);
    }
  }
  return withClient(env, async (c) => {
    const path = resolve(file);
    env.err(`Loading new save file ${path} (new xl fmt)\n`);
    const done = await showProgress(c, env, "Restoring", path);
    let r;
    try {
      r = await ask(c, "restore the domain", "restore", { path, paused: has(p, "p"), ...(spec !== undefined ? { spec } : {}) });
    } finally { done(); }
    // -e (do not wait for the domain's death): xenod supervises every domain, so there is no waiting xl process.
    if (has(p, "d")) env.err(`Restored domain ${r.domid} from ${path}: ${r.bytes} bytes in ${r.ms.toFixed(0)} ms\n`);
    return 0;
  });
}
