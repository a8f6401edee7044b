/** ImageCache: one SharedArrayBuffer per distinct boot file, shared by the domains that hold it. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageCache } from "../../src/hv/image-cache.js";

test("same file → the same shared bytes; a rewritten file → a new copy; released when the last holder goes", () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-imgcache-"));
  try {
    const f = join(dir, "Image");
    writeFileSync(f, Buffer.from("kernel-v1"));
    const c = new ImageCache();
    const a = c.acquire(f), b = c.acquire(f);
    assert.ok(a.bytes.buffer instanceof SharedArrayBuffer);
    assert.equal(a.bytes.buffer, b.bytes.buffer);
    assert.equal(Buffer.from(a.bytes).toString(), "kernel-v1");
    assert.deepEqual(c.size, { images: 1, bytes: 9 });
    writeFileSync(f, Buffer.from("kernel-v2!"));
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    const n = c.acquire(f);
    assert.notEqual(n.bytes.buffer, a.bytes.buffer);
    assert.equal(Buffer.from(n.bytes).toString(), "kernel-v2!");
    assert.equal(Buffer.from(a.bytes).toString(), "kernel-v1"); // holders of the old copy keep it
    assert.deepEqual(c.size, { images: 2, bytes: 19 });
    c.release(a); c.release(b);
    assert.deepEqual(c.size, { images: 1, bytes: 10 });
    c.release(n);
    assert.deepEqual(c.size, { images: 0, bytes: 0 });
    assert.throws(() => c.acquire(join(dir, "missing")), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
