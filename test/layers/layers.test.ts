/**
 * The layer check (check-layers.ts) on the real tree, and on a planted bad import to show the check works.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkLayers, formatViolations } from "./check-layers.js";

const SRC = fileURLToPath(new URL("../../../src", import.meta.url)); // from dist/test/layers/

test("src/: every import points down the layers (STYLE.md)", () => {
  const v = checkLayers(SRC);
  assert.equal(v.length, 0, `layer violations:\n${formatViolations(v)}`);
});

test("a planted upward import, a same-layer import and an unranked folder are each reported with file and line", () => {
  const dir = mkdtempSync(join(tmpdir(), "xeno-layers-"));
  try {
    mkdirSync(join(dir, "machine"));
    mkdirSync(join(dir, "xen"));
    mkdirSync(join(dir, "cpu"));
    mkdirSync(join(dir, "devices"));
    mkdirSync(join(dir, "mystery"));
    writeFileSync(join(dir, "xen", "domain.ts"), "export const X = 1;\n");
    writeFileSync(join(dir, "devices", "gic.ts"), "export const G = 1;\n");
    writeFileSync(join(dir, "machine", "board.ts"),
      "// from \"../xen/domain.js\" in a comment is fine\nimport { G } from \"../devices/gic.js\";\nimport type { X } from \"../xen/domain.js\";\n");
    writeFileSync(join(dir, "cpu", "cpu.ts"), "import { G } from '../devices/gic.js';\n");
    writeFileSync(join(dir, "mystery", "m.ts"), "export {};\n");
    writeFileSync(join(dir, "machine", "m2.ts"), "const m = await import(\"../mystery/m.js\");\n");
    const v = checkLayers(dir);
    const text = formatViolations(v);
    assert.equal(v.length, 3, text);
    assert.match(text, /src\/cpu\/cpu\.ts:1: import "\.\.\/devices\/gic\.js": cpu \(layer 2\) may not import devices \(layer 2\): same layer/);
    assert.match(text, /src\/machine\/board\.ts:3: import "\.\.\/xen\/domain\.js": machine \(layer 3\) may not import xen \(layer 4\): upward/);
    assert.match(text, /src\/machine\/m2\.ts:1: import "\.\.\/mystery\/m\.js": src\/mystery has no rank/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
