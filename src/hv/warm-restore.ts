/**
 * A restore rehearsal for a new worker thread: a small Xen DomU is built (never run), saved and built again from
 * its state, then both are dropped. A thread is a V8 isolate of its own, and the first Machine it builds from a
 * state runs every function on that path for the first time (parsed and compiled lazily); a migration's target
 * thread does that inside the downtime unless it rehearsed during the pre-copy (docs/benchmarks.md, session 24:
 * 10.5 ms of CPU for the first build of the idle 256 MiB guest's state in a new thread against 3–7 ms after).
 *
 * Nothing here touches the hypervisor: the machine has its own XenStore, no frame pool, no disks or vifs, no
 * console sink; its memory (17 MiB and the tail) is garbage once this returns. Errors are swallowed: a rehearsal
 * that fails leaves the thread as it was (colder).
 */
import { Machine } from "./machine.js";

/** RAM of the rehearsal machine, MiB: small, as the point is the code path, not the pages. */
const WARM_MEM_MIB = 16;

/**
 * A minimal arm64 Image (Linux Documentation/arch/arm64/booting.rst, "4. Call the kernel image"): code0 `b .`
 * (0x14000000), text_offset 0, image_size 4 KiB, flags 4 KiB pages, magic "ARM\x64". Never run.
 */
function stubImage(): Uint8Array {
  const img = new Uint8Array(4096);
  const dv = new DataView(img.buffer);
  dv.setUint32(0, 0x14000000, true); // b .
  dv.setBigUint64(8, 0n, true); // text_offset
  dv.setBigUint64(16, 4096n, true); // image_size
  dv.setBigUint64(24, 1n << 1n, true); // flags: little-endian, 4 KiB pages
  dv.setUint32(56, 0x644d5241, true); // "ARM\x64"
  return img;
}

/** Builds, saves and restores a small DomU in this thread; returns the ms it took, or NaN when it failed. */
export function warmRestore(): number {
  const t0 = performance.now();
  try {
    const o = { memMiB: WARM_MEM_MIB, vcpus: 1, kernel: stubImage(), cmdline: "console=hvc0", xen: true, domid: 1, name: "warm",
      uuid: new Uint8Array(16), consoleOut: () => {} };
    const a = new Machine(o);
    const b = new Machine({ ...o, from: { snapshot: a.save(), memory: a.board.memory } });
    b.save();
    a.release();
    b.release();
    return performance.now() - t0;
  } catch {
    return NaN;
  }
}
