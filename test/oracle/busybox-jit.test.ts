/**
 * The busybox applet oracle suite (busybox.test.ts) with the compiler forced on: XENO_JIT_HOT=1 makes `xeno
 * run-user` compile every block the first time it runs and run it compiled (src/cpu/arm64/cpu.ts), so the
 * applets' code meets qemu-aarch64 through the compiler. Unset, the same applets run with the default threshold.
 */
process.env.XENO_JIT_HOT = "1";
await import("./busybox.test.js");
