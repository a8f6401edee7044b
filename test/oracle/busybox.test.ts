/**
 * Busybox applet oracle suite: Debian's static arm64 busybox (fetched by scripts/fetch-busybox.sh) runs single
 * applets on files and stdin under qemu-aarch64-static and under `xeno run-user`; stdout, stderr and exit status
 * must be byte-identical. One test per invocation. See oracle-lib.ts for the environment knobs.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { BUILD_DIR, compare, ensureBuilt, fetchBusybox, JOBS, printSummary, qemuCommand, runProcess, selected, TIMEOUT_MS } from "./oracle-lib.js";

const DATA = path.join(BUILD_DIR, "bb-data");
const f = (name: string): string => path.join(DATA, name);

/** Deterministic pseudo-random generator (xorshift32) so the inputs are identical on every machine. */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike",
  "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"];

function makeData(): void {
  mkdirSync(DATA, { recursive: true });
  const r = lcg(12345);
  const words: string[] = [];
  for (let i = 0; i < 1500; i++) words.push(`${WORDS[r() % 26]} ${r() % 1000} ${WORDS[r() % 26]}${i % 7 === 0 ? " extra" : ""}`);
  writeFileSync(f("words.txt"), `${words.join("\n")}\n`);
  const nums: string[] = [];
  for (let i = 0; i < 800; i++) nums.push(String(((r() % 200001) - 100000) / (i % 3 === 0 ? 100 : 1)));
  writeFileSync(f("nums.txt"), `${nums.join("\n")}\n`);
  const table: string[] = [];
  for (let i = 0; i < 300; i++) table.push(`${WORDS[r() % 8]}:${r() % 50}:${(r() % 100000) / 100}:${WORDS[r() % 26].toUpperCase()}`);
  writeFileSync(f("table.txt"), `${table.join("\n")}\n`);
  // 192 KiB, partly compressible (text runs) and partly noise
  const blob = Buffer.alloc(192 * 1024);
  for (let i = 0; i < blob.length; i++) blob[i] = (i >> 12) % 3 === 0 ? r() & 0xff : 0x61 + ((i * 7 + (i >> 9)) % 26);
  writeFileSync(f("blob.bin"), blob);
  writeFileSync(f("words.txt.gz"), gzipSync(Buffer.from(`${words.join("\n")}\n`), { level: 6 }));
  writeFileSync(f("blob.bin.gz"), gzipSync(blob, { level: 9 }));
  writeFileSync(f("words-changed.txt"), `${words.slice(0, 700).join("\n")}\nCHANGED LINE\n${words.slice(701).join("\n")}\n`);
  writeFileSync(f("lines.txt"), "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n");
}

interface Case {
  name: string;
  args: string[];
  stdin?: string | (() => Buffer);
}

const AWK_STATS = `BEGIN { FS = ":" }
{ count[$1]++; sum[$1] += $2; total += $3; if ($2 > max) { max = $2; who = $4 } }
END {
  n = 0; for (k in count) keys[n++] = k
  for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (keys[j] < keys[i]) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
  for (i = 0; i < n; i++) printf "%-8s %4d %8.3f %x\\n", keys[i], count[keys[i]], sum[keys[i]] / count[keys[i]], sum[keys[i]]
  printf "total=%.2f max=%d who=%s lines=%d\\n", total, max, who, NR
}`;
const AWK_TEXT = `{ for (i = 1; i <= NF; i++) { w = toupper(substr($i, 1, 1)) substr($i, 2); freq[length($i)]++ } if (NR % 250 == 0) print NR ": " w " " NF " " index($0, "a") }
/extra$/ { extra++ } END { for (l = 1; l <= 10; l++) printf "%d:%d ", l, freq[l]; printf "\\nextra=%d %s %d %5.1f%%\\n", extra, sprintf("%05d", 42), int(-3.7), 100 * extra / NR; s = "a,b,,c"; n = split(s, parts, ","); print n, parts[4]; x = "hello world"; gsub(/o/, "0", x); print x, match(x, /w0r/), RSTART, RLENGTH }`;

const CASES: Case[] = [
  { name: "echo", args: ["echo", "-e", "tab\\there", "newline\\nend", "\\x41\\0102"] },
  { name: "echo-n", args: ["echo", "-n", "no", "newline"] },
  { name: "seq", args: ["seq", "-s", ",", "-w", "-5", "3", "100"] },
  { name: "seq-float", args: ["seq", "0.5", "0.25", "4"] },
  { name: "sort-n", args: ["sort", "-n", f("nums.txt")] },
  { name: "sort-r", args: ["sort", "-r", f("words.txt")] },
  { name: "sort-u-stdin", args: ["sort", "-u"], stdin: () => Buffer.from(WORDS.concat(WORDS.slice(3, 19), ["Alpha", "zulu", ""]).reverse().join("\n")) },
  { name: "sort-k", args: ["sort", "-t", ":", "-k2,2n", "-k1,1r", f("table.txt")] },
  { name: "awk-stats", args: ["awk", AWK_STATS, f("table.txt")] },
  { name: "awk-text", args: ["awk", AWK_TEXT, f("words.txt")] },
  { name: "awk-arith", args: ["awk", "BEGIN { x = 1; for (i = 1; i <= 30; i++) { x = x * 3 + i; y += i * i / 7 } printf \"%d %.6f %e %g %c %s\\n\", x, y, y * 1e20, 1 / 3, 65, 0.1 + 0.2; print 2 ^ 53 + 1, 7 % 3, -7 % 3, 1e300 * 1e10 }"] },
  { name: "sed-s-g", args: ["sed", "s/a/A/g; s/[0-9][0-9]*/<&>/2", f("words.txt")] },
  { name: "sed-range", args: ["sed", "-n", "/^bravo/,/^delta/p; 1400,$p", f("words.txt")] },
  { name: "sed-script", args: ["sed", "-e", "1d;4,5d", "-e", "s/\\([a-z]*\\) \\([0-9]*\\)/\\2 \\1/; y/abc/xyz/; $a\\\nappended", f("lines.txt")] },
  { name: "gzip-c", args: ["gzip", "-c", f("words.txt")] },
  { name: "gzip-c-9-blob", args: ["gzip", "-c", "-9", f("blob.bin")] },
  { name: "gzip-stdin", args: ["gzip", "-c"], stdin: () => Buffer.from("x".repeat(10000) + WORDS.join(" ").repeat(40)) },
  { name: "gunzip-c", args: ["gunzip", "-c", f("words.txt.gz")] },
  { name: "gunzip-c-blob", args: ["gunzip", "-c", f("blob.bin.gz")] },
  { name: "gzip-roundtrip", args: ["gunzip", "-c"], stdin: () => roundTripInput },
  { name: "md5sum", args: ["md5sum", f("blob.bin"), f("words.txt"), f("nums.txt")] },
  { name: "sha256sum", args: ["sha256sum", f("blob.bin"), f("words.txt")] },
  { name: "sha1sum", args: ["sha1sum", f("blob.bin"), f("table.txt")] },
  { name: "sha512sum", args: ["sha512sum", f("words.txt")] },
  { name: "bc-pi", args: ["bc", "-l"], stdin: "scale=50; 4*a(1)\n" },
  { name: "bc-misc", args: ["bc", "-l"], stdin: "2^200\nscale=60; sqrt(2)\nscale=30; e(1); l(10); s(1)+c(1)\n obase=16; 255*255\nibase=16; obase=A; FFFF\n" },
  { name: "dc", args: ["dc", "-e", "2 100 ^ p 10 k 1 3 / p 17 5 % p 3 4 * 5 + p"] },
  { name: "expr", args: ["expr", "12345678", "*", "87654321", "+", "17", "%", "5"] },
  { name: "expr-match", args: ["expr", "match", "hello-world-123", ".*-\\([0-9]*\\)"] },
  { name: "expr-false", args: ["expr", "3", "\\>", "5"] },
  { name: "printf", args: ["printf", "%f|%e|%x|%o|%5.2s|%-6d|%+.3e|%g|%c|%%\\n", "3.25", "12345.678", "255", "8", "hello", "42", "0.000123", "1e-5", "zed"] },
  { name: "wc", args: ["wc", f("words.txt"), f("nums.txt"), f("blob.bin")] },
  { name: "wc-stdin", args: ["wc", "-lwc"], stdin: "a b c\n\nd e\nlast" },
  { name: "tr", args: ["tr", "a-z", "A-Z"], stdin: () => Buffer.from(WORDS.join(" ") + "\n") },
  { name: "tr-ds", args: ["tr", "-s", " ", "-d", "aeiou"], stdin: "  many    spaces   and vowels aeiou  here\n" },
  { name: "cut", args: ["cut", "-d", ":", "-f", "1,3-", f("table.txt")] },
  { name: "cut-c", args: ["cut", "-c", "2-6,10", f("words.txt")] },
  { name: "head", args: ["head", "-n", "7", f("words.txt")] },
  { name: "head-c", args: ["head", "-c", "100", f("blob.bin")] },
  { name: "tail", args: ["tail", "-n", "5", f("words.txt")] },
  { name: "tail-c", args: ["tail", "-c", "300", f("words.txt")] },
  { name: "uniq-c", args: ["uniq", "-c"], stdin: () => Buffer.from(["a", "a", "b", "c", "c", "c", "a", "d", "d"].join("\n") + "\n") },
  { name: "od", args: ["od", "-A", "x", "-t", "x1z", "-N", "256", f("blob.bin")] },
  { name: "od-d", args: ["od", "-t", "d4", "-N", "96", f("blob.bin")] },
  { name: "hexdump", args: ["hexdump", "-C", "-n", "512", f("blob.bin")] },
  { name: "base64", args: ["base64", f("table.txt")] },
  { name: "base64-d", args: ["base64", "-d"], stdin: Buffer.from(WORDS.join(",")).toString("base64") + "\n" },
  { name: "factor", args: ["factor", "1234567890123", "600851475143", "2147483647", "4294967297", "1", "97", "1000000007"] },
  { name: "cmp-differ", args: ["cmp", f("words.txt"), f("words-changed.txt")] },
  { name: "cmp-same", args: ["cmp", f("words.txt"), f("words.txt")] },
  { name: "tac", args: ["tac", f("lines.txt")] },
  { name: "rev", args: ["rev", f("lines.txt"), f("table.txt")] },
  { name: "fold", args: ["fold", "-w", "17", f("table.txt")] },
  { name: "nl", args: ["nl", "-ba", f("lines.txt")] },
  { name: "cat-missing", args: ["cat", f("lines.txt"), f("does-not-exist")] },
];

let roundTripInput: Buffer = Buffer.alloc(0);

describe("busybox applets (qemu vs xeno run-user)", { concurrency: JOBS }, () => {
  let busybox = "";
  before(async () => {
    makeData();
    await ensureBuilt();
    busybox = await fetchBusybox();
    // The round trip: qemu's gzip output becomes the input of gunzip under both emulators.
    const gz = await runProcess([...qemuCommand(), busybox, "gzip", "-c", "-6", f("blob.bin")], { timeoutMs: TIMEOUT_MS });
    roundTripInput = gz.stdout;
  });
  for (const c of CASES) {
    test(`busybox ${c.name}`, { skip: !selected(c.name) }, async () => {
      const stdin = typeof c.stdin === "function" ? c.stdin() : c.stdin;
      const r = await compare({ name: `busybox ${c.name}`, program: busybox, args: c.args, stdin, cwd: DATA });
      assert.ok(r.ok, r.report);
      if (c.name === "gzip-roundtrip") {
        const original = readFileSync(f("blob.bin"));
        assert.ok(r.qemu.stdout.equals(original), "gunzip -c of gzip -c output differs from the original under qemu");
      }
    });
  }
  after(() => printSummary("busybox"));
});
