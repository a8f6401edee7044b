/**
 * Malformed requests against the endpoint (stand-in hypervisor, real xenod and sockets): bad JSON, bad XML,
 * entity declarations, deep nesting, huge bodies, unknown methods, wrong arity and types, 1,000 bad logins, and
 * a seeded fuzz (XENO_SEED reproduces) of random calls and mutated XML-RPC bodies. Every answer must be an XAPI
 * error or a 4xx, never a 5xx or INTERNAL_ERROR, and the server must keep answering. The counts are printed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Xenod } from "../../src/toolstack/daemon.js";
import { FakeHv } from "../toolstack/fake-hv.js";
import { encodeMethodCall } from "../../src/api/xmlrpc.js";
import { MAX_FAILS } from "../../src/api/dispatch.js";
import { fails, makeUsers, ok } from "./api-helpers.js";

/** A small seeded PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function post(url: string, path: string, body: string | Buffer, type: string, localAddress?: string): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return await new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: "POST", localAddress, headers: { "content-type": type, "content-length": Buffer.byteLength(body) } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => { text += d; }).on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("malformed requests get XAPI errors or 4xx and the server stays up; seeded fuzz with counts", { timeout: 10 * 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-api-fuzz-"));
  const apiDir = join(dir, "api");
  const hv = new FakeHv(dir);
  await hv.start();
  hv.nextDomid = 0;
  hv.addDomain({ name: "Domain-0", uuid: "00000000-0000-0000-0000-000000000000", memMiB: 300, vcpus: 2, kernel: "", cmdline: "", xen: false, disks: [], vifs: [] });
  hv.addDomain({ name: "web", memMiB: 256, vcpus: 1, kernel: "/k", cmdline: "", xen: true, disks: [], vifs: [], toolstack: { onPoweroff: "destroy", onReboot: "restart", onCrash: "destroy" } });
  await makeUsers(apiDir, [["admin", "pool-admin", "pw"]]);
  const log: string[] = [];
  const x = await Xenod.start({ runDir: dir, log: (l) => log.push(l), hvMain: false, api: { listen: [{ scheme: "http", host: "127.0.0.1", port: 0 }], apiDir } });
  const url = x.api!.urls[0]!;
  const d = x.api!.dispatcher;
  try {
    await x.api!.model.refresh();
    const sid = await ok(url, "session.login_with_password", ["admin", "pw"]) as string;
    const vm = ((await ok(url, "VM.get_by_name_label", [sid, "web"])) as string[])[0]!;
    const alive = async (): Promise<void> => { assert.equal(await ok(url, "VM.get_power_state", [sid, vm]), "Running"); };

    // Framing.
    const j = (body: string) => post(url, "/jsonrpc", body, "application/json");
    const xml = (body: string) => post(url, "/", body, "text/xml");
    let r = await j("{not json");
    assert.equal(r.status, 400); assert.match(r.text, /JSONRPC_PARSE_FAILURE/);
    assert.equal((await j("[1,2]")).status, 400);
    assert.equal((await j('{"jsonrpc":"3.0","method":"x","id":1}')).status, 400);
    r = await j('{"jsonrpc":"2.0","id":1,"method":42,"params":[]}');
    assert.equal(r.status, 200); assert.match(r.text, /MESSAGE_METHOD_UNKNOWN/);
    // JSON.parse takes 300,000 nested arrays that JSON.stringify cannot write back: still a plain XAPI error.
    r = await j(`{"jsonrpc":"2.0","id":1,"method":"VM.get_record","params":["${"x"}",${"[".repeat(300_000)}${"]".repeat(300_000)}]}`);
    assert.match(r.text, /"message":"SESSION_INVALID"/);
    r = await j(`{"jsonrpc":"2.0","id":1,"method":"VM.get_record","params":["${sid}",${"[".repeat(300_000)}${"]".repeat(300_000)}]}`);
    assert.match(r.text, /"message":"FIELD_TYPE_ERROR","data":\["self","Expected string, received array; got an array"\]/);
    r = await j(`{"jsonrpc":"2.0","id":1,"method":"VM.pause","params":["${sid}",${"[".repeat(300_000)}${"]".repeat(300_000)}]}`);
    assert.match(r.text, /"message":"FIELD_TYPE_ERROR"/, "a mutating call's refusal is audited with the argument named, not written");
    r = await j('{"jsonrpc":"2.0","id":1,"method":"VM.get_all","params":{"a":1}}');
    assert.match(r.text, /MESSAGE_PARAMETER_COUNT_MISMATCH/);
    r = await xml("<methodCall><methodName>VM.get_all");
    assert.equal(r.status, 400); assert.match(r.text, /XMLRPC_UNMARSHAL_FAILURE/);
    r = await xml('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><methodCall><methodName>&b;</methodName></methodCall>');
    assert.equal(r.status, 400); assert.match(r.text, /DOCTYPE and ENTITY declarations are not accepted/);
    r = await xml(`<methodCall><methodName>VM.get_all</methodName><params><param>${"<value><array><data>".repeat(5000)}${"</data></array></value>".repeat(5000)}</param></params></methodCall>`);
    assert.equal(r.status, 400); assert.match(r.text, /nested (deeper|tags exceeded)/i); // fast-xml-parser has its own limit, before ours
    r = await xml("<methodCall><methodName>VM.get_all</methodName><params><param><value><int>12x</int></value></param></params></methodCall>");
    assert.equal(r.status, 400); assert.match(r.text, /is not an integer/);
    r = await post(url, "/jsonrpc", Buffer.alloc(2 << 20, 0x20), "application/json");
    assert.equal(r.status, 413, "a body over 1 MiB");
    assert.equal((await post(url, "/nowhere", "{}", "application/json")).status, 404);
    // Calls.
    assert.deepEqual(await fails(url, "VM.nonsense", [sid]), ["MESSAGE_METHOD_UNKNOWN", "VM.nonsense"]);
    assert.deepEqual(await fails(url, "VM.get_nonsense", [sid, vm]), ["MESSAGE_METHOD_UNKNOWN", "VM.get_nonsense"]);
    assert.deepEqual(await fails(url, "VM.pause", [sid, vm, 1, 2]), ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.pause", "2", "4"]);
    assert.equal((await fails(url, "VM.set_memory_dynamic_range", [sid, vm, "lots", 1]))[0], "FIELD_TYPE_ERROR");
    assert.equal((await fails(url, "VM.set_memory_dynamic_range", [sid, vm, 2 ** 60, 1]))[0], "FIELD_TYPE_ERROR");
    assert.equal((await fails(url, "event.from", [sid, "VM", "", 1]))[0], "FIELD_TYPE_ERROR");
    assert.equal((await fails(url, "VM.get_record", [{ a: 1 }, vm]))[0], "SESSION_INVALID");
    await alive();

    // 1,000 bad logins: the first MAX_FAILS are checked (hashed), the rest refused at once; another address
    // is not locked out, and the server answers throughout.
    const t0 = Date.now();
    const before = { ...d.counts };
    const codes = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const e = await fails(url, "session.login_with_password", [`user${i % 7}`, `guess${i}`]);
      codes.set(e[0]!, (codes.get(e[0]!) ?? 0) + 1);
    }
    const took = Date.now() - t0;
    assert.deepEqual([...codes], [["SESSION_AUTHENTICATION_FAILED", 1000]]);
    assert.equal(d.counts.loginThrottled - before.loginThrottled, 1000 - MAX_FAILS);
    r = await post(url, "/jsonrpc", JSON.stringify({ jsonrpc: "2.0", id: 1, method: "session.login_with_password", params: ["admin", "pw"] }), "application/json", "127.0.0.2");
    assert.match(r.text, /"result":"OpaqueRef:/, "a login from another address still works");
    await alive();
    process.stderr.write(`# 1000 bad logins: ${took} ms, ${MAX_FAILS} hashed, ${1000 - MAX_FAILS} refused unhashed\n`);

    // Seeded fuzz.
    const seed = Number(process.env.XENO_SEED ?? 12);
    const rand = rng(seed);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
    const methods = (await ok(url, "system.listMethods", [])) as string[];
    const callable = methods.filter((m) => m !== "event.from" && m !== "session.logout");
    const values = (): unknown => pick([
      () => sid, () => vm, () => "", () => "OpaqueRef:NULL", () => Math.floor(rand() * 1e6), () => -1, () => 1.5, () => true, () => null,
      () => [], () => [vm], () => ({}), () => ({ k: "v" }), () => "x".repeat(Math.floor(rand() * 5000)), () => String(Math.floor(rand() * 1e9)),
    ])();
    const outcome = new Map<string, number>();
    const count = (k: string): void => { outcome.set(k, (outcome.get(k) ?? 0) + 1); };
    const N = 3000;
    for (let i = 0; i < N; i++) {
      const kind = rand();
      if (kind < 0.6) {
        const method = rand() < 0.9 ? pick(callable) : pick(["", "VM", "VM.", ".get_all", "x".repeat(300), "VM.get_record.x", "__proto__.get_all"]);
        const n = Math.floor(rand() * 5);
        const params = Array.from({ length: n }, values);
        if (rand() < 0.7 && n > 0) params[0] = sid;
        const res = await post(url, "/jsonrpc", JSON.stringify({ jsonrpc: "2.0", id: i, method, params }), "application/json");
        assert.ok(res.status < 500, `${method}: HTTP ${res.status}`);
        const body = JSON.parse(res.text) as { error?: { message: string } };
        count(`json ${body.error ? body.error.message : "ok"}`);
      } else {
        let body = Buffer.from(encodeMethodCall(pick(callable), [sid, ...Array.from({ length: Math.floor(rand() * 3) }, values)]));
        const flips = 1 + Math.floor(rand() * 4);
        for (let f = 0; f < flips; f++) {
          const at = Math.floor(rand() * body.length);
          const op = rand();
          if (op < 0.4) body[at] = Math.floor(rand() * 256);
          else if (op < 0.7) body = Buffer.concat([body.subarray(0, at), body.subarray(at + 1 + Math.floor(rand() * 20))]);
          else body = Buffer.concat([body.subarray(0, at), Buffer.from(pick(["<", ">", "</value>", "<value>", "&", "&amp;", "<struct>", "<int>", "\u0000"])), body.subarray(at)]);
        }
        const res = await post(url, "/", body, "text/xml");
        assert.ok(res.status < 500, `mutated XML: HTTP ${res.status}\n${body.toString("latin1").slice(0, 300)}`);
        const m = /<value>(Success|Failure)<\/value>(?:<\/member><member><name>ErrorDescription<\/name><value><array><data><value>([A-Z_]+)<)?/.exec(res.text);
        count(`xml ${res.status} ${m ? (m[2] ?? m[1]) : "?"}`);
      }
    }
    assert.equal(d.counts.internalErrors, 0, "no INTERNAL_ERROR");
    assert.ok(!log.some((l) => /cannot append to the audit log|failed unexpectedly/.test(l)), log.join("\n"));
    assert.ok(![...outcome.keys()].some((k) => k.includes("INTERNAL_ERROR")), [...outcome].join("\n"));
    await ok(url, "session.login_with_password", ["admin", "pw"]).catch(() => undefined); // throttled or not: answered
    assert.ok(["Running", "Paused", "Halted"].includes(await ok(url, "VM.get_power_state", [sid, vm]).catch(() => "Halted") as string));
    process.stderr.write(`# fuzz seed ${seed}, ${N} requests:\n${[...outcome].sort((a, b) => b[1] - a[1]).map(([k, v]) => `#   ${v}\t${k}`).join("\n")}\n`);
  } finally {
    await x.stop(); await hv.stop(); rmSync(dir, { recursive: true, force: true });
  }
});
