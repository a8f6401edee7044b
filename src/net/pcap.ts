/**
 * A debugging capture: each switch port's ingress frames in a classic pcap file (LINKTYPE_ETHERNET), one file
 * per port, `<dir>/<bridge>-<port>.pcap` (the uplink's file holds what passt sent, a vif's what its guest sent).
 * Turned on by $XENO_NET_PCAP=DIR for the bridge daemon (bridge-daemon.ts); off by default. Writes are
 * synchronous (fs.writeSync): a debugging aid, not a hot path. Format: the libpcap file format
 * (https://www.tcpdump.org/manpages/pcap-savefile.5.html), microsecond timestamps, snaplen 65535 + 14.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";

const PCAP_MAGIC = 0xa1b2c3d4, LINKTYPE_ETHERNET = 1, SNAPLEN = 65535 + 14;

export class PcapWriter {
  private readonly files = new Map<string, number>();
  private readonly rec = Buffer.alloc(16);

  constructor(private readonly dir: string, private readonly prefix: string) {}

  /** Appends `frame` to the file of port `port` (opened, with its header, on first use). */
  write(port: string, frame: Uint8Array): void {
    let fd = this.files.get(port);
    if (fd === undefined) {
      fd = openSync(join(this.dir, `${this.prefix}-${port.replace(/[^A-Za-z0-9_.-]/g, "_")}.pcap`), "w");
      const h = Buffer.alloc(24);
      h.writeUInt32LE(PCAP_MAGIC, 0); h.writeUInt16LE(2, 4); h.writeUInt16LE(4, 6);
      h.writeUInt32LE(SNAPLEN, 16); h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
      writeSync(fd, h);
      this.files.set(port, fd);
    }
    const now = Date.now();
    const r = this.rec;
    r.writeUInt32LE(Math.floor(now / 1000), 0); r.writeUInt32LE((now % 1000) * 1000, 4);
    r.writeUInt32LE(frame.length, 8); r.writeUInt32LE(frame.length, 12);
    writeSync(fd, r);
    writeSync(fd, frame);
  }

  close(): void {
    for (const fd of this.files.values()) closeSync(fd);
    this.files.clear();
  }
}
