/**
 * The random-sequence oracle (random.test.ts) with the compiler forced on (XENO_JIT_HOT=1: every block compiled
 * the first time it runs), so straight-line code that runs once still runs compiled. XENO_RANDOM_SEQS sets the
 * count as there; the default is 10,000 sequences, as in random.test.ts (15 s on the 2-core host under load,
 * 2026-12-07).
 */
process.env.XENO_JIT_HOT = "1";
process.env.XENO_RANDOM_SEQS ??= "10000";
await import("./random.test.js");
