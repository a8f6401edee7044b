/**
 * The random-sequence oracle (random.test.ts) with the compiler forced on (XENO_JIT_HOT=1: every block compiled
 * the first time it runs), so straight-line code that runs once still runs compiled. XENO_RANDOM_SEQS sets the
 * count as there; forced compilation makes a module per block, so the default here is 4,000 sequences (the
 * interpreted-and-default-threshold run in random.test.ts keeps its 10,000).
 */
process.env.XENO_JIT_HOT = "1";
process.env.XENO_RANDOM_SEQS ??= "4000";
await import("./random.test.js");
