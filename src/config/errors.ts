/**
 * Errors and warnings of the xl.cfg parser and validator.
 *
 * One error class with a stable `code` (tests and the CLI switch on it, never on the message) and the
 * structured position: file, line, column (1-based; a tab counts as one column, as in gcc) and the key when
 * known. The message always starts with `file:line:column:` so it reads like a compiler diagnostic, e.g.
 * `demo.cfg:3:12: expected ']' or ',' after a list item (list opened at 3:7), found newline`.
 */

/** Stable error codes. */
export type ConfigErrorCode =
  | "CONFIG_READ" //           the config file could not be read
  | "CONFIG_SYNTAX" //         grammar error: unexpected token or character
  | "CONFIG_BAD_STRING" //     unterminated string, invalid escape
  | "CONFIG_BAD_NUMBER" //     malformed or out-of-range number literal
  | "CONFIG_APPEND" //         `+=` between a list and a string, or with a number
  | "CONFIG_MISSING_KEY" //    a mandatory key (name, kernel) is absent
  | "CONFIG_WRONG_KIND" //     a list where a single value is needed or vice versa
  | "CONFIG_BAD_VALUE" //      a value out of range or of the wrong form
  | "CONFIG_UNSUPPORTED" //    valid for xl but not implemented by Xeno (firmware=, bootloader=)
  | "CONFIG_FILE_NOT_FOUND" // kernel / ramdisk does not exist
  | "CONFIG_BAD_DISK" //       disk=[...] spec
  | "CONFIG_BAD_VIF"; //       vif=[...] spec

/** A position in a config source. */
export interface SourcePos {
  line: number;
  column: number;
}

export interface ConfigErrorInit {
  file: string;
  line: number;
  column: number;
  key?: string;
  /** The text of the offending line, for the caret display of renderConfigError. */
  sourceLine?: string;
  cause?: unknown;
}

export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly key: string | undefined;
  /** The message without the `file:line:column: ` prefix. */
  readonly detail: string;
  readonly sourceLine: string | undefined;

  constructor(code: ConfigErrorCode, detail: string, init: ConfigErrorInit) {
    super(`${init.file}:${init.line}:${init.column}: ${detail}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "ConfigError";
    this.code = code;
    this.file = init.file;
    this.line = init.line;
    this.column = init.column;
    this.key = init.key;
    this.detail = detail;
    this.sourceLine = init.sourceLine;
  }
}

/** A non-fatal finding: unimplemented or unknown keys, ignored root=/extra=, PV converted to PVH… */
export interface ConfigWarning {
  code: "CONFIG_NOT_IMPLEMENTED" | "CONFIG_UNKNOWN_KEY" | "CONFIG_IGNORED" | "CONFIG_CONVERTED";
  file: string;
  line: number;
  column: number;
  key?: string;
  message: string;
}

export function formatWarning(w: ConfigWarning): string {
  return `${w.file}:${w.line}:${w.column}: warning: ${w.message}`;
}

/**
 * Renders an error for the CLI: the diagnostic line, then (when the source line is known) the line itself
 * with a caret under the column, like a compiler. No trailing newline. Non-ConfigErrors render as their message.
 */
export function renderConfigError(err: unknown, opts: { color?: boolean } = {}): string {
  if (!(err instanceof ConfigError)) return `error: ${err instanceof Error ? err.message : String(err)}`;
  const red = opts.color ? (s: string) => `\x1b[1;31m${s}\x1b[0m` : (s: string) => s;
  const bold = opts.color ? (s: string) => `\x1b[1m${s}\x1b[0m` : (s: string) => s;
  const lines = [`${bold(`${err.file}:${err.line}:${err.column}:`)} ${red("error:")} ${err.detail}`];
  if (err.sourceLine !== undefined) {
    const gutter = String(err.line);
    const text = err.sourceLine.replace(/\t/g, " ");
    lines.push(` ${gutter} | ${text}`);
    lines.push(` ${" ".repeat(gutter.length)} | ${" ".repeat(Math.max(0, err.column - 1))}${red("^")}`);
  }
  return lines.join("\n");
}
