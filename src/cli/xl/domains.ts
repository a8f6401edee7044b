/**
 * The domain table as the xl subcommands see it: the hypervisor's list (src/hv/protocol.ts DomainInfo) with
 * Domain-0 first, and domain arguments (a domid or a name) resolved against it.
 *
 * Domain-0 is Xeno's toolstack itself (xenod and the hypervisor process), not a guest. When the hypervisor's
 * list includes domid 0 it is used as is; when it does not, a Domain-0 row is made up from HostInfo:
 *   Mem    the machine-frame pool's frames that are neither free nor any guest's (what the hypervisor holds
 *          for itself), in MiB: total_memory - free_memory - Σ guests' memory, never below 0;
 *   VCPUs  the host's CPUs (the toolstack runs on all of them, as dom0's vCPUs span the host in Xen);
 *   State  running (it is answering); Time(s) 0.0 (the protocol does not report the toolstack's CPU time);
 *   uptime the hypervisor process's uptime.
 */
import type { DomainInfo, DomainSpec, HostInfo } from "../../hv/protocol.js";
import { XlError } from "./errors.js";

export const DOM0_NAME = "Domain-0";
export const NIL_UUID = "00000000-0000-0000-0000-000000000000";

/** A row of the domain table: a hypervisor DomainInfo, or the made-up Domain-0 (no spec). */
export interface Dom extends Omit<DomainInfo, "spec"> {
  spec?: DomainSpec;
  /** True for the Domain-0 row made up from HostInfo. */
  synthetic?: boolean;
}

/** The made-up Domain-0 row (see the file comment). `nowS`: Unix time, s. */
export function syntheticDomain0(host: HostInfo, guests: readonly DomainInfo[], nowS: number): Dom {
  const guestMiB = guests.reduce((s, d) => s + d.memKiB, 0) / 1024;
  const memMiB = Math.max(0, Math.floor(host.totalMemoryMiB - host.freeMemoryMiB - guestMiB));
  const memKiB = memMiB * 1024;
  return {
    domid: 0, name: DOM0_NAME, uuid: NIL_UUID, state: "running",
    memKiB, maxMemKiB: memKiB, targetKiB: memKiB,
    vcpus: host.nrCpus, onlineVcpus: host.nrCpus, cpuSeconds: 0,
    startTime: Math.floor(nowS - host.uptime), synthetic: true,
  };
}

/** The table: Domain-0 first (the hypervisor's own, or made up when `host` is given), then by domid. */
export function domainTable(list: readonly DomainInfo[], host: HostInfo | undefined, nowS: number): Dom[] {
  const sorted = [...list].sort((a, b) => a.domid - b.domid);
  if (sorted.length > 0 && sorted[0]!.domid === 0) return sorted;
  return host === undefined ? sorted : [syntheticDomain0(host, sorted, nowS), ...sorted];
}

/** True when `q` is written as a domid (xl: libxl_domain_qualifier_to_domid takes all-digit strings as ids). */
export function isDomid(q: string): boolean {
  return /^[0-9]+$/.test(q);
}

/**
 * The domain `q` names: a domid (all digits) or a name; "Domain-0" is 0. Throws XlError naming the domain
 * and where to look when there is none.
 */
export function resolveDomain(table: readonly Dom[], q: string): Dom {
  if (isDomid(q)) {
    const id = Number.parseInt(q, 10);
    const d = table.find((x) => x.domid === id);
    if (d) return d;
    if (id === 0) return syntheticDomain0Stub();
    throw new XlError(`domain ${id} does not exist ('xeno list' shows the domains)`);
  }
  if (q === "") throw new XlError("an empty string is not a domain name or id");
  const d = table.find((x) => x.name === q);
  if (d) return d;
  if (q === DOM0_NAME) return syntheticDomain0Stub();
  throw new XlError(`domain '${q}' does not exist ('xeno list' shows the domains)`);
}

/** Domain-0 when the table was built without HostInfo (only its identity matters to the caller). */
function syntheticDomain0Stub(): Dom {
  return {
    domid: 0, name: DOM0_NAME, uuid: NIL_UUID, state: "running", memKiB: 0, maxMemKiB: 0, targetKiB: 0,
    vcpus: 0, onlineVcpus: 0, cpuSeconds: 0, startTime: 0, synthetic: true,
  };
}

/** Refuses an operation on Domain-0, which is the toolstack itself in Xeno (no guest to act on). */
export function refuseDomain0(d: Dom, what: string): void {
  if (d.domid === 0) {
    throw new XlError(`cannot ${what} Domain-0: in Xeno it is the toolstack itself (xenod and the hypervisor ` +
      "process), not a guest");
  }
}
