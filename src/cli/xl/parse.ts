/** Argument values of the xl subcommands: memory sizes, the console escape character. */
import { UsageError } from "./getopt.js";

/**
 * A memory size as xl's parse_mem_size_kb reads it, in KiB: a decimal number with at most one suffix, t g m k b
 * (any case); a bare number is MiB (the man page says KiB; xl's code says MiB, and that is what xl does).
 * Bytes round down to whole KiB. Returns null for anything else (xl: "invalid memory size"); unlike strtoll,
 * an empty number, a sign or a value beyond 2^53 KiB is refused too.
 */
export function parseMemSizeKiB(s: string): number | null {
  const m = /^([0-9]+)([tTgGmMkKbB]?)$/.exec(s);
  if (!m) return null;
  const n = Number(m[1]);
  const shift: Record<string, number> = { t: 30, g: 20, m: 10, "": 10, k: 0 };
  const suffix = m[2]!.toLowerCase();
  const kib = suffix === "b" ? Math.floor(n / 1024) : n * 2 ** shift[suffix]!;
  return Number.isSafeInteger(kib) ? kib : null;
}

/**
 * The console escape character from `-e`: "^X" is Ctrl-X (as xenconsole and telnet write it, "^]" = 0x1d), a
 * single character is itself.
 */
export function parseEscape(s: string): number {
  if (s.length === 2 && s[0] === "^") {
    const c = s.charCodeAt(1);
    if (c === 0x3f) return 0x7f; // ^? is DEL
    if ((c >= 0x40 && c <= 0x5f) || (c >= 0x61 && c <= 0x7a)) return c & 0x1f;
  }
  if (s.length === 1 && s.charCodeAt(0) < 0x80) return s.charCodeAt(0);
  throw new UsageError(`escape character '${s}': give one ASCII character or ^X for Ctrl-X (default ^])`);
}

/** "^]" for 0x1d: how the escape character is shown to the user. */
export function escapeName(c: number): string {
  if (c === 0x7f) return "^?";
  return c < 0x20 ? `^${String.fromCharCode(c + 0x40)}` : String.fromCharCode(c);
}
