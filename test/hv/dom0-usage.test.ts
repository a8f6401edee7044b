/**
 * Domain-0's share (src/hv/dom0-usage.ts): the wasm memories' resident part is found in smaps (a read-write
 * mapping right after V8's 2 GiB guard), and a thread that names itself a domain thread has its CPU time
 * taken out of this process's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { domainThreadsCpuSeconds, wasmResidentKiB } from "../../src/hv/dom0-usage.js";

test("dom0-usage: a guest-sized wasm memory's touched pages are counted as guest RAM", { skip: process.platform !== "linux" ? "needs /proc" : false }, () => {
  const before = wasmResidentKiB(readFileSync("/proc/self/smaps", "latin1"));
  const m = new WebAssembly.Memory({ initial: 1024, maximum: 1024, shared: true }); // 64 MiB
  const u8 = new Uint8Array(m.buffer);
  for (let i = 0; i < 16 << 20; i += 4096) u8[i] = 1;
  const after = wasmResidentKiB(readFileSync("/proc/self/smaps", "latin1"));
  assert.ok(after - before >= 16 * 1024 && after - before < 20 * 1024, `${after - before} KiB for 16 MiB touched`);
  // A plain buffer of the same size is not a wasm memory.
  const plain = new Uint8Array(new SharedArrayBuffer(16 << 20)).fill(1);
  assert.ok(wasmResidentKiB(readFileSync("/proc/self/smaps", "latin1")) - after < 1024, String(plain.length));
});

test("dom0-usage: a busy thread named as a domain thread shows in domainThreadsCpuSeconds", { skip: process.platform !== "linux" ? "needs /proc" : false }, async () => {
  const url = new URL("../../src/hv/dom0-usage.js", import.meta.url).href;
  const w = new Worker(`const { parentPort } = require("node:worker_threads");
import(${JSON.stringify(url)}).then((m) => { m.nameDomainThread(); const end = Date.now() + 1500; while (Date.now() < end); parentPort.postMessage(1);
  setInterval(() => {}, 1000); });`,
    { eval: true });
  // The worker stays alive until terminated (a thread that ended is gone from /proc/self/task, its time with it).
  await new Promise<void>((r) => w.once("message", () => r()));
  const s = domainThreadsCpuSeconds();
  await w.terminate();
  // At most its 1.5 s of wall time; at least a fair share of it on a loaded two-core host.
  assert.ok(s >= 0.2 && s <= 1.7, `domain thread CPU ${s} s after a 1.5 s busy loop`);
});
