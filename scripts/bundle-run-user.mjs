#!/usr/bin/env node
// Writes dist/run-user.bundle.js: the ES modules `xeno run-user` loads (dist/src/user/run-user.js and its
// static imports, ~44 files), each turned into a CommonJS function by TypeScript's transpiler, in one script.
// src/cli/bundle-loader.ts runs it through vm.Script with a V8 code cache, which saves Node's ES module
// loader (resolving, reading and compiling each file: ~70 of the ~110 ms the imports took; docs/cpu-internals.md
// "Start-up of `xeno run-user`"). The first line records each file's path, size and mtime; the loader falls back
// to the ES modules when any of them changed since (a build by tsc alone), so a stale bundle never runs.
// Usage (scripts/build.sh runs it after tsc): node scripts/bundle-run-user.mjs [DIST]
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const dist = path.resolve(process.argv[2] ?? path.join(root, "dist"));
const ts = createRequire(path.join(root, "package.json"))("typescript");
const ENTRY = "src/user/run-user.js";
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s*"([^"]+)"\s*;|(?:^|\n)\s*import\s*"([^"]+)"\s*;/g;

const order = [];
const seen = new Set();
function visit(rel) {
  if (seen.has(rel)) return;
  seen.add(rel);
  const src = fs.readFileSync(path.join(dist, rel), "utf8");
  if (/\bimport\s*\(/.test(src.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, ""))) throw new Error(`${rel}: dynamic import() is not bundled`);
  for (const m of src.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith(".")) visit(path.posix.join(path.posix.dirname(rel), spec));
  }
  order.push({ rel, src });
}
visit(ENTRY);

const parts = [];
const stamps = [];
for (const { rel, src } of order) {
  const st = fs.statSync(path.join(dist, rel));
  stamps.push([rel, st.size, st.mtimeMs]);
  const body = src.replace(/import\.meta\.url/g, "__importMetaUrl");
  if (body.includes("import.meta")) throw new Error(`${rel}: import.meta other than import.meta.url`);
  const out = ts.transpileModule(body, {
    fileName: rel,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, removeComments: true },
  }).outputText.replace(/\n\/\/# sourceMappingURL=.*/, "")
    // ASCII only (non-ASCII code units as \u escapes: equal in strings, templates and regular expressions), so the
    // loader reads it as latin1 into a one-byte string: 2-3x faster than decoding UTF-8 into a two-byte one.
    .replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  // Every require the transpiled module makes must be a built-in or a module of the bundle.
  for (const m of out.matchAll(/\brequire\("([^"]+)"\)/g)) {
    const spec = m[1];
    if (spec.startsWith(".") ? !seen.has(path.posix.join(path.posix.dirname(rel), spec)) : !spec.startsWith("node:")) {
      throw new Error(`${rel}: require("${spec}") is not in the bundle`);
    }
  }
  parts.push(`${JSON.stringify(rel)}: function (exports, require, module, __importMetaUrl) {\n${out}\n},`);
}
// The script's value is a function of (node's require for built-ins, the dist directory's file URL) that
// evaluates the entry and returns its exports. Relative specifiers resolve as Node's ES loader would.
if (parts.some((p) => /[^\x00-\x7f]/.test(p)) || /[^\x00-\x7f]/.test(JSON.stringify(stamps))) throw new Error("non-ASCII left in the bundle");
const text = `// ${JSON.stringify(stamps)}
(function (nodeRequire, distUrl) {
"use strict";
const defs = {
${parts.join("\n")}
};
const done = Object.create(null);
function load(rel) {
  let m = done[rel];
  if (m !== undefined) return m.exports;
  m = done[rel] = { exports: {} };
  const dir = rel.slice(0, rel.lastIndexOf("/") + 1);
  const req = (spec) => {
    if (spec[0] !== ".") return nodeRequire(spec);
    const parts = (dir + spec).split("/"), out = [];
    for (const p of parts) { if (p === "..") out.pop(); else if (p !== ".") out.push(p); }
    return load(out.join("/"));
  };
  defs[rel](m.exports, req, m, distUrl + rel);
  return m.exports;
}
return load(${JSON.stringify(ENTRY)});
})
`;
const out = path.join(dist, "run-user.bundle.js");
fs.writeFileSync(out + ".tmp", text);
fs.renameSync(out + ".tmp", out);
// A new bundle invalidates the code cache made from the old one (V8 would reject it anyway: source hash).
for (const f of fs.readdirSync(dist)) if (/^run-user\.bundle\..*\.cache$/.test(f)) fs.rmSync(path.join(dist, f), { force: true });
