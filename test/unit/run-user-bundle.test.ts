/**
 * run-user's bundle (scripts/bundle-run-user.mjs, src/cli/bundle-loader.ts), on a copy of dist/: it loads and
 * runs a real arm64 program (busybox sh: a loop, its exit status); V8 takes the code cache the first run wrote; and
 * once a module it was made from changed it is refused (null), so a stale bundle never runs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadRunUserBundle } from "../../src/cli/bundle-loader.js";
import { fetchBusybox } from "../oracle/oracle-lib.js";

const DIST = fileURLToPath(new URL("../../", import.meta.url));

test("run-user bundle: runs, takes its code cache, refused when stale", async () => {
  const src = path.join(DIST, "run-user.bundle.js");
  if (!fs.existsSync(src)) throw new Error("no dist/run-user.bundle.js: scripts/build.sh writes it");
  const bb = await fetchBusybox();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xeno-bundle-"));
  try {
    const text = fs.readFileSync(src, "utf8");
    const stamps = JSON.parse(text.slice(3, text.indexOf("\n"))) as [string, number, number][];
    assert.ok(stamps.length > 30, `${stamps.length} modules in the bundle`);
    fs.copyFileSync(src, path.join(tmp, "run-user.bundle.js"));
    for (const [rel] of stamps) {
      fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
      fs.cpSync(path.join(DIST, rel), path.join(tmp, rel), { preserveTimestamps: true });
    }
    const url = pathToFileURL(tmp + "/");
    const first = loadRunUserBundle(url);
    assert.ok(first !== null, "a fresh copy is taken");
    assert.equal(first.cacheUsed, false);
    assert.equal(typeof first.mod.runUserMain, "function");
    first.saveCache();
    const caches = fs.readdirSync(tmp).filter((f) => f.endsWith(".cache"));
    assert.equal(caches.length, 1);
    assert.ok(fs.statSync(path.join(tmp, caches[0]!)).size > 10_000);
    const second = loadRunUserBundle(url);
    assert.ok(second !== null);
    assert.equal(second.cacheUsed, true, "V8 took the code cache");
    // The bundled code (from the cache) runs a real program: busybox's shell, whose exit status comes back.
    assert.equal(await second.mod.runUserMain([bb, "sh", "-c", "i=0; while [ $i -lt 300 ]; do i=$((i+1)); done; exit $((i % 256 - 37))"]), 7);
    // A module changed since the bundle was made: refused.
    const victim = path.join(tmp, stamps[stamps.length - 1]![0]);
    fs.utimesSync(victim, new Date(), new Date(Date.now() + 5000));
    assert.equal(loadRunUserBundle(url), null, "stale bundle refused");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
