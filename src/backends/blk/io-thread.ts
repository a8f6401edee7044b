/**
 * A disk's I/O thread (worker_threads entry; started by BlkBack when its ring connects): performs the file I/O
 * blkback queued (io-queue.ts) — pread/pwrite between the image and runs of the domain's RAM, fdatasync, zeroing
 * — so that a slow disk (NFS, a throttled device, a long fdatasync) blocks this thread only, never the domain
 * thread's vCPUs nor the other domains sharing it. One thread per connected disk, as Linux blkback runs one
 * kthread per ring (xen_blkif_schedule): disks never wait behind each other either.
 *
 * What it trusts: every run was validated by blkback on the vCPU thread (grant pinned with the right permission,
 * the run inside that granted page, the sector range inside the image) before the slot was published, and the
 * slot is not touched again by blkback until `done` passes it. Nothing here reads guest-controlled memory to
 * decide anything. Slots are served in order, one at a time, so a flush covers every write queued before it.
 *
 * Sleeping: Atomics.wait on the queue's kick word; after each completion it publishes `done`, and once it has
 * caught up with the queue (or every ringEvery completions) notifies `done` (for BlkBack.drain) and the domain
 * thread's doorbell (so an idle domain loop wakes to post the responses). It is
 * also the timer of a throttled disk (blk-limit.ts): Q_WAKE asks for a doorbell ring that many ms later. After
 * `idleMs` without work it ends, leaving the file open (Q_STATE back to NONE): blkback starts another at the
 * next request, so an idle disk costs no thread.
 * Closing (Q_CLOSING): the operation in progress finishes, queued ones are dropped, the file is closed here
 * (the descriptor was handed over: closing it while a pread/pwrite is in flight could let the number be reused
 * for another file under us), Q_ENDED is set.
 */
import { workerData } from "node:worker_threads";
import { closeSync, fdatasyncSync, writeFileSync } from "node:fs";
import { openThreadImage, preadFully, pwriteFully, testDelay, zeroRange, ZERO_CHUNK } from "./disk-image.js";
import type { Qcow2Image } from "../../storage/qcow2.js";
import { F_LEN, F_POS, F_RUNS, IO_DISCARD, IO_ERROR, IO_FLAG_SYNC, IO_FLUSH, IO_MSG_BYTES, IO_OK, IO_READ, IO_SHORT_READ,
  IO_SLOTS, IO_WRITE, IoQueue, Q_CLOSING, Q_DONE, Q_ENDED, Q_KICK, Q_STATE, Q_SUBMITTED, S_MSG_LEN, S_NRUNS, S_OP, S_STATUS,
  Q_WAKE, STATE_NONE, STATE_RUNNING, type IoThreadData } from "./io-queue.js";

function main(d: IoThreadData): void {
  if (d.name !== "") try { writeFileSync("/proc/thread-self/comm", d.name); } catch { /* not Linux: keeps its creator's name */ }
  const q = new IoQueue(d.queue);
  const ram = new Uint8Array(d.ram);
  const doorbell = d.doorbell !== null ? new Int32Array(d.doorbell) : null;
  const ctl = q.ctl;
  const zeros = new Uint8Array(ZERO_CHUNK);
  const enc = new TextEncoder();
  let next = Atomics.load(ctl, Q_DONE);
  // A qcow2 disk: this thread's own mapping over the descriptor, opened at the first request (a refusal fails
  // each request with its message; the descriptor stays ours to close).
  const held: { qcow2: Qcow2Image | null } = { qcow2: null };

  /** Serves slot s; returns its IO_* status (an error's text goes to the slot's message bytes). */
  const serve = (s: number): number => {
    const w = IoQueue.word(s), f = IoQueue.num(s), r = IoQueue.run(s);
    const op = q.slot[w + S_OP]!, nruns = q.slot[w + S_NRUNS]!;
    let pos = q.f64[f + F_POS]!;
    try {
      testDelay(d.delayMs);
      if (d.format === "qcow2") return serveImage(held.qcow2 ??= openThreadImage(d.fd, d.path ?? "", d.readOnly ?? false, d.format)!, op, nruns, f, r, pos);
      switch (op & 0xff) {
        case IO_READ:
          for (let i = 0; i < nruns; i++) {
            const len = q.runLen[r + i]!;
            // Safe: blkback validated [off, off+len) as inside a page granted writable to it (see the file comment).
            if (!preadFully(d.fd, ram, q.f64[f + F_RUNS + i]!, len, pos)) return IO_SHORT_READ;
            pos += len;
          }
          return IO_OK;
        case IO_WRITE:
          for (let i = 0; i < nruns; i++) {
            const len = q.runLen[r + i]!;
            pwriteFully(d.fd, ram, q.f64[f + F_RUNS + i]!, len, pos);
            pos += len;
          }
          if ((op & IO_FLAG_SYNC) !== 0) fdatasyncSync(d.fd);
          return IO_OK;
        case IO_FLUSH:
          fdatasyncSync(d.fd);
          return IO_OK;
        case IO_DISCARD:
          zeroRange(d.fd, d.bytes, pos, q.f64[f + F_LEN]!, zeros);
          return IO_OK;
        default:
          throw new Error(`unknown queued operation ${op}`);
      }
    } catch (e) {
      // Only on failure: the host's words for the log on the vCPU thread (allocation is fine here).
      const text = enc.encode((e as Error)?.message ?? String(e)).subarray(0, IO_MSG_BYTES);
      q.msg.set(text, IoQueue.text(s));
      q.slot[w + S_MSG_LEN] = text.length;
      return IO_ERROR;
    }
  };

  /** serve() for an image mapped by src/storage (qcow2): the same runs, at virtual-disk positions. */
  const serveImage = (img: Qcow2Image, op: number, nruns: number, f: number, r: number, pos: number): number => {
    switch (op & 0xff) {
      case IO_READ:
      case IO_WRITE:
        for (let i = 0; i < nruns; i++) {
          const len = q.runLen[r + i]!;
          // Safe: as in serve(), each run was validated by blkback as inside a granted page.
          if ((op & 0xff) === IO_READ) img.read(ram, q.f64[f + F_RUNS + i]!, len, pos);
          else img.write(ram, q.f64[f + F_RUNS + i]!, len, pos);
          pos += len;
        }
        if ((op & IO_FLAG_SYNC) !== 0) img.flush();
        return IO_OK;
      case IO_FLUSH:
        img.flush();
        return IO_OK;
      case IO_DISCARD:
        img.discard(pos, q.f64[f + F_LEN]!);
        return IO_OK;
      default:
        throw new Error(`unknown queued operation ${op}`);
    }
  };

  const ring = (): void => {
    Atomics.notify(ctl, Q_DONE);
    if (doorbell !== null) { Atomics.add(doorbell, 0, 1); Atomics.notify(doorbell, 0); }
  };

  /** When to ring the doorbell for a throttled disk (this thread's clock), or 0; completions not rung yet. */
  let wakeAt = 0, unrung = 0;
  for (;;) {
    // Read the kick word before looking for work: a submission after this read changes it, so the wait
    // below returns at once instead of sleeping through it.
    const kick = Atomics.load(ctl, Q_KICK);
    if (Atomics.load(ctl, Q_CLOSING) !== 0) break;
    // A wake-up asked for by blkback (Q_WAKE ms from now): the domain thread has no timers of its own.
    const w = Atomics.exchange(ctl, Q_WAKE, 0);
    if (w > 0) { const t = performance.now() + w; if (wakeAt === 0 || t < wakeAt) wakeAt = t; }
    if (wakeAt !== 0 && performance.now() >= wakeAt) { wakeAt = 0; ring(); }
    const submitted = Atomics.load(ctl, Q_SUBMITTED) >>> 0;
    if (next === submitted) {
      const timeout = wakeAt !== 0 ? Math.max(1, wakeAt - performance.now()) : d.idleMs;
      if (Atomics.wait(ctl, Q_KICK, kick, timeout) !== "timed-out" || wakeAt !== 0) continue;
      // Idle: give the queue up (only this thread moves it from RUNNING), then look once more — blkback
      // publishes a request before it swaps NONE → RUNNING, so either it starts a new thread or this one sees
      // the request and takes the queue back; never both, never neither (BlkBack.ensureIo).
      Atomics.compareExchange(ctl, Q_STATE, STATE_RUNNING, STATE_NONE);
      if ((Atomics.load(ctl, Q_SUBMITTED) >>> 0) === next && Atomics.load(ctl, Q_CLOSING) === 0) {
        held.qcow2?.release(); // its backing files; the image's own descriptor stays open for the next thread
        return; // the file stays open
      }
      if (Atomics.compareExchange(ctl, Q_STATE, STATE_NONE, STATE_RUNNING) !== STATE_NONE) { held.qcow2?.release(); return; } // taken over, or closed
      continue;
    }
    const s = next & (IO_SLOTS - 1);
    q.slot[IoQueue.word(s) + S_STATUS] = serve(s);
    next = (next + 1) >>> 0;
    Atomics.store(ctl, Q_DONE, next | 0); // publishes the status (and the data moved) with it
    // The doorbell once per batch: when this thread has caught up with what was queued, or every d.ringEvery
    // (io-queue.ts RING_EVERY) completions of a longer run. A domain whose guest queues many requests at once (a
    // 1 MiB write is 8) then wakes once to answer them all, instead of once per request: host CPU and context
    // switches that compete with other domains' threads (a flat-out writer cost a random reader in another domain
    // more than a CPU hog did, test/hv/io-fair.test.ts; per MiB written, bench/io/wakeups.ts: 35 → 26-30 switches
    // of the domain thread). A lone request (queue depth 1) is rung at once as before.
    if (++unrung >= d.ringEvery || (Atomics.load(ctl, Q_SUBMITTED) >>> 0) === next) { unrung = 0; ring(); }
  }
  held.qcow2?.release();
  try { closeSync(d.fd); } catch { /* closed already: nothing to give back */ }
  Atomics.store(ctl, Q_ENDED, 1);
  ring();
}

main(workerData as IoThreadData);
