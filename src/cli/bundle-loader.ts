/**
 * Loads `xeno run-user`'s modules from dist/run-user.bundle.js (scripts/bundle-run-user.mjs: the ~44 ES modules
 * of dist/src/user/run-user.js's import graph as one script) through `vm.Script` with a V8 code cache kept
 * beside it (run-user.bundle.cache), instead of through Node's ES module loader, which resolves, reads and
 * compiles each file on every start (Node 20 has no module compile cache). The cache is written after the first
 * run that had none (or whose cache V8 rejected: another Node or other V8 flags), after the program ran, so it
 * holds the bytecode of every function that run compiled. V8 refuses a cache made under other flags (bin/xeno's
 * --max-old-space-size=4096 is one), so there is one cache per Node version and command-line flags. Returns null when there is no bundle or any file it
 * was made from changed since (a build by tsc alone): the caller imports the ES modules then.
 */
import { createRequire } from "node:module";
import type * as Fs from "node:fs";
import type * as Vm from "node:vm";

// Through require, not `import`: an ES import of a built-in makes its ES facade, which reads every export, and
// node:fs's lazy ReadStream/WriteStream getters then load Node's streams (12-30 ms measured, node 20).
const nodeRequire = createRequire(import.meta.url);
const fs = nodeRequire("node:fs") as typeof Fs;
const vm = nodeRequire("node:vm") as typeof Vm;

type RunUser = typeof import("../user/run-user.js");

/** The bundle's exports, whether V8 took the code cache, and a function that writes the cache when it was
 * missing or rejected. */
export interface Loaded { mod: RunUser; cacheUsed: boolean; saveCache(): void }

/** `dist`: the build's dist/ directory (a test passes a copy). */
export function loadRunUserBundle(dist = new URL("../../", import.meta.url)): Loaded | null {
  const DIST = dist, BUNDLE = new URL("run-user.bundle.js", DIST), CACHE = new URL(`run-user.bundle.${cacheKey()}.cache`, DIST);
  let text: string;
  // latin1: the bundle is ASCII (its writer escapes the rest), and a one-byte string is quicker to make and scan.
  try { text = fs.readFileSync(BUNDLE, "latin1"); } catch { return null; }
  if (!fresh(text, DIST)) return null;
  let cachedData: Buffer | undefined;
  try { cachedData = fs.readFileSync(CACHE); } catch { cachedData = undefined; }
  const script = new vm.Script(text, { filename: BUNDLE.href, cachedData, importModuleDynamically: undefined });
  const factory = script.runInThisContext() as (req: NodeRequire, distUrl: string) => RunUser;
  const mod = factory(createRequire(BUNDLE), DIST.href);
  // false only when V8 was given a cache and took it (undefined without one).
  const write = script.cachedDataRejected !== false;
  return {
    mod,
    cacheUsed: !write,
    saveCache(): void {
      if (!write) return;
      // Another process may write it at the same time: each writes its own file and renames it into place.
      const tmp = new URL(`run-user.bundle.tmp.${process.pid}`, DIST);
      try { fs.writeFileSync(tmp, script.createCachedData()); fs.renameSync(tmp, CACHE); }
      catch { try { fs.rmSync(tmp, { force: true }); } catch { /* a read-only dist/: run without a cache */ } }
    },
  };
}

/** FNV-1a of Node's version and flags, in hex (node:crypto would cost ~10 ms to load). */
function cacheKey(): string {
  const s = `${process.version} ${process.execArgv.join(" ")}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16);
}

/** The bundle's first line lists [file, size, mtime] of each module it holds; all must be as they were. */
function fresh(text: string, dist: URL): boolean {
  const nl = text.indexOf("\n");
  if (!text.startsWith("// [") || nl < 0) return false;
  let stamps: [string, number, number][];
  try { stamps = JSON.parse(text.slice(3, nl)) as [string, number, number][]; } catch { return false; }
  for (const [rel, size, mtime] of stamps) {
    let st: Fs.Stats;
    try { st = fs.statSync(new URL(rel, dist)); } catch { return false; }
    // Within a millisecond: a copy's utimes keeps less than the nanoseconds a build's write gets.
    if (st.size !== size || Math.abs(st.mtimeMs - mtime) >= 1) return false;
  }
  return true;
}
