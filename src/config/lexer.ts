/**
 * Tokenizer for the xl.cfg grammar (xl.cfg(5) "SYNTAX"; Xen's tools/libs/util/libxlu_cfg_l.l).
 *
 * Tokens, as in Xen's lexer:
 * - key        [a-z][._0-9a-z]*          (lowercase only; dots allowed, as in xl.conf's `vif.default.bridge`)
 * - number     decimal, 0x hex, 0-prefixed octal (xl keeps numbers as text and strtol()s them on use; we
 *              check the form here so `memory = 10M` fails where it is written, not later)
 * - string     '…' or "…" on one line, with C escapes \" \' \\ \a \b \f \n \r \t \v \xHH \ooo
 * - punctuation  [ ] , = += ;   and newline (a statement separator; `#` comments run to the end of line)
 *
 * Deliberate differences from Xen, all more permissive or more helpful, never changing a valid file's meaning:
 * - `\r` is whitespace, so CRLF files parse (Xen reports a lexical error).
 * - `\xHH` and `\ooo` escapes work as in C. Xen's dequoter validates them but never stores the character (and
 *   parses "octal" in base 10), so no working xl config can depend on them.
 * - Errors name the column and say what was expected; characters typical of Python configs (`( ) : . + -`)
 *   get a hint, as xl prints "Config file looks like it contains Python code".
 */
import { ConfigError, type SourcePos } from "./errors.js";

export type TokenKind = "key" | "number" | "string" | "[" | "]" | "," | "=" | "+=" | ";" | "newline" | "eof";

export interface Token extends SourcePos {
  kind: TokenKind;
  /** Key name, number text, or the decoded string value. */
  text: string;
  /** Numeric value of a number token. */
  num?: number;
}

/** A named source text: a config file, or one command-line override. */
export interface Source {
  name: string;
  text: string;
  /** Line number reported for the source's first line (overrides report their argument index). */
  firstLine: number;
  lines: string[];
}

export function makeSource(name: string, text: string, firstLine = 1): Source {
  return { name, text, firstLine, lines: text.split("\n").map((l) => l.replace(/\r$/, "")) };
}

export function sourceError(src: Source, code: ConstructorParameters<typeof ConfigError>[0], detail: string,
                            pos: SourcePos, key?: string): ConfigError {
  return new ConfigError(code, detail, {
    file: src.name, line: pos.line, column: pos.column, key,
    sourceLine: src.lines[pos.line - src.firstLine],
  });
}

const PYTHONISH = "():.+-";

export function tokenize(src: Source): Token[] {
  const s = src.text;
  const out: Token[] = [];
  let i = 0;
  let line = src.firstLine;
  let lineStart = 0;
  const pos = (at: number): SourcePos => ({ line, column: at - lineStart + 1 });
  const fail = (code: "CONFIG_SYNTAX" | "CONFIG_BAD_STRING" | "CONFIG_BAD_NUMBER", msg: string, at: number) =>
    sourceError(src, code, msg, pos(at));

  while (i < s.length) {
    const c = s[i];
    if (c === " " || c === "\t" || c === "\r") { i++; continue; }
    if (c === "#") { while (i < s.length && s[i] !== "\n") i++; continue; }
    if (c === "\n") {
      out.push({ kind: "newline", text: "\n", ...pos(i) });
      i++; line++; lineStart = i;
      continue;
    }
    const start = i;
    if (c >= "a" && c <= "z") {
      while (i < s.length && /[._0-9a-z]/.test(s[i])) i++;
      // A key glued to an uppercase letter or '-' (`Memory`, `on-crash`) is one bad word, not two tokens.
      if (i < s.length && /[A-Z-]/.test(s[i])) {
        let j = i;
        while (j < s.length && /[-._0-9a-zA-Z]/.test(s[j])) j++;
        throw fail("CONFIG_SYNTAX", badWord(s.slice(start, j), out), start);
      }
      out.push({ kind: "key", text: s.slice(start, i), ...pos(start) });
      continue;
    }
    if (c >= "0" && c <= "9") {
      while (i < s.length && /[0-9A-Za-z_.]/.test(s[i])) i++; // '.' so `1.5` is one bad number
      const text = s.slice(start, i);
      let num: number;
      if (/^0[xX][0-9a-fA-F]+$/.test(text)) num = parseInt(text.slice(2), 16);
      else if (/^0[0-7]*$/.test(text)) num = text.length > 1 ? parseInt(text.slice(1), 8) : 0;
      else if (/^[1-9][0-9]*$/.test(text)) num = parseInt(text, 10);
      else {
        throw fail("CONFIG_BAD_NUMBER",
          `invalid number '${text}' (numbers are decimal, 0x hex or 0-prefixed octal; quote other text)`, start);
      }
      if (!Number.isSafeInteger(num)) throw fail("CONFIG_BAD_NUMBER", `number '${text}' is too large`, start);
      out.push({ kind: "number", text, num, ...pos(start) });
      continue;
    }
    if (c === "'" || c === '"') {
      const str = lexString(s, start, fail);
      out.push({ kind: "string", text: str.value, ...pos(start) });
      i = str.end;
      continue;
    }
    if (c === "+" && s[i + 1] === "=") { out.push({ kind: "+=", text: "+=", ...pos(i) }); i += 2; continue; }
    if (c === "[" || c === "]" || c === "," || c === "=" || c === ";") {
      out.push({ kind: c, text: c, ...pos(i) });
      i++;
      continue;
    }
    if (/[A-Z_]/.test(c)) {
      let j = i;
      while (j < s.length && /[-._0-9a-zA-Z]/.test(s[j])) j++;
      throw fail("CONFIG_SYNTAX", badWord(s.slice(i, j), out), i);
    }
    const hint = PYTHONISH.includes(c)
      ? " (xl config files are not Python: only key = value, strings, numbers and [lists])"
      : "";
    throw fail("CONFIG_SYNTAX", `unexpected character ${JSON.stringify(c)}${hint}`, i);
  }
  out.push({ kind: "eof", text: "", ...pos(i) });
  return out;
}

/** A word that is neither a key nor a value: say which, from the token before it. */
function badWord(word: string, before: Token[]): string {
  const prev = before[before.length - 1]?.kind;
  if (prev === "=" || prev === "+=" || prev === "[" || prev === ",") {
    return `unquoted string '${word}' (strings need quotes: "${word}")`;
  }
  return `invalid key '${word}': keys are lowercase letters, digits, '_' and '.'`;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"', "'": "'", "\\": "\\", a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v",
};

function lexString(s: string, start: number,
                   fail: (code: "CONFIG_BAD_STRING", msg: string, at: number) => ConfigError): { value: string; end: number } {
  const quote = s[start];
  let i = start + 1;
  let out = "";
  for (;;) {
    if (i >= s.length || s[i] === "\n" || (s[i] === "\r" && s[i + 1] === "\n")) {
      throw fail("CONFIG_BAD_STRING", `unterminated string: missing closing ${quote} before end of line`, start);
    }
    const c = s[i];
    if (c === quote) return { value: out, end: i + 1 };
    if (c !== "\\") { out += c; i++; continue; }
    const e = s[i + 1];
    if (e !== undefined && e in SIMPLE_ESCAPES) { out += SIMPLE_ESCAPES[e]; i += 2; continue; }
    if (e === "x") {
      const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(i + 2, i + 4));
      if (!m) throw fail("CONFIG_BAD_STRING", "invalid \\x escape in string: expected 1 or 2 hex digits", i);
      out += String.fromCharCode(parseInt(m[0], 16));
      i += 2 + m[0].length;
      continue;
    }
    if (e !== undefined && e >= "0" && e <= "7") {
      const m = /^[0-7]{1,3}/.exec(s.slice(i + 1, i + 4))!;
      const v = parseInt(m[0], 8);
      if (v > 0xff) throw fail("CONFIG_BAD_STRING", `octal escape \\${m[0]} is out of range (max \\377)`, i);
      out += String.fromCharCode(v);
      i += 1 + m[0].length;
      continue;
    }
    const shown = e === undefined || e === "\n" ? "end of line" : `'\\${e}'`;
    throw fail("CONFIG_BAD_STRING", `invalid escape ${shown} in string (use \\\\ for a backslash)`, i);
  }
}
