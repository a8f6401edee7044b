/** xenod's --api-listen: a bad address is a usage error naming it; `none` serves no endpoint. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { parseListen } from "../../src/api/server.js";
import { ROOT } from "../machine/cli-domain.js";

test("parseListen: addresses, none, and what is wrong with a bad one", () => {
  assert.deepEqual(parseListen("http://127.0.0.1:8080,https://[::1]:8443"), [
    { scheme: "http", host: "127.0.0.1", port: 8080 }, { scheme: "https", host: "::1", port: 8443 }]);
  assert.deepEqual(parseListen("none"), []);
  assert.match(parseListen("ftp://x:1") as string, /'ftp:\/\/x:1' is not http:\/\/HOST:PORT or https:\/\/HOST:PORT \(or 'none'\)/);
  assert.equal(typeof parseListen("http://h:70000"), "string");
});

test("xenod --api-listen with a bad address exits 2 saying which", () => {
  const r = spawnSync(process.execPath, [join(ROOT, "dist/src/toolstack/main.js"), "--foreground", "--run-dir", "/nonexistent/x", "--api-listen", "http://localhost"], { encoding: "utf8" });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^xenod: --api-listen: 'http:\/\/localhost' is not http:\/\/HOST:PORT/);
});
