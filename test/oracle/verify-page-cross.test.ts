/**
 * The compiler's verify mode (XENO_JIT_VERIFY=1, jit/verify.ts) over stores that cross into a page not mapped
 * yet (test/oracle/programs/page_cross_store.c: STR Q, STP X and STR X a few bytes before a page's end, the
 * next page faulting and being mapped on first touch), compiled at once (XENO_JIT_HOT=1). The store writes its
 * bytes on the first page before it faults, compiled or interpreted; the check's interpreter stops before the
 * faulting instruction, and until 2026-12-07 reported those bytes as a disagreement (bench/cpu's gunzip hit it
 * in memcpy). The output must also match qemu-aarch64's.
 */
process.env.XENO_JIT_HOT = "1";
process.env.XENO_JIT_VERIFY = "1";
const { test, before } = await import("node:test");
const { compare, compileProgram, ensureBuilt } = await import("./oracle-lib.js");

before(() => ensureBuilt());

test("verify mode: stores crossing into a faulting page", async () => {
  const program = await compileProgram("page_cross_store", "-O2");
  const r = await compare({ name: "page_cross_store[verify]", program, args: [] });
  if (!r.ok) throw new Error(r.report);
});
