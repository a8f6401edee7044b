/**
 * The XenStore side of creating a domain, as libxl does it for an Arm (PVH-type) DomU before unpausing it
 * (tools/libs/light/libxl_create.c libxl__domain_make, libxl_dom.c libxl__build_pre/post,
 * libxl_console.c libxl__device_console_add, xs_introduce_domain), with the paths of docs/xenstore-paths.pandoc:
 *
 *   /local/domain/<D>               owner dom0, readable by D ("n0 r<D>"): name, domid, vm, memory/*,
 *                                   cpu/<n>/availability, store/*, console/* inherit it
 *   /local/domain/<D>/control       same; control/shutdown, feature-*, sysrq owned by D ("n<D>": the guest
 *                                   acknowledges shutdown requests and advertises features there)
 *   /local/domain/<D>/{device,data,drivers,feature,attr,error}   owned by D
 *   /vm/<uuid>                      "n0 r<D>": uuid, name, image/ostype, start_time
 *
 * then INTRODUCE(D, store gfn, store port), which fires @introduceDomain. The connection of the guest's ring
 * itself is the caller's (xenbus-ring.ts).
 */
import type { StoreApi } from "../xenstore/index.js";

export interface DomainStoreInfo {
  domid: number;
  name: string;
  uuid: Uint8Array;
  /** Guest RAM in KiB (memory/static-max and memory/target: no balloon target below it at boot). */
  memKiB: number;
  vcpus: number;
  storeGfn: number;
  storePort: number;
  /** 0 = no PV console. */
  consoleGfn: number;
  consolePort: number;
}

/** LIBXL_XENCONSOLE_LIMIT: the console log limit libxl writes (bytes). */
const XENCONSOLE_LIMIT = 1048576;

export function uuidString(u: Uint8Array): string {
  const h = Array.from(u.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Writes the domain's nodes and introduces it. Existing nodes of the same domid are replaced. */
export function introduceDomain(store: StoreApi, d: DomainStoreInfo): void {
  const s = store.connect(0, () => {});
  try {
    const D = d.domid;
    const dom = `/local/domain/${D}`;
    const vm = `/vm/${uuidString(d.uuid)}`;
    const ro = ["n0", `r${D}`];
    const rw = [`n${D}`];
    const w = (path: string, value: string): void => store.write(s, null, path, Buffer.from(value, "latin1"));
    const node = (path: string, perms: string[]): void => { store.mkdir(s, null, path); store.setPerms(s, null, path, perms); };
    for (const p of [dom, vm]) {
      try { store.rm(s, null, p); } catch { /* absent */ }
      node(p, ro);
    }
    w(`${dom}/vm`, vm);
    w(`${dom}/name`, d.name);
    w(`${vm}/name`, d.name);
    w(`${vm}/uuid`, uuidString(d.uuid));
    w(`${vm}/image/ostype`, "linux");
    w(`${vm}/start_time`, (Date.now() / 1000).toFixed(2));
    node(`${dom}/control`, ro);
    w(`${dom}/control/platform-feature-multiprocessor-suspend`, "1");
    w(`${dom}/control/platform-feature-xs_reset_watches`, "1");
    for (const k of ["shutdown", "feature-poweroff", "feature-reboot", "feature-suspend", "sysrq"]) node(`${dom}/control/${k}`, rw);
    for (const k of ["device", "data", "drivers", "feature", "attr", "error"]) node(`${dom}/${k}`, rw);
    w(`${dom}/domid`, String(D));
    w(`${dom}/memory/static-max`, String(d.memKiB));
    w(`${dom}/memory/target`, String(d.memKiB));
    for (let n = 0; n < d.vcpus; n++) w(`${dom}/cpu/${n}/availability`, "online");
    w(`${dom}/store/port`, String(d.storePort));
    w(`${dom}/store/ring-ref`, String(d.storeGfn));
    if (d.consolePort !== 0) {
      w(`${dom}/console/backend-id`, "0");
      w(`${dom}/console/limit`, String(XENCONSOLE_LIMIT));
      w(`${dom}/console/type`, "xenconsoled");
      w(`${dom}/console/output`, "pty");
      w(`${dom}/console/tty`, "");
      w(`${dom}/console/port`, String(d.consolePort));
      w(`${dom}/console/ring-ref`, String(d.consoleGfn));
    }
    store.introduce(s, D, d.storeGfn, d.storePort);
  } finally {
    store.disconnect(s);
  }
}
