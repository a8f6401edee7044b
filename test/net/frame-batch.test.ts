/**
 * FrameBatcher / forEachFrame (src/net/frame-batch.ts): frames of several vifs in one message, split at the
 * size and count limits, read back in order through a real MessageChannel with the buffers transferred; a batch
 * whose lengths do not add up is refused whole.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { FrameBatcher, batchTransfer, forEachFrame, type FrameBatch } from "../../src/net/frame-batch.js";

const frame = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

test("frames of several vifs cross a MessageChannel in batches, in order, split at the limits", () => {
  const { port1, port2 } = new MessageChannel();
  const b = new FrameBatcher(100_000, 8, (x) => port1.postMessage(x, batchTransfer(x)));
  const sent: [number, Uint8Array][] = [];
  for (let k = 0; k < 20; k++) {
    const f = frame(k === 7 ? 65535 + 18 : 60 + k * 100, k);
    sent.push([k % 3, f]);
    b.add(k % 3, f);
  }
  assert.ok(b.pending > 0);
  b.flush();
  assert.equal(b.pending, 0);
  b.flush(); // nothing: no message
  const got: [number, Uint8Array][] = [];
  let messages = 0;
  for (let m = receiveMessageOnPort(port2); m !== undefined; m = receiveMessageOnPort(port2)) {
    messages++;
    const x = m.message as FrameBatch;
    assert.ok(x.meta.length / 2 <= 8 && x.bytes.length <= 100_000 + 65553);
    assert.ok(forEachFrame(x, (vif, f) => got.push([vif, f.slice()])));
  }
  assert.deepEqual(got, sent);
  assert.ok(messages >= 3 && messages <= 5, `${messages} messages for 20 frames`);
  assert.throws(() => b.add(0, new Uint8Array(65535 + 19)), RangeError);
  port1.close();
});

test("a batch whose lengths do not match its bytes is refused whole", () => {
  const calls: number[] = [];
  const fn = (vif: number): void => { calls.push(vif); };
  assert.equal(forEachFrame({ meta: Uint32Array.of(0, 10, 1, 10), bytes: new Uint8Array(19) }, fn), false);
  assert.equal(forEachFrame({ meta: Uint32Array.of(0, 0xffffffff), bytes: new Uint8Array(4) }, fn), false);
  assert.equal(forEachFrame({ meta: Uint32Array.of(0), bytes: new Uint8Array(0) }, fn), false);
  assert.equal(forEachFrame({ meta: [0, 4] as unknown as Uint32Array, bytes: new Uint8Array(4) }, fn), false);
  assert.deepEqual(calls, []);
  assert.equal(forEachFrame({ meta: Uint32Array.of(2, 3, 5, 1), bytes: new Uint8Array(4) }, fn), true);
  assert.deepEqual(calls, [2, 5]);
});
