/**
 * Ballooning with the stock kernel's own xen-balloon driver (drivers/xen/xen-balloon.c, built in): the toolstack
 * writes memory/target in XenStore (what `xl mem-set` does), the guest gives pages back with
 * XENMEM_decrease_reservation, and the hypervisor's frame pool gains them; raising the target makes the guest
 * take them back with XENMEM_populate_physmap. One boot of a 512 MiB DomU whose kernel does not zero the pages it
 * gives back (init_on_alloc=0 xen_scrub_pages=0: the hypervisor's zeroing is what is tested), after a program
 * (guest/fill-free.c) left 16 MiB of its data in free pages:
 *  - 512 → 256 MiB: the domain's reservation falls to about 256 MiB, the pool gains ≥ 200 MiB free frames —
 *    exactly the frames the domain gave back — and, seen from the host, every frame given back is unmapped
 *    from the P2M, zero (among them frames that held the program's data), and in no vCPU's TLB; the guest still
 *    runs commands (and sees the lower MemTotal), and a guest program cannot reach a released frame through
 *    /dev/mem (CONFIG_STRICT_DEVMEM refuses RAM);
 *  - a guest program does reach one, through the stock privcmd driver (guest/privcmd-touch.c: its mapping of
 *    Domain-0's frame fails, and Linux leaves the PTE on a page of the balloon): its read and its write each take
 *    the abort Xen injects and Linux kills it; nothing is read, the frame stays unmapped and zero, the pool and
 *    the reservation do not change, and the guest carries on;
 *  - back to 512 MiB: the pool returns to where it was after boot;
 *  - the guest's side of an unmapped frame: a program (guest/touch-page.c, added to the initramfs) prints the
 *    frame of a page it wrote; the host takes that frame out of the P2M behind the guest's back (what a guest
 *    that balloons out a page still in use would cause); the program's next read takes the abort Xen injects
 *    and Linux kills it (SIGKILL: "ttbr address size fault" is unhandled), and the shell carries on;
 *  - after the machine is disposed, every frame is back in the pool.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeCpio } from "../../src/images/cpio.js";
import { ensureImages, GUEST_READY_MARKER } from "../../src/images/index.js";
import { Machine } from "../../src/hv/machine.js";
import { XenStore } from "../../src/xenstore/index.js";
import { FramePool } from "../../src/hv/frame-pool.js";
import { framedCommand, framedOutput, machineRunner } from "./run-machine.js";
import type { P2m } from "../../src/xen/p2m.js";

const BOOT_MS = 9 * 60_000;
const DOMID = 3;
const MiB = 256; // frames per MiB
/**
 * Guest kernel arguments after console=hvc0: by default the guest zeroes neither the pages it allocates nor
 * those it gives back, so released frames hold its data and the hypervisor must zero them. XENO_BALLOON_CMDLINE
 * replaces them ("" for Debian's defaults), for measuring what the guest's own zeroing costs the host
 * (docs/memory.md).
 */
const CMDLINE = `console=hvc0 ${process.env.XENO_BALLOON_CMDLINE ?? "init_on_alloc=0 xen_scrub_pages=0"}`.trim();
/** The byte guest/fill-free.c writes. */
const FILL = 0x5a5a5a5a;

/**
 * The initramfs plus the test programs in guest/ (cross-compiled here, in /bin) and the kernel's own privcmd
 * module (/lib/xen-privcmd.ko, not in the initramfs's module set): a second, uncompressed newc archive after the
 * gzip one, at a 4-byte boundary — the kernel unpacks concatenated archives (init/initramfs.c skips the zero
 * padding between them).
 */
function initrdWithPrograms(initrd: Buffer, modulesDir: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "xeno-balloon-"));
  const files = ["touch-page", "privcmd-touch", "fill-free"].map((name) => {
    const src = join(dirname(fileURLToPath(import.meta.url)), `../../../test/xen/guest/${name}.c`);
    execFileSync("aarch64-linux-gnu-gcc", ["-static", "-O2", "-Wall", "-o", join(dir, name), src]);
    return { type: "file" as const, path: `bin/${name}`, data: readFileSync(join(dir, name)), mode: 0o755 };
  });
  files.push({ type: "file", path: "lib/xen-privcmd.ko", data: readFileSync(join(modulesDir, "kernel/drivers/xen/xen-privcmd.ko")), mode: 0o644 });
  const extra = writeCpio(files);
  return Buffer.concat([initrd, Buffer.alloc((4 - (initrd.length % 4)) % 4), extra]);
}

/** RAM frames whose first 16 bytes are guest/fill-free.c's pattern (one byte per RAM frame). */
function filledFrames(m: Machine, p2m: P2m): Uint8Array {
  const words = new Int32Array(m.ram), r = new Uint8Array(p2m.ramFrames);
  for (let k = 0; k < p2m.ramFrames; k++) {
    const w = k * 1024;
    if (words[w] === FILL && words[w + 1] === FILL && words[w + 2] === FILL && words[w + 3] === FILL) r[k] = 1;
  }
  return r;
}

/**
 * The host's view of the P2M: RAM frames not mapped, those of them holding a non-zero byte, and TLB entries of
 * any vCPU that still map one of them.
 */
function releasedState(m: Machine, p2m: P2m): { released: number; nonZero: number; tlbStale: number; first: number } {
  const words = new Int32Array(m.ram);
  let released = 0, nonZero = 0, first = -1;
  for (let k = 0; k < p2m.ramFrames; k++) {
    if (p2m.map[k] !== 0) continue;
    released++;
    if (first < 0) first = k;
    for (let w = k * 1024; w < (k + 1) * 1024; w++) if (words[w] !== 0) { nonZero++; break; }
  }
  let tlbStale = 0;
  for (const v of m.vcpus) {
    const u = v.mmu;
    for (let x = 0; x < u.tlbPerm.length; x++) if (u.tlbPerm[x] !== 0 && p2m.map[u.tlbOff[x] >>> 12] === 0) tlbStale++;
  }
  return { released, nonZero, tlbStale, first };
}

test("balloon 512 → 256 → 512 MiB through memory/target: frames leave and return to the pool", { timeout: BOOT_MS + 240_000 }, async () => {
  const images = await ensureImages({ onProgress: (m) => process.stderr.write(`# images: ${m}\n`) });
  const pool = new FramePool(1024 * MiB);
  const store = new XenStore();
  const dom0 = store.connect(0, () => {});
  const read = (path: string): string | null => {
    try { return Buffer.from(store.read(dom0, null, path)).toString("latin1"); } catch { return null; }
  };
  let out = "";
  const m = new Machine({
    memMiB: 512, vcpus: 1, xen: true, xenstore: store, domid: DOMID, name: "balloon-test", pool,
    kernel: readFileSync(images.kernel), initrd: initrdWithPrograms(readFileSync(images.initrd), images.modulesDir), cmdline: CMDLINE,
    consoleOut: (b) => { out += Buffer.from(b).toString("latin1"); },
  });
  const acct = m.xen!.account;
  const startFrames = acct.pages;
  assert.equal(pool.freeFrames, 1024 * MiB - startFrames, "the domain's RAM is claimed from the pool");
  const runUntil = machineRunner(m, () => out, Date.now() + BOOT_MS + 180_000);
  const t0 = Date.now();
  const shell = async (cmd: string, want: RegExp, what: string): Promise<string> => {
    const from = out.length;
    m.input(Buffer.from(`${cmd}\n`));
    await runUntil(() => want.test(out.slice(from)), what);
    return out.slice(from);
  };
  try {
    await runUntil(() => out.includes(GUEST_READY_MARKER), "guest ready marker");
    const rssMiB = (): string => (process.memoryUsage().rss / 2 ** 20).toFixed(0);
    /** This process's CPU seconds (user + system): what each part of the test costs, whatever the host's load. */
    const cpuS = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
    process.stderr.write(`# booted in ${((Date.now() - t0) / 1000).toFixed(1)} s (${cpuS().toFixed(1)} CPU s); process RSS ${rssMiB()} MiB\n`);
    assert.match(out, /xen:balloon: Initialising balloon driver/);
    const target = read(`/local/domain/${DOMID}/memory/target`);
    assert.equal(target, String(startFrames * 4), "memory/target starts at the domain's RAM in KiB");
    const freeAfterBoot = pool.freeFrames, pagesAfterBoot = acct.pages;
    assert.equal(releasedState(m, acct).released, 0, "nothing given back at boot");
    // Data in free pages: a program fills 16 MiB and exits (its pages go back to the guest's allocator as they are).
    const cpuFill = cpuS();
    await shell("fill-free 16", /FILL-DONE=16/, "fill-free");
    process.stderr.write(`# fill-free 16: ${(cpuS() - cpuFill).toFixed(1)} CPU s\n`);
    const filled = filledFrames(m, acct);
    const filledCount = filled.reduce((a, b) => a + b, 0);
    assert.ok(filledCount >= 2 * MiB, `${filledCount} frames hold the program's data after it exited`);

    // Down to 256 MiB.
    const t1 = Date.now();
    store.write(dom0, null, `/local/domain/${DOMID}/memory/target`, Buffer.from(String(256 * 1024)));
    await runUntil(() => acct.pages <= 260 * MiB, "the balloon inflates to ~256 MiB");
    process.stderr.write(`# ballooned down to ${(acct.pages / MiB).toFixed(1)} MiB in ${((Date.now() - t1) / 1000).toFixed(1)} s; ` +
      `pool free ${(freeAfterBoot / MiB).toFixed(0)} → ${(pool.freeFrames / MiB).toFixed(0)} MiB\n`);
    assert.ok(pool.freeFrames - freeAfterBoot >= 200 * MiB, `pool gained ${(pool.freeFrames - freeAfterBoot) / MiB} MiB`);
    assert.equal(pool.freeFrames + pool.claimedFrames, pool.totalFrames);
    assert.equal(pool.claimedFrames, acct.pages, "the pool's claimed frames are the domain's reservation");
    // From the host: exactly the frames given back are free, unmapped, zero, and cached nowhere.
    const st = releasedState(m, acct);
    process.stderr.write(`# released ${st.released} frames: ${acct.scrubbedFrames} held data (scrubbed), ${acct.zeroFrames} ` +
      `were zero (left untouched); stage-2 aborts so far ${m.xen!.stage2Aborts}; process RSS ${rssMiB()} MiB\n`);
    assert.equal(st.released, pagesAfterBoot - acct.pages, "unmapped frames = frames given back");
    assert.equal(pool.freeFrames - freeAfterBoot, st.released, "the pool gained exactly the frames given back");
    assert.equal(st.nonZero, 0, "every released frame is zero");
    let filledReleased = 0;
    for (let k = 0; k < acct.ramFrames; k++) if (filled[k] !== 0 && acct.map[k] === 0) filledReleased++;
    process.stderr.write(`# of ${filledCount} frames holding fill-free's data, ${filledReleased} were given back (all now zero)\n`);
    // Which free pages the guest's balloon driver takes is the guest allocator's choice: usually some of
    // fill-free's (1,728 of 4,096 in one run), but none in another (fresh37, session 25), where 157 other frames
    // holding data were given back. Either way frames that held data were given back, and all are zero now.
    assert.ok(acct.scrubbedFrames > 0, "some frames given back held data (the hypervisor zeroed them)");
    assert.ok(acct.scrubbedFrames >= filledReleased, `scrubbed ${acct.scrubbedFrames} frames`);
    assert.equal(st.tlbStale, 0, "no vCPU's TLB maps a released frame");
    assert.equal(m.xen!.mem.isRamFrame(acct.firstGfn + st.first), false, "host-side accesses refuse it");
    // A guest program: /dev/mem on a released frame is refused by the guest's kernel (STRICT_DEVMEM: RAM is
    // not allowed), so it never reaches the hypervisor; no stage-2 abort happens, the shell carries on.
    const pa = (acct.firstGfn + st.first) * 4096;
    const aborts = m.xen!.stage2Aborts;
    const dm = await shell(framedCommand(`devmem 0x${pa.toString(16)} 32 2>&1`, 7).trimEnd(), /XO-7-END/, "devmem on a released frame");
    const dmOut = framedOutput(dm, 7) ?? "";
    process.stderr.write(`# devmem 0x${pa.toString(16)}: ${dmOut.trim()}\n`);
    assert.match(dmOut, /Operation not permitted/);
    assert.equal(m.xen!.stage2Aborts, aborts);
    // A guest program that does reach a released frame: privcmd's mapping of a Domain-0 frame fails per entry
    // (XENMEM_add_to_physmap_range returns 0, the entry -EPERM) and Linux leaves the PTE on a ballooned-out page.
    // The host records where each abort it injects came from, and whether handling it changed the domain's
    // reservation or the pool (the balloon may still be giving frames back meanwhile: it stops near its target).
    const xen = m.xen!;
    const aborts0 = xen.stage2Aborts;
    const seen: { gfn: number; write: number; el: number; va: number; changed: boolean }[] = [];
    const injectFirst = xen.stage2Abort.bind(xen);
    xen.stage2Abort = (c) => {
      const pages0 = acct.pages, free0 = pool.freeFrames;
      const va = c.mmu.faultVaHi * 2 ** 32 + (c.mmu.faultVaLo >>> 0);
      const gfn = Math.floor(c.mmu.faultIpa / 4096), write = c.mmu.faultWrite, el = c.el;
      injectFirst(c);
      seen.push({ gfn, write, el, va, changed: acct.pages !== pages0 || pool.freeFrames !== free0 });
    };
    // Debian turns debug.exception-trace off; on, Linux logs the fault it could not handle (with its ESR).
    // privcmd in a DomU serves only the domain named in its XenStore "target" node (a device model's) unless
    // loaded with unrestricted=1 (a parameter of the stock module; ignored when the kernel is locked down).
    const cpuPrivcmd = cpuS();
    await shell("insmod /lib/xen-privcmd.ko unrestricted=1; echo 1 > /proc/sys/debug/exception-trace; echo PRIVCMD-$((6*7))", /^PRIVCMD-42\r?$/m, "privcmd loaded");
    for (const [n, mode] of [[9, "read"], [10, "write"]] as const) {
      const r = await shell(framedCommand(`privcmd-touch ${mode} 2>&1`, n).trimEnd(), new RegExp(`XO-${n}-END`), `privcmd-touch ${mode}`);
      const o = framedOutput(r, n) ?? "";
      process.stderr.write(`# privcmd-touch ${mode}: ${JSON.stringify(o.trim())}; abort ${JSON.stringify(seen.at(-1))}\n`);
      assert.match(o, /PRIVCMD-IOCTL rc=0 errno=0 err=-1\b/, "the ioctl succeeds, its entry fails with -EPERM");
      assert.match(o, /Killed/);
      assert.doesNotMatch(o, /PRIVCMD-READ|PRIVCMD-WROTE/, "the access did not complete");
      assert.equal(xen.stage2Aborts, aborts0 + (mode === "read" ? 1 : 2), "one abort per access, injected into the guest");
      const a = seen.at(-1)!;
      const va = parseInt(/PRIVCMD-VA=([0-9a-f]+)/.exec(o)![1]!, 16);
      assert.equal(a.va, va, "the abort is the program's access to its privcmd mapping");
      assert.equal(a.el, 0);
      assert.equal(a.write, mode === "write" ? 1 : 0);
      assert.equal(a.changed, false, "the abort changed neither the reservation nor the pool");
      assert.ok(acct.isRam(a.gfn) && !acct.isMapped(a.gfn), `frame ${a.gfn.toString(16)} is RAM the balloon gave back`);
      const f = a.gfn - acct.firstGfn;
      assert.ok(new Int32Array(m.ram, f * 4096, 1024).every((w) => w === 0), "the frame is still zero");
      process.stderr.write(`#   frame ${a.gfn.toString(16)} ${filled[f] !== 0 ? "held" : "did not hold"} fill-free's data before it was given back\n`);
    }
    const after = releasedState(m, acct);
    assert.equal(after.released, pagesAfterBoot - acct.pages, "unmapped frames = frames given back");
    assert.equal(pool.freeFrames - freeAfterBoot, after.released, "the pool holds exactly the frames given back");
    assert.deepEqual([after.nonZero, after.tlbStale], [0, 0], "released frames: all zero, in no TLB");
    const tlog = await shell(framedCommand("dmesg | grep 'privcmd-touch.*unhandled' | head -n 2", 11).trimEnd(), /XO-11-END/, "the guest's kernel log");
    const tl = framedOutput(tlog, 11) ?? "";
    process.stderr.write(`# guest dmesg: ${JSON.stringify(tl.trim())}\n`);
    assert.match(tl, /privcmd-touch.*unhandled exception: DABT \(lower EL\), ESR 0x0*92000000, ttbr address size fault/);
    xen.stage2Abort = injectFirst;
    process.stderr.write(`# privcmd part: ${(cpuS() - cpuPrivcmd).toFixed(1)} CPU s\n`);
    const mem = await shell("grep MemTotal /proc/meminfo", /MemTotal:\s+(\d+) kB/, "MemTotal after ballooning");
    const memTotalKiB = Number(/MemTotal:\s+(\d+) kB/.exec(mem)![1]);
    assert.ok(memTotalKiB < 300 * 1024, `guest MemTotal ${memTotalKiB} kB after ballooning to 256 MiB`);
    await shell("echo BALLOON-$((6*7))-OK", /^BALLOON-42-OK\r?$/m, "the guest still runs");

    // Back up to the full size.
    const t2 = Date.now();
    store.write(dom0, null, `/local/domain/${DOMID}/memory/target`, Buffer.from(String(startFrames * 4)));
    await runUntil(() => acct.pages >= startFrames - 4 * MiB && pool.freeFrames <= freeAfterBoot + 4 * MiB, "the balloon deflates");
    process.stderr.write(`# back to ${(acct.pages / MiB).toFixed(1)} MiB in ${((Date.now() - t2) / 1000).toFixed(1)} s; process RSS ${rssMiB()} MiB\n`);
    await shell("echo BALLOON-UP-$((6*7))", /^BALLOON-UP-42\r?$/m, "the guest runs after deflating");
    const up = releasedState(m, acct);
    assert.equal(up.released, acct.ramFrames - acct.pages, "the P2M and the reservation agree");
    assert.equal(pool.freeFrames - freeAfterBoot, up.released, "the pool holds exactly the frames still given back");
    assert.equal(m.xen!.stage2Aborts, aborts0 + 2, "no abort but privcmd-touch's two");

    // The guest's side: a user page taken out of the P2M under a running program.
    const mmus = m.vcpus.map((v) => v.mmu);
    const tp = await shell("touch-page", /TOUCH-PFN=([0-9a-f]+)/, "touch-page prints its frame");
    const gfn = parseInt(/TOUCH-PFN=([0-9a-f]+)/.exec(tp)![1], 16);
    assert.ok(acct.isRam(gfn) && acct.isMapped(gfn), `frame ${gfn.toString(16)} is mapped RAM`);
    const free0 = pool.freeFrames;
    assert.equal(acct.release(gfn, 1, mmus), 0);
    acct.flushTlbs(mmus);
    assert.equal(pool.freeFrames, free0 + 1);
    // The guest frees the page when the program dies and will reuse it, so the host maps it back (zeroed) the
    // moment the abort is injected: Linux's handler for this fault does not touch the page.
    const inject = xen.stage2Abort.bind(xen);
    xen.stage2Abort = (c) => {
      inject(c);
      if (!acct.isMapped(gfn)) assert.equal(acct.populate(gfn, 1), 0);
    };
    const killed = await shell("go", /Killed|TOUCH-READ/, "touch-page reads its page again");
    process.stderr.write(`# touch-page after its frame was unmapped: ${JSON.stringify(killed.trim().slice(-200))}\n`);
    assert.match(killed, /Killed/);
    assert.doesNotMatch(killed, /TOUCH-READ/);
    assert.equal(xen.stage2Aborts, aborts0 + 3, "one abort, injected into the guest");
    assert.equal(pool.freeFrames, free0, "the frame is back");
    // Linux's own account (arch/arm64/kernel/traps.c arm64_show_signal): ESR 0x92000000 = EC 0x24 (data abort
    // from EL0), IL, ISS 0 — what Xen's inject_abt64_exception builds.
    const klog = await shell(framedCommand("dmesg | grep 'touch-page.*unhandled' | head -n 2", 8).trimEnd(), /XO-8-END/, "the guest's kernel log");
    const log = framedOutput(klog, 8) ?? "";
    process.stderr.write(`# guest dmesg: ${JSON.stringify(log.trim())}\n`);
    assert.match(log, /unhandled exception: DABT \(lower EL\), ESR 0x0*92000000, ttbr address size fault/);
    await shell("echo AFTER-ABORT-$((6*7))", /^AFTER-ABORT-42\r?$/m, "the guest runs after the abort");
    assert.doesNotMatch(out, /Kernel panic|kernel BUG|Oops|Call trace:|Out of memory/i);
  } finally {
    m.dispose();
  }
  assert.equal(pool.freeFrames, pool.totalFrames, "every frame is back after dispose");
});
