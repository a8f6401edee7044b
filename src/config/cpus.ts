/**
 * CPU lists for cpus= / cpus_soft= (xl.cfg(5) "cpus"; Xen's tools/xl/xl_parse.c parse_cpurange).
 *
 * A CPULIST is comma-separated terms applied in order: `all`, `N`, `N-M`, `node:N`, `nodes:N-M`, each optionally
 * prefixed by `^` to remove instead of add (`^all` is refused). The host's CPU count and NUMA layout are not
 * known when the config is parsed, so the list is kept as terms and resolved later with `resolveCpuList`.
 * `cpus = "…"` applies one list to every vCPU; `cpus = ["2", "3-8,^5"]` gives vCPU i the i-th list.
 */

export interface CpuTerm {
  remove: boolean;
  what: "all" | "cpus" | "nodes";
  from: number;
  to: number;
}

export type CpuAffinity =
  | { kind: "all-vcpus"; text: string; terms: CpuTerm[] }
  | { kind: "per-vcpu"; texts: string[]; terms: CpuTerm[][] };

/** Parses a CPULIST; returns an error message (without position) when malformed. */
export function parseCpuList(text: string): CpuTerm[] | string {
  const terms: CpuTerm[] = [];
  for (const raw of text.split(",")) {
    if (raw === "") continue; // strtok skips empty fields
    let s = raw;
    const remove = s.startsWith("^");
    if (remove) s = s.slice(1);
    let what: CpuTerm["what"] = "cpus";
    const nm = /^nodes?:/.exec(s);
    if (nm) { what = "nodes"; s = s.slice(nm[0].length); }
    if (s === "all") {
      if (remove) return `can't combine "^" and "all" in '${raw}'`;
      terms.push({ remove, what: "all", from: 0, to: 0 });
      continue;
    }
    const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(s);
    if (!m) return `invalid CPU range '${raw}' (e.g. "0-3,5,^1", "all", "node:0")`;
    const from = Number(m[1]), to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) return `invalid CPU range '${raw}': end before start`;
    if (to > 4095) return `CPU number in '${raw}' is too large`;
    terms.push({ remove, what, from, to });
  }
  if (terms.length === 0) return `empty CPU list '${text}'`;
  return terms;
}

/**
 * Resolves terms against a host with `nrCpus` CPUs; `nodeCpus(n)` lists a NUMA node's CPUs (Xeno's machine
 * has one node, 0, holding every CPU — the default). CPUs beyond the host are dropped. Returns sorted CPUs.
 */
export function resolveCpuList(terms: readonly CpuTerm[], nrCpus: number,
                               nodeCpus: (node: number) => number[] = (n) => (n === 0 ? range(0, nrCpus - 1) : [])): number[] {
  const set = new Set<number>();
  for (const t of terms) {
    const cpus = t.what === "all" ? range(0, nrCpus - 1)
      : t.what === "cpus" ? range(t.from, t.to)
      : range(t.from, t.to).flatMap(nodeCpus);
    for (const c of cpus) if (t.remove) set.delete(c); else if (c < nrCpus) set.add(c);
  }
  return [...set].sort((a, b) => a - b);
}

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(i);
  return out;
}
