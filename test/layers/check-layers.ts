/**
 * The layer rule of STYLE.md, checked mechanically: each top-level folder of src/ has a rank, and a module may
 * import only from folders of a lower rank (or its own folder). So the board (cpu, mmu, devices, machine) knows
 * nothing of Xen, the Xen ABI nothing of the back-ends or the hypervisor, and so on up to the CLI; no import
 * cycle between folders can exist. Type-only imports count too: a lower layer must not name an upper one's
 * types (declare a narrow interface below and let the upper layer satisfy it).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

/** Rank of each src/ folder: lower ranks are lower layers. Folders of one rank may not import each other. */
export const LAYERS: Readonly<Record<string, number>> = {
  common: 0,
  mmu: 1, xenstore: 1, config: 1, net: 1, storage: 1,
  cpu: 2, devices: 2,
  machine: 3, user: 3,
  images: 4, xen: 4,
  backends: 5,
  hv: 6,
  // The XenAPI endpoint sits below the toolstack, not above it as STYLE.md's arrow has it: xenod hosts it and
  // hands it a narrow backend (src/api/backend.ts: hypervisor requests and events), as it relays for the CLI.
  api: 7,
  toolstack: 8,
  cli: 9,
};

export interface LayerViolation {
  /** File (relative to the src root), 1-based line, and the import as written. */
  file: string;
  line: number;
  spec: string;
  why: string;
}

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']/g;

function tsFiles(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** Every import in the .ts files under `srcRoot` that breaks the layer rule (empty: all is well). */
export function checkLayers(srcRoot: string, layers: Readonly<Record<string, number>> = LAYERS): LayerViolation[] {
  const root = resolve(srcRoot);
  const bad: LayerViolation[] = [];
  const folderOf = (abs: string): string => relative(root, abs).split(sep)[0]!;
  for (const file of tsFiles(root, []).sort()) {
    const rel = relative(root, file);
    const from = folderOf(file);
    const fromRank = layers[from];
    const text = readFileSync(file, "utf8");
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const trimmed = line.trimStart();
      if (trimmed.startsWith("//") || trimmed.startsWith("*")) continue; // comments that mention imports
      for (const m of line.matchAll(IMPORT_RE)) {
        const spec = m[1]!;
        if (!spec.startsWith(".")) continue; // node: built-ins and packages
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(root + sep)) {
          bad.push({ file: rel, line: i + 1, spec, why: "imports from outside src/" });
          continue;
        }
        const to = folderOf(target);
        if (to === from) continue;
        const toRank = layers[to];
        if (fromRank === undefined) { bad.push({ file: rel, line: i + 1, spec, why: `src/${from} has no rank in the layer table (test/layers/check-layers.ts)` }); continue; }
        if (toRank === undefined) { bad.push({ file: rel, line: i + 1, spec, why: `src/${to} has no rank in the layer table (test/layers/check-layers.ts)` }); continue; }
        if (toRank >= fromRank) {
          bad.push({ file: rel, line: i + 1, spec,
            why: `${from} (layer ${fromRank}) may not import ${to} (layer ${toRank}): ${toRank === fromRank ? "same layer" : "upward"}` });
        }
      }
    }
  }
  return bad;
}

export function formatViolations(v: readonly LayerViolation[]): string {
  return v.map((x) => `src/${x.file}:${x.line}: import "${x.spec}": ${x.why}`).join("\n");
}
