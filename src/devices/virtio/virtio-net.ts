/**
 * virtio-net (virtio 1.2 section 5.1) over the PCI transport: an Ethernet NIC for an HVM guest whose frames go to
 * and come from the same bridges as netback's vifs (the toolstack hands it the vif's send function and routes the
 * vif's received frames to receive()). Queue 0 receives, queue 1 transmits.
 *
 * Every buffer starts with struct virtio_net_hdr (12 bytes with VIRTIO_F_VERSION_1: flags, gso_type, hdr_len,
 * gso_size, csum_start, csum_offset, num_buffers). No offloads are offered (no CSUM, GSO, MRG_RXBUF), so the
 * driver sends whole frames with their checksums and posts receive buffers big enough for one frame each; the
 * header's fields are ignored on transmit and zero on receive (num_buffers = 1).
 *
 * Checked: a transmit chain is device-readable only, in RAM, and holds a header and a frame of 14..mtu+18
 * bytes (else it is returned unsent and counted); a receive chain is device-writable only and in RAM (else it is
 * returned unused); a frame bigger than the buffers is dropped and counted; with no buffer posted a received frame
 * is dropped (counted: the peers' TCP retransmits). A broken ring sets DEVICE_NEEDS_RESET (virtio-pci.ts).
 *
 * Features: VERSION_1, MAC (the vif's), STATUS (link up). Hot path: the transmit frame is gathered into one
 * preallocated buffer; the only allocations per frame are typed-array views (subarray) for the copies and for the
 * frame handed to the bridge.
 */
import type { DmaMemory } from "../dma.js";
import { VQ_BROKEN, VQ_EMPTY } from "./virtqueue.js";
import { VirtioPciDevice } from "./virtio-pci.js";

export const VIRTIO_ID_NET = 1;
export const VIRTIO_NET_F_MAC = 5, VIRTIO_NET_F_STATUS = 16, VIRTIO_NET_S_LINK_UP = 1;
export const VIRTIO_NET_HDR_BYTES = 12;
const RX = 0, TX = 1, QUEUE_SIZE = 256, CONFIG_SIZE = 12, ETH_MIN = 14;

export interface VirtioNetOptions {
  /** The MAC, "xx:xx:xx:xx:xx:xx". */
  mac: string;
  /** Largest IP packet (frames up to mtu + 18 bytes: Ethernet header and one VLAN tag). */
  mtu: number;
  /** A frame the guest sent (a view valid during the call only). */
  send(frame: Uint8Array): void;
}

export class VirtioNet extends VirtioPciDevice {
  private readonly netConfig = new Uint8Array(CONFIG_SIZE);
  private readonly txBuf: Uint8Array;
  private readonly maxFrame: number;
  readonly stats = { txFrames: 0, txBytes: 0, txDropped: 0, rxFrames: 0, rxBytes: 0, rxNoBuffer: 0, rxDropped: 0 };
  lastFrameError = "";

  constructor(mem: DmaMemory, private readonly o: VirtioNetOptions) {
    super(mem, {
      type: VIRTIO_ID_NET, classCode: 0x020000, queues: 2, maxQueueSize: QUEUE_SIZE, configSize: CONFIG_SIZE,
      features: [(1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_NET_F_STATUS), 0],
    });
    const mac = o.mac.split(":").map((h) => parseInt(h, 16));
    if (mac.length !== 6 || mac.some((b) => !(b >= 0 && b <= 255))) throw new RangeError(`virtio-net: bad MAC ${JSON.stringify(o.mac)}`);
    // struct virtio_net_config (5.1.4): mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu.
    this.netConfig.set(mac, 0);
    this.netConfig[6] = VIRTIO_NET_S_LINK_UP;
    this.netConfig[8] = 1;
    this.maxFrame = o.mtu + 18;
    this.txBuf = new Uint8Array(VIRTIO_NET_HDR_BYTES + this.maxFrame);
  }

  protected configRead(off: number, size: number): number {
    let v = 0;
    for (let k = size - 1; k >= 0; k--) v = v * 256 + (off + k < CONFIG_SIZE ? this.netConfig[off + k]! : 0);
    return v | 0;
  }

  protected serve(q: number): void {
    if (q !== TX) return; // a receive doorbell: buffers were posted; receive() takes them when frames come
    this.drain(TX);
  }

  /** One transmit chain (drain): the frame goes to the bridge, or is dropped and counted; nothing is written back. */
  protected chain(): number {
    const vq = this.queues[TX]!, m = this.mem.bytes;
    let len = 0, bad = "";
    for (let i = 0; i < vq.segs && bad === ""; i++) {
      const off = vq.segOff[i]!, n = vq.segLen[i]!;
      if (vq.segWrite[i] === 1) bad = "a device-writable buffer in a transmit chain";
      else if (off < 0) bad = `buffer ${i} is outside guest RAM`;
      else if (len + n > this.txBuf.length) bad = `a frame over ${this.maxFrame} bytes`;
      else { this.txBuf.set(m.subarray(off, off + n), len); len += n; }
    }
    if (bad === "" && len < VIRTIO_NET_HDR_BYTES + ETH_MIN) bad = `${len} bytes: shorter than a header and an Ethernet header`;
    if (bad !== "") { this.stats.txDropped++; this.lastFrameError = bad; }
    else {
      this.stats.txFrames++; this.stats.txBytes += len - VIRTIO_NET_HDR_BYTES;
      this.o.send(this.txBuf.subarray(VIRTIO_NET_HDR_BYTES, len));
    }
    return 0;
  }

  /** A frame from the bridge for the guest: copied into the next posted receive buffer; false when dropped. */
  receive(frame: Uint8Array): boolean {
    const vq = this.queues[RX]!;
    if (!this.serving(RX)) { this.stats.rxNoBuffer++; return false; }
    const head = vq.pop();
    if (head === VQ_EMPTY) { this.stats.rxNoBuffer++; return false; }
    if (head === VQ_BROKEN) { this.needsReset(vq.broken); return false; }
    const m = this.mem.bytes;
    let room = 0, bad = "";
    for (let i = 0; i < vq.segs; i++) {
      if (vq.segWrite[i] !== 1) { bad = "a device-readable buffer in a receive chain"; break; }
      if (vq.segOff[i]! < 0) { bad = `buffer ${i} is outside guest RAM`; break; }
      room += vq.segLen[i]!;
    }
    const total = VIRTIO_NET_HDR_BYTES + frame.length;
    if (bad === "" && room < total) bad = `a ${frame.length}-byte frame does not fit ${room} bytes of buffers`;
    if (bad !== "") {
      this.stats.rxDropped++; this.lastFrameError = bad;
      vq.push(head, 0);
      this.interruptQueue(RX);
      return false;
    }
    // The header (all zero but num_buffers = 1), then the frame, across the chain's buffers.
    let done = 0;
    for (let i = 0; i < vq.segs && done < total; i++) {
      let off = vq.segOff[i]!, n = Math.min(vq.segLen[i]!, total - done);
      const start = off, len = n;
      for (; n > 0 && done < VIRTIO_NET_HDR_BYTES; n--, done++, off++) m[off] = done === 10 ? 1 : 0; // num_buffers = 1
      if (n > 0) { m.set(frame.subarray(done - VIRTIO_NET_HDR_BYTES, done - VIRTIO_NET_HDR_BYTES + n), off); done += n; }
      this.mem.written?.(start, len);
    }
    vq.push(head, total);
    this.stats.rxFrames++; this.stats.rxBytes += frame.length;
    this.interruptQueue(RX);
    return true;
  }
}
