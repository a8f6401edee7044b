/**
 * xl block-attach / block-detach / network-attach / network-detach: hot-plug through the XenbusState handshake
 * (the hypervisor creates or removes the back-end; the guest's blkfront/netfront probe or let go). The specs are
 * xl's (xl-disk-configuration(5), xl-network-configuration(5)), parsed by src/config.
 */
import { resolve } from "node:path";
import { statSync } from "node:fs";
import { describeKind } from "../../common/host-file.js";
import { ask, fetchTable, type XlClient } from "./client.js";
import { refuseDomain0, resolveDomain, type Dom } from "./domains.js";
import { withClient, type XlEnv } from "./env.js";
import { XlError } from "./errors.js";
import { count, UsageError, type ParsedOpts } from "./getopt.js";
import { parseDiskSpec, vbdNumber } from "../../config/disk.js";
import { parseVifSpec } from "../../config/vif.js";
import { ConfigError } from "../../config/errors.js";
import { ensureHostTools, HostToolError, PASST } from "../../images/host-packages.js";
import { uplinkNotice } from "../../net/uplink-status.js";

async function target(c: XlClient, env: XlEnv, arg: string, verb: string): Promise<Dom> {
  const { table } = await fetchTable(c, env.now());
  const d = resolveDomain(table, arg);
  refuseDomain0(d, verb);
  return d;
}

const specError = (e: unknown): Error => (e instanceof ConfigError ? new UsageError(e.message) : (e as Error));

export async function blockAttachCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const [domArg, ...parts] = p.args as [string, ...string[]];
  let disk;
  try { disk = parseDiskSpec(parts.join(",")); } catch (e) { throw specError(e); }
  if (disk.format !== "raw" && disk.format !== "qcow2") throw new XlError(`format=${disk.format}: Xeno's blkback serves raw and qcow2 images`);
  if (disk.target === "") throw new XlError("no target: an empty drive is a cdrom, which is not supported yet");
  if (/^nvme/.test(disk.vdev)) throw new XlError(`vdev ${disk.vdev} is an emulated NVMe disk of a type="hvm" domain's config; block-attach adds PV disks (xvdX)`);
  const path = resolve(disk.target);
  let st;
  try { st = statSync(path); } catch { throw new XlError(`target ${path}: no such file`); }
  if (!st.isFile()) throw new XlError(`target ${path}: is ${describeKind(st)}; give a regular file (a raw disk image)`);
  return withClient(env, async (c) => {
    const d = await target(c, env, domArg, "attach a disk to");
    await ask(c, `attach ${disk.vdev} to domain '${d.name}' (${d.domid})`, "block-attach",
      { domid: d.domid, disk: { path, devid: disk.vdevNumber, vdev: disk.vdev, readOnly: !disk.readwrite, ...(disk.format === "qcow2" ? { format: "qcow2" } : {}) } });
    return 0;
  });
}

export async function blockDetachCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const [domArg, dev] = p.args as [string, string];
  const devid = /^\d+$/.test(dev) ? Number(dev) : vbdNumber(dev)?.number;
  if (devid === undefined) throw new UsageError(`'${dev}' is not a device id or a vdev name (xvdb, 51728)`);
  return withClient(env, async (c) => {
    const d = await target(c, env, domArg, "detach a disk from");
    const force = count(p, "f") > 0;
    if (!force) env.err(`Waiting for domain '${d.name}' (${d.domid}) to close ${dev} (up to 10 s; -f does not wait)\n`);
    const r = await ask(c, `detach ${dev} from domain '${d.name}' (${d.domid})`, "block-detach", { domid: d.domid, devid, force });
    if (r?.forced === true) env.err(`${dev} removed while the guest had not closed it (-f)\n`);
    return 0;
  });
}

export async function networkAttachCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const [domArg, ...parts] = p.args as [string, ...string[]];
  // The bridge's uplink (passt): installed now with a line saying so, or the command to run.
  try { ensureHostTools([PASST], "xeno network-attach", (l) => env.err(`${l}\n`)); }
  catch (e) { throw e instanceof HostToolError ? new XlError(e.message) : e; }
  return withClient(env, async (c) => {
    const d = await target(c, env, domArg, "attach a vif to");
    const { list } = await fetchTable(c, env.now());
    const used = new Set((list.find((x) => x.domid === d.domid)?.spec.vifs ?? []).map((v) => v.devid));
    let devid = 0;
    while (used.has(devid)) devid++;
    let v;
    try { v = parseVifSpec(parts.join(","), devid); } catch (e) { throw specError(e); }
    if (v.rate !== undefined && v.rate.bytesPerInterval < 1) {
      throw new XlError(`rate=${v.rate.bytesPerSecond}B/s over ${v.rate.intervalUsecs} us allows 0 bytes per interval; use a longer interval (rate=…@1s)`);
    }
    const rate = v.rate === undefined ? {} : { rate: { bytesPerInterval: v.rate.bytesPerInterval, intervalUsecs: v.rate.intervalUsecs } };
    await ask(c, `attach a vif to domain '${d.name}' (${d.domid})`, "network-attach",
      { domid: d.domid, vif: { devid: v.devid, mac: v.mac, mtu: v.mtu ?? 1500, bridge: v.bridge, ...rate } });
    // The bridge daemon logs to its own file; a missing or failing uplink is said here (net/uplink-status.ts).
    const notice = uplinkNotice(v.bridge, "xeno network-attach");
    if (notice !== undefined) env.err(`${notice}\n`);
    return 0;
  });
}

export async function networkDetachCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const [domArg, dev] = p.args as [string, string];
  return withClient(env, async (c) => {
    const d = await target(c, env, domArg, "detach a vif from");
    const { list } = await fetchTable(c, env.now());
    const vifs = list.find((x) => x.domid === d.domid)?.spec.vifs ?? [];
    const v = /^\d+$/.test(dev) ? vifs.find((x) => x.devid === Number(dev)) : vifs.find((x) => x.mac.toLowerCase() === dev.toLowerCase());
    if (v === undefined) throw new XlError(`domain '${d.name}' (${d.domid}) has no vif '${dev}'`);
    const force = count(p, "f") > 0;
    if (!force) env.err(`Waiting for domain '${d.name}' (${d.domid}) to close vif ${v.devid} (up to 10 s; -f does not wait)\n`);
    const r = await ask(c, `detach vif ${v.devid} from domain '${d.name}' (${d.domid})`, "network-detach", { domid: d.domid, devid: v.devid, force });
    if (r?.forced === true) env.err(`vif ${v.devid} removed while the guest had not closed it (-f)\n`);
    return 0;
  });
}
