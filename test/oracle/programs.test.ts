/**
 * Program oracle suite: small C programs (test/oracle/programs/*.c) cross-compiled with aarch64-linux-gnu-gcc
 * -static, each run under qemu-aarch64-static -cpu cortex-a57 and under `xeno run-user`; stdout, stderr and exit
 * status must be byte-identical. One test per invocation. See oracle-lib.ts for the environment knobs.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { compare, compileProgram, ensureBuilt, JOBS, printSummary, selected } from "./oracle-lib.js";

interface Case {
  src: string;
  opt?: "-O0" | "-O1" | "-O2" | "-O3";
  args?: string[];
  stdin?: string;
  /** label suffix when one source is run several ways */
  label?: string;
}

// Text for the stdin test: numbers, words, blank lines, long lines, no trailing newline at the end.
const STDIN_TEXT = [
  "42 the quick brown fox",
  "-17 jumps over the lazy dog",
  "",
  "3.5 Pack my box with five dozen liquor jugs",
  "   leading spaces and\ttabs\t",
  "x".repeat(5000),
  ...Array.from({ length: 60 }, (_, i) => `${i * i} line ${i} ${"abc".repeat(i % 7)}`),
  "no newline at end",
].join("\n");

const CASES: Case[] = [
  // integers
  { src: "int_shifts" }, { src: "int_shifts", opt: "-O0" },
  { src: "int_overflow" }, { src: "int_divide" }, { src: "int_divide", opt: "-O0" },
  { src: "int_mul128" }, { src: "self_modify" }, { src: "bitfields" }, { src: "bitfields", opt: "-O0" }, { src: "bit_builtins" }, { src: "cond_select" },
  // floating point
  { src: "fp_print" }, { src: "fp_special" }, { src: "fp_convert" }, { src: "fp_denormal" }, { src: "fp_fma" },
  { src: "fp_round" }, { src: "fp_fenv" }, { src: "libm_funcs" }, { src: "strtod_roundtrip" }, { src: "fp_arith" }, { src: "fp_arith", opt: "-O0" },
  { src: "long_double" },
  // strings, memory, libc
  { src: "mem_funcs" }, { src: "mem_funcs", opt: "-O0" }, { src: "str_funcs" }, { src: "str_funcs", opt: "-O3" },
  { src: "setjmp_longjmp" }, { src: "qsort_bsearch" }, { src: "snprintf_ints" }, { src: "snprintf_floats" }, { src: "sscanf_parse" },
  { src: "malloc_stress" }, { src: "recursion" }, { src: "recursion", opt: "-O0" }, { src: "strtol_edge" }, { src: "ctype_table" },
  { src: "wchar_funcs" }, { src: "errno_strerror" }, { src: "tls_vars" }, { src: "atomics" }, { src: "atomics", opt: "-O0" },
  // (No signal-delivery program: the user-mode runner exists to test the CPU and has no signal frames;
  // fatal signals end the process as 128+N, which the comparison treats like qemu's death by signal N.)
  // algorithms and control flow
  { src: "tiny_interp" }, { src: "sort_algos" }, { src: "sort_algos", opt: "-O0" }, { src: "crc32" }, { src: "sha256" }, { src: "sha256", opt: "-O3" },
  { src: "md5" }, { src: "switch_jump" }, { src: "switch_jump", opt: "-O0" }, { src: "varargs" }, { src: "varargs", opt: "-O0" },
  { src: "struct_copy" }, { src: "struct_copy", opt: "-O0" }, { src: "hash_table" }, { src: "bignum" }, { src: "matrix" }, { src: "matrix", opt: "-O3" },
  { src: "primes" }, { src: "coremark_like", args: ["3"] }, { src: "coremark_like", opt: "-O0", args: ["2"] }, { src: "coremark_like", opt: "-O3", args: ["3"] },
  // SIMD (NEON intrinsics and auto-vectorised loops)
  { src: "simd_int" }, { src: "simd_int", opt: "-O3" }, { src: "simd_fp" }, { src: "simd_fp", opt: "-O3" },
  // files, stdin, arguments, exit status
  { src: "stdio_file", args: ["{tmp}"] },
  { src: "stdin_fgets", stdin: STDIN_TEXT },
  { src: "stdin_fgets", stdin: "", label: "empty-stdin" },
  { src: "getopt_args", args: ["-v", "--name=foo", "-l3", "-x", "--level", "-q", "10", "0x20", "-5", "--", "-v", "arg with spaces", ""] },
  { src: "exit_status", args: ["3", "exit"], label: "exit3" },
  { src: "exit_status", args: ["42", "return"], label: "return42" },
  { src: "exit_status", args: ["7", "_exit"], label: "_exit7" },
  { src: "exit_status", args: ["255", "stderr"], label: "exit255-stderr" },
  { src: "exit_status", args: ["256"], label: "exit256" },
];

function caseName(c: Case): string {
  return `${c.src}${c.opt && c.opt !== "-O2" ? c.opt : ""}${c.label ? `[${c.label}]` : ""}`;
}

describe("oracle programs (qemu vs xeno run-user)", { concurrency: JOBS }, () => {
  before(() => ensureBuilt());
  for (const c of CASES) {
    const name = caseName(c);
    test(name, { skip: !selected(name) }, async () => {
      const program = await compileProgram(c.src, c.opt ?? "-O2");
      const r = await compare({ name, program, args: c.args ?? [], stdin: c.stdin });
      assert.ok(r.ok, r.report);
    });
  }
  after(() => printSummary("programs"));
});
