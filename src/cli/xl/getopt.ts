/**
 * Option parsing for the xl-style subcommands, as xl does it (getopt_long with GNU permutation: options may
 * follow the positional arguments, `-abc` clusters, `-dVALUE` / `-d VALUE`, `--long=VALUE` / `--long VALUE`,
 * `--` ends the options). A bad option or a missing argument is a usage error (exit status 2, as xl's
 * def_getopt).
 */

/** A usage error: wrong options or arguments. The dispatcher prints it with the command's help; exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One option: its short letter, optional long name, and whether it takes a value. */
export interface OptSpec {
  short: string;
  long?: string;
  value?: boolean;
}

export interface ParsedOpts {
  /** Each option seen, in order, by its short letter (repeats kept: `-w -w` counts twice). */
  opts: { opt: string; value?: string }[];
  /** The positional arguments. */
  args: string[];
  /** `-h` / `--help` was given. */
  help: boolean;
}

/** Parses `argv` against `specs`; `-h`/`--help` are always accepted. Throws UsageError. */
export function getopt(argv: readonly string[], specs: readonly OptSpec[]): ParsedOpts {
  const out: ParsedOpts = { opts: [], args: [], help: false };
  const byShort = new Map(specs.map((s) => [s.short, s]));
  const byLong = new Map(specs.filter((s) => s.long !== undefined).map((s) => [s.long!, s]));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") { out.args.push(...argv.slice(i + 1)); break; }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (name === "help") { out.help = true; continue; }
      const s = byLong.get(name);
      if (!s) throw new UsageError(`option '--${name}' not supported`);
      if (s.value) {
        let v: string;
        if (eq >= 0) v = a.slice(eq + 1);
        else if (i + 1 < argv.length) v = argv[++i]!;
        else throw new UsageError(`option '--${name}' needs a value`);
        out.opts.push({ opt: s.short, value: v });
      } else {
        if (eq >= 0) throw new UsageError(`option '--${name}' takes no value`);
        out.opts.push({ opt: s.short });
      }
      continue;
    }
    // "-" alone is a positional argument (as for getopt).
    if (a.startsWith("-") && a.length > 1) {
      for (let k = 1; k < a.length; k++) {
        const c = a[k]!;
        if (c === "h") { out.help = true; continue; }
        const s = byShort.get(c);
        if (!s) throw new UsageError(`option '-${c}' not supported`);
        if (!s.value) { out.opts.push({ opt: c }); continue; }
        const rest = a.slice(k + 1);
        if (rest !== "") out.opts.push({ opt: c, value: rest });
        else if (i + 1 < argv.length) out.opts.push({ opt: c, value: argv[++i]! });
        else throw new UsageError(`option '-${c}' needs a value`);
        break;
      }
      continue;
    }
    out.args.push(a);
  }
  return out;
}

/** How many times option `c` was given. */
export function count(p: ParsedOpts, c: string): number {
  return p.opts.filter((o) => o.opt === c).length;
}

/** The last value given to option `c`, if any. */
export function value(p: ParsedOpts, c: string): string | undefined {
  for (let i = p.opts.length - 1; i >= 0; i--) if (p.opts[i]!.opt === c) return p.opts[i]!.value;
  return undefined;
}
