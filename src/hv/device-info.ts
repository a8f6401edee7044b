/**
 * What `xl block-list` and `xl network-list` print of a device besides its identity, read from XenStore as
 * libxl does (libxl_device_disk_getinfo, libxl_device_nic_getinfo): the front-end directory's `state`,
 * `event-channel` and `ring-ref` (vbd) or `tx-ring-ref`/`rx-ring-ref` (vif), -1 when a key is absent (the
 * front-end has not written it yet, or has removed it; a netfront with split event channels writes
 * event-channel-tx/-rx instead, and xl shows -1 then too). The back-end's own state is read too.
 */
import type { DeviceInfo, DomainSpec } from "./protocol.js";

/** A XenStore read as dom0: the value, or undefined when absent. */
export type StoreRead = (path: string) => string | undefined;

function int(v: string | undefined): number {
  return v !== undefined && /^\s*\d{1,10}\s*$/.test(v) ? Number(v) : -1;
}

/** The devices of `spec` (disks, then vifs) with their XenStore state. */
export function deviceInfo(read: StoreRead, domid: number, spec: Pick<DomainSpec, "disks" | "vifs">): DeviceInfo[] {
  const out: DeviceInfo[] = [];
  for (const k of spec.disks) {
    const fe = `/local/domain/${domid}/device/vbd/${k.devid}`;
    out.push({
      kind: "vbd", devid: k.devid, state: int(read(`${fe}/state`)), backendState: int(read(`/local/domain/0/backend/vbd/${domid}/${k.devid}/state`)),
      evtch: int(read(`${fe}/event-channel`)), ringRef: int(read(`${fe}/ring-ref`)),
    });
  }
  for (const v of spec.vifs) {
    const fe = `/local/domain/${domid}/device/vif/${v.devid}`;
    out.push({
      kind: "vif", devid: v.devid, state: int(read(`${fe}/state`)), backendState: int(read(`/local/domain/0/backend/vif/${domid}/${v.devid}/state`)),
      evtch: int(read(`${fe}/event-channel`)), txRingRef: int(read(`${fe}/tx-ring-ref`)), rxRingRef: int(read(`${fe}/rx-ring-ref`)),
    });
  }
  return out;
}
