/**
 * The random-sequence oracle (random.test.ts) in the compiler's verify mode (XENO_JIT_VERIFY=1, jit/verify.ts)
 * with the compiler forced on (XENO_JIT_HOT=1): every compiled block is also re-run by the interpreter from the
 * same state and the two must agree (a disagreement ends `xeno run-user` with a report, and the sequence fails),
 * and the result must still agree with qemu-aarch64. XENO_RANDOM_SEQS sets the count as there (default 10,000).
 */
process.env.XENO_JIT_HOT = "1";
process.env.XENO_JIT_VERIFY = "1";
process.env.XENO_RANDOM_SEQS ??= "10000";
await import("./random.test.js");
