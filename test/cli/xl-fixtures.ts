/** Crafted HostInfo / DomainInfo shared by the xl CLI tests. */
import type { DomainInfo, DomainSpec, HostInfo } from "../../src/hv/protocol.js";

export const HOST: HostInfo = {
  host: "build1", release: "6.1.0-27-arm64", machine: "aarch64", nrCpus: 4, totalMemoryMiB: 4096,
  freeMemoryMiB: 3000, xenMajor: 4, xenMinor: 19, xenExtra: "-xeno", uptime: 3725, xenstoredSocket: "/run/xeno/xenstored.sock",
};

export function spec(over: Partial<DomainSpec> = {}): DomainSpec {
  return {
    name: "web", memMiB: 128, vcpus: 2, kernel: "/images/vmlinuz", ramdisk: "/images/initrd.img", cmdline: "console=hvc0",
    xen: true, disks: [], vifs: [], ...over,
  };
}

export function dom(over: Partial<DomainInfo>): DomainInfo {
  const d: DomainInfo = {
    domid: 1, name: "web", uuid: "6f1e2d3c-0000-4000-8000-00000000000c", state: "running", memKiB: 131072,
    maxMemKiB: 131072, targetKiB: 131072, vcpus: 2, onlineVcpus: 2, cpuSeconds: 12.345, startTime: 1_700_000_000,
    spec: spec(), ...over,
  };
  return d;
}

export const GUESTS: DomainInfo[] = [
  dom({}),
  dom({ domid: 12, name: "down", state: "shutdown", shutdownReason: "reboot", memKiB: 65536, maxMemKiB: 65536, vcpus: 1, onlineVcpus: 1, cpuSeconds: 3.25 }),
  dom({ domid: 7, name: "db", state: "paused", memKiB: 524288, maxMemKiB: 524288, vcpus: 1, onlineVcpus: 1, cpuSeconds: 0.04 }),
];
