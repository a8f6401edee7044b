/**
 * virtio-rng, the entropy device (virtio 1.2 section 5.4), over the PCI transport: one request queue; the driver
 * posts device-writable buffers and the device fills them with random bytes from the host's CSPRNG (Node's
 * crypto.randomFillSync), as QEMU's virtio-rng does with its default backend (rng-builtin: the host's
 * getrandom()), without QEMU's optional rate limit (max-bytes/period). No features beyond VERSION_1 and no
 * device-specific configuration (5.4.4), so no device configuration capability either (Linux's virtio_pci_modern
 * maps one only when it is there).
 *
 * A request is a chain of device-writable buffers (5.4.6: the driver places no device-readable ones). The device
 * fills at most VIRTIO_RNG_MAX_FILL bytes of a chain (5.4.6 lets it use less than the whole buffer: a guest posting
 * a 1 GiB buffer does not hold its vCPU for seconds) and reports how many in the used ring. Checked per chain,
 * answered with 0 bytes used and counted (the device goes on, as virtio-net does with a bad receive buffer): a
 * device-readable buffer, a buffer not all in guest RAM (the flash, MMIO, past the end, a length running past RAM).
 * A broken ring (loops, a head or `next` past the queue) sets DEVICE_NEEDS_RESET (virtio-pci.ts, virtqueue.ts).
 *
 * Requests are served synchronously when the driver rings the doorbell, on that vCPU's thread. Hot path: the
 * bytes are generated straight into guest RAM (randomFillSync over the domain's memory at the buffer's offset):
 * no buffer is allocated or copied per request.
 */
import { randomFillSync } from "node:crypto";
import type { DmaMemory } from "../dma.js";
import { VirtioPciDevice } from "./virtio-pci.js";

export const VIRTIO_ID_RNG = 4;
/** The most bytes filled per chain (Linux's virtio-rng posts one small buffer at a time). */
export const VIRTIO_RNG_MAX_FILL = 64 * 1024;
/** Queue size offered (QEMU's virtio-rng has 8; Linux keeps one request in flight). */
const QUEUE_SIZE = 64;

export class VirtioRng extends VirtioPciDevice {
  /** Counters for tests and diagnostics. */
  readonly stats = { requests: 0, bytes: 0, badRequests: 0 };
  /** Why the last chain was refused (for the log): "" when none was. */
  lastRequestError = "";

  constructor(mem: DmaMemory) {
    // PCI class 0xff (PCI_CLASS_OTHERS), as QEMU's virtio-rng-pci.
    super(mem, { type: VIRTIO_ID_RNG, classCode: 0xff0000, queues: 1, maxQueueSize: QUEUE_SIZE, configSize: 0, features: [0, 0] });
  }

  protected configRead(): number { return 0; }

  protected serve(q: number): void { this.drain(q); }

  /** Fills the popped chain's buffers; returns the bytes written (0 for a refused chain). */
  protected chain(): number {
    const vq = this.queues[0]!, n = vq.segs;
    this.stats.requests++;
    for (let i = 0; i < n; i++) {
      if (vq.segWrite[i] !== 1) return this.refuse(`buffer ${i} is device-readable`);
      if (vq.segOff[i]! < 0) return this.refuse(`buffer ${i} (${vq.segLen[i]} bytes) is outside guest RAM`);
    }
    const m = this.mem.bytes;
    let total = 0;
    for (let i = 0; i < n && total < VIRTIO_RNG_MAX_FILL; i++) {
      const off = vq.segOff[i]!, len = Math.min(vq.segLen[i]!, VIRTIO_RNG_MAX_FILL - total);
      if (len === 0) continue;
      // offsetOf checked [off, off + segLen) is inside guest RAM; len is at most segLen.
      randomFillSync(m, off, len);
      this.mem.written?.(off, len);
      total += len;
    }
    this.stats.bytes += total;
    return total;
  }

  private refuse(why: string): number {
    this.stats.badRequests++;
    this.lastRequestError = why;
    return 0;
  }

  protected onReset(): void { this.lastRequestError = ""; }
}
