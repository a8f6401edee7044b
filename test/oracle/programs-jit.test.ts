/**
 * The program oracle suite (programs.test.ts) with the compiler forced on: XENO_JIT_HOT=1 makes `xeno run-user`
 * compile every block the first time it runs and run it compiled (src/cpu/arm64/cpu.ts), so every translated
 * instruction form meets qemu-aarch64 at least once. Unset, the same programs run with the default threshold.
 */
process.env.XENO_JIT_HOT = "1";
await import("./programs.test.js");
