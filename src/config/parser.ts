/**
 * Parser for the xl.cfg grammar (xl.cfg(5) "SYNTAX"; Xen's tools/libs/util/libxlu_cfg_y.y and libxlu_cfg.c).
 *
 *   file       := { stmt }                      the last statement needs no terminator
 *   stmt       := [ key ("=" | "+=") value ] ( ";" | newline | eof )
 *   value      := string | number | "[" nl* [ value nl* { "," nl* value nl* } [ "," nl* ] ] "]"
 *
 * Semantics, as in libxlu_cfg.c:
 * - the last assignment to a key wins (earlier ones are forgotten, with their positions);
 * - `key += value` appends to the previous value: string + string concatenates, list + list concatenates;
 *   a list added to a string (or vice versa) is an error, and so is `+=` with a number ("can't use += with
 *   numbers"); `+=` to a key not yet set is a plain assignment;
 * - newlines are allowed anywhere inside a list; empty lists and a trailing comma are allowed.
 * Command-line overrides (`xeno create demo.cfg memory=512 'extra="quiet"'`) are parsed with the same grammar
 * after the file, as xl does by appending them to the file's text; each reports positions as
 * `<command line>:N:col` where N is the override's index (1-based).
 */
import { readFileSync } from "node:fs";
import { ConfigError, type SourcePos } from "./errors.js";
import { makeSource, sourceError, tokenize, type Source, type Token } from "./lexer.js";

export type ConfigValue =
  | { kind: "string"; value: string; pos: SourcePos }
  | { kind: "number"; value: number; text: string; pos: SourcePos }
  | { kind: "list"; items: ConfigValue[]; pos: SourcePos };

export interface Setting {
  key: string;
  value: ConfigValue;
  op: "=" | "+=";
  /** Position of the key in its source. */
  pos: SourcePos;
  source: Source;
}

/** The parsed but unvalidated config: key → last setting (iteration in last-assignment order). */
export class RawConfig {
  readonly settings = new Map<string, Setting>();

  get(key: string): Setting | undefined {
    return this.settings.get(key);
  }

  keys(): string[] {
    return [...this.settings.keys()];
  }

  /** A plain-JS view (strings, numbers, nested arrays), e.g. for tests and debugging. */
  toPlain(): Record<string, unknown> {
    const plain = (v: ConfigValue): unknown => (v.kind === "list" ? v.items.map(plain) : v.value);
    const o: Record<string, unknown> = {};
    for (const [k, s] of this.settings) o[k] = plain(s.value);
    return o;
  }
}

export const COMMAND_LINE = "<command line>";

/** Parses config text into `into` (a fresh RawConfig when absent). */
export function parseConfigText(text: string, fileName = "<string>", into = new RawConfig(), firstLine = 1): RawConfig {
  const src = makeSource(fileName, text, firstLine);
  new Parser(src, tokenize(src), into).file();
  return into;
}

/** Reads and parses a config file (no validation). `displayName` is used in messages (default: the path). */
export function readConfigFile(path: string, displayName = path): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message;
    throw new ConfigError("CONFIG_READ", `cannot read config file: ${why}`, { file: displayName, line: 1, column: 1, cause: e });
  }
  return parseConfigText(text, displayName);
}

/**
 * Applies `key=value` overrides from the command line, each parsed with the file grammar (so strings need
 * quotes: `name="web"`; in a shell, `'name="web"'`). An override without '=' is refused, as xl only treats
 * arguments containing '=' as config.
 */
export function applyOverrides(cfg: RawConfig, overrides: readonly string[]): RawConfig {
  overrides.forEach((o, i) => {
    if (!o.includes("=")) {
      throw new ConfigError("CONFIG_SYNTAX", `override '${o}' is not of the form key=value`,
        { file: COMMAND_LINE, line: i + 1, column: 1, sourceLine: o });
    }
    parseConfigText(o, COMMAND_LINE, cfg, i + 1);
  });
  return cfg;
}

function describe(t: Token): string {
  switch (t.kind) {
    case "eof": return "end of input";
    case "newline": return "newline";
    case "string": return `string ${JSON.stringify(t.text)}`;
    case "number": return `number ${t.text}`;
    case "key": return `'${t.text}'`;
    default: return `'${t.kind}'`;
  }
}

class Parser {
  private i = 0;

  constructor(private readonly src: Source, private readonly toks: Token[], private readonly cfg: RawConfig) {}

  private peek(): Token { return this.toks[this.i]; }
  private next(): Token { return this.toks[this.i++]; }

  private fail(msg: string, at: SourcePos, key?: string, code: "CONFIG_SYNTAX" | "CONFIG_APPEND" = "CONFIG_SYNTAX"): ConfigError {
    return sourceError(this.src, code, msg, at, key);
  }

  file(): void {
    for (;;) {
      const t = this.next();
      if (t.kind === "eof") return;
      if (t.kind === "newline" || t.kind === ";") continue;
      if (t.kind !== "key") {
        const hint = t.kind === "string" || t.kind === "number" ? " (a statement starts with key = value)" : "";
        throw this.fail(`expected a key, found ${describe(t)}${hint}`, t);
      }
      const op = this.next();
      if (op.kind !== "=" && op.kind !== "+=") {
        throw this.fail(`expected '=' or '+=' after '${t.text}', found ${describe(op)}`, op, t.text);
      }
      const value = this.value(t.text);
      const end = this.peek();
      if (end.kind !== "newline" && end.kind !== ";" && end.kind !== "eof") {
        throw this.fail(`expected ';' or newline after the value of '${t.text}', found ${describe(end)}`, end, t.text);
      }
      this.store({ key: t.text, value, op: op.kind, pos: { line: t.line, column: t.column }, source: this.src });
    }
  }

  private value(key: string): ConfigValue {
    const t = this.next();
    const pos = { line: t.line, column: t.column };
    if (t.kind === "string") return { kind: "string", value: t.text, pos };
    if (t.kind === "number") return { kind: "number", value: t.num!, text: t.text, pos };
    if (t.kind === "[") return this.list(key, pos);
    const hint = t.kind === "key" ? ` (strings need quotes: "${t.text}")` : "";
    throw this.fail(`expected a value (string, number or [list]) for '${key}', found ${describe(t)}${hint}`, t, key);
  }

  private skipNewlines(): void {
    while (this.peek().kind === "newline") this.i++;
  }

  private list(key: string, open: SourcePos): ConfigValue {
    const items: ConfigValue[] = [];
    for (;;) {
      this.skipNewlines();
      if (this.peek().kind === "]") { this.i++; break; }
      items.push(this.value(key));
      this.skipNewlines();
      const t = this.next();
      if (t.kind === "]") break;
      if (t.kind !== ",") {
        throw this.fail(`expected ']' or ',' after a list item (list opened at ${open.line}:${open.column}), found ${describe(t)}`, t, key);
      }
    }
    return { kind: "list", items, pos: open };
  }

  private store(s: Setting): void {
    const prev = this.cfg.settings.get(s.key);
    if (s.op === "+=" && prev) {
      const a = prev.value, b = s.value;
      if (a.kind === "number" || b.kind === "number") {
        throw this.fail(`can't use += with numbers (key '${s.key}')`, b.pos, s.key, "CONFIG_APPEND");
      }
      if (a.kind === "string" && b.kind === "string") {
        s = { ...s, value: { kind: "string", value: a.value + b.value, pos: b.pos } };
      } else if (a.kind === "list" && b.kind === "list") {
        s = { ...s, value: { kind: "list", items: [...a.items, ...b.items], pos: b.pos } };
      } else {
        throw this.fail(`can't add ${b.kind === "list" ? "a [list] to a \"string\"" : "a \"string\" to a [list]"} (key '${s.key}')`,
          b.pos, s.key, "CONFIG_APPEND");
      }
    }
    // Delete first so that iteration order is last-assignment order; consumers only look keys up.
    this.cfg.settings.delete(s.key);
    this.cfg.settings.set(s.key, s);
  }
}
