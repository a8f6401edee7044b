/**
 * The control protocol's requests (protocol.ts) checked by a schema (zod) where they enter: the hypervisor's
 * control socket and xenod's socket. A request that fails gets EINVAL with a message naming the field, what it
 * should be and what came, e.g. `create: spec.disks[1]: expected a disk {path, devid, vdev, readOnly}, got null`.
 *
 * The schema checks types and structure (and that no two disks or vifs of a spec share a devid or vdev, which
 * would otherwise collide in XenStore); value ranges that depend on the host (memory, vCPUs, pCPUs) stay with
 * the hypervisor, which knows them. Objects keep fields the schema does not name (passthrough): a newer client
 * or an op added later is not refused here for a field it adds. An op the schema does not know passes with
 * only `id` and `op` checked, and the hypervisor answers ENOSYS for it.
 */
import { z } from "zod";
import type { Request } from "./protocol.js";

const int = (what: string) => z.number({ invalid_type_error: `expected ${what}` }).int(`expected ${what}`);
const domid = int("a domain id (an integer)").min(0, "expected a domain id ≥ 0");
const devid = int("a device id (an integer ≥ 0)").min(0, "expected a device id ≥ 0");

export const diskSchema = z.object({
  path: z.string().min(1, "expected the disk image's path"),
  devid,
  vdev: z.string().min(1, "expected the guest's name of the disk (e.g. xvda)"),
  readOnly: z.boolean().optional(),
  cdrom: z.boolean().optional(),
  nvme: z.boolean().optional(),
  format: z.enum(["raw", "qcow2"], { errorMap: () => ({ message: "expected format raw or qcow2" }) }).optional(),
}, { invalid_type_error: "expected a disk {path, devid, vdev, readOnly}" }).passthrough();

export const vifSchema = z.object({
  devid,
  mac: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i, "expected a MAC address like 00:16:3e:00:00:01"),
  mtu: int("an MTU in bytes").min(68).max(65535).optional(),
  bridge: z.string().min(1, "expected a bridge name"),
  rate: z.object({ bytesPerInterval: int("bytes per interval"), intervalUsecs: int("an interval in µs") }).passthrough().optional(),
}, { invalid_type_error: "expected a vif {devid, mac, mtu, bridge}" }).passthrough();

const action = z.enum(["destroy", "restart", "preserve", "rename-restart", "coredump-destroy", "coredump-restart", "soft-reset"]);
export const toolstackSchema = z.object({
  onPoweroff: action, onReboot: action, onCrash: action,
  configFile: z.string().optional(), configText: z.string().optional(),
}, { invalid_type_error: "expected {onPoweroff, onReboot, onCrash}" }).passthrough();

export const specSchema = z.object({
  name: z.string({ invalid_type_error: "expected the domain's name (a string)", required_error: "expected the domain's name" }),
  uuid: z.string().optional(),
  memMiB: int("memory in MiB (an integer)"),
  vcpus: int("a vCPU count (an integer)"),
  kernel: z.string({ required_error: "expected the kernel's path" }).min(1, "expected the kernel's path"),
  ramdisk: z.string().min(1, "expected the ramdisk's path (or no ramdisk field)").optional(),
  cmdline: z.string(),
  xen: z.boolean(),
  firmware: z.object({
    vars: z.string().min(1, "expected the variable store's path"),
    boot: z.string().regex(/^[cdn]{1,3}$/, "expected xl's boot= letters (c, d, n)").optional(),
  }).passthrough().optional(),
  disks: z.array(diskSchema, { invalid_type_error: "expected a list of disks" }),
  vifs: z.array(vifSchema, { invalid_type_error: "expected a list of vifs" }),
  paused: z.boolean().optional(),
  sched: z.object({
    weight: int("a weight (1..65535)").optional(), cap: int("a cap in % of a pCPU").optional(),
    cpus: z.array(int("a pCPU number")).nullable().optional(),
  }).passthrough().optional(),
  toolstack: toolstackSchema.optional(),
}, { invalid_type_error: "expected a domain spec object" }).passthrough().superRefine((s, ctx) => {
  const seen = (list: { devid: number; vdev?: string }[], what: string): void => {
    const ids = new Map<number, number>(), names = new Map<string, number>();
    list.forEach((d, i) => {
      const j = ids.get(d.devid);
      if (j !== undefined) {
        ctx.addIssue({ code: "custom", path: [what, i], message: `${what}[${j}] and ${what}[${i}] have the same devid ${d.devid}${d.vdev !== undefined ? ` (vdev ${list[j]!.vdev} and ${d.vdev}: one device name twice?)` : ""}; give each its own` });
      } else ids.set(d.devid, i);
      if (d.vdev !== undefined) {
        const k = names.get(d.vdev);
        if (k !== undefined && j === undefined) ctx.addIssue({ code: "custom", path: [what, i], message: `${what}[${k}] and ${what}[${i}] are both ${d.vdev}; give each its own vdev` });
        else names.set(d.vdev, i);
      }
    });
  };
  seen(s.disks, "disks");
  seen(s.vifs, "vifs");
});

const base = { id: z.number() };
/** A save file (xl save / restore): the hypervisor reads and writes it, so the client makes it absolute. */
const savePath = z.string({ invalid_type_error: "expected the save file's path (a string)", required_error: "expected the save file's path" })
  .min(1, "expected the save file's path");
const withDomid = { ...base, domid };

/** Arguments of each known op (the request minus id and op). */
const ops: Record<string, z.ZodTypeAny> = {
  create: z.object({ spec: specSchema }).passthrough(),
  list: z.object({}).passthrough(),
  info: z.object({}).passthrough(),
  subscribe: z.object({}).passthrough(),
  pause: z.object(withDomid).passthrough(),
  unpause: z.object({ ...withDomid, report: z.boolean().optional(),
    name: z.string({ invalid_type_error: "expected the new name (a string)" }).optional() }).passthrough(),
  destroy: z.object(withDomid).passthrough(),
  save: z.object({ ...withDomid, path: savePath, checkpoint: z.boolean().optional(), paused: z.boolean().optional(), suspend: z.boolean().optional() }).passthrough(),
  "migrate-send": z.object({
    ...withDomid, socket: z.string({ invalid_type_error: "expected the stream socket's path (a string)", required_error: "expected the stream socket's path" }).min(1),
    live: z.boolean().optional(), maxRounds: int("a round count (an integer)").optional(), minDirty: int("a page count (an integer)").optional(),
    renameTo: z.string({ invalid_type_error: "expected the name to rename the domain to once sent (a string)" }).optional(),
  }).passthrough(),
  restore: z.object({
    ...base, path: savePath, paused: z.boolean().optional(), stream: z.boolean().optional(), received: z.boolean().optional(),
    name: z.string({ invalid_type_error: "expected the domain's name (a string)" }).optional(), spec: specSchema.optional(),
  }).passthrough(),
  shutdown: z.object({ ...withDomid, reason: z.enum(["poweroff", "reboot", "halt", "suspend"]) }).passthrough(),
  rename: z.object({ ...withDomid, name: z.string({ invalid_type_error: "expected the new name (a string)" }) }).passthrough(),
  "mem-set": z.object({ ...withDomid, targetKiB: int("a target in KiB (an integer)") }).passthrough(),
  "mem-max": z.object({ ...withDomid, maxKiB: int("a maximum in KiB (an integer)") }).passthrough(),
  "vcpu-set": z.object({ ...withDomid, vcpus: int("a vCPU count (an integer)") }).passthrough(),
  sysrq: z.object({ ...withDomid, key: z.string().length(1, "expected one sysrq key letter") }).passthrough(),
  "set-toolstack": z.object({ ...withDomid, toolstack: toolstackSchema }).passthrough(),
  "sched-credit": z.object({ ...withDomid, weight: int("a weight (1..65535)").optional(), cap: int("a cap in % of a pCPU").optional() }).passthrough(),
  "sched-params": z.object({ tsliceMs: int("a time slice in ms").optional() }).passthrough(),
  "vcpu-pin": z.object({ ...withDomid, cpus: z.array(int("a pCPU number"), { invalid_type_error: "expected a list of pCPU numbers or null" }).nullable() }).passthrough(),
  "block-attach": z.object({ ...withDomid, disk: diskSchema }).passthrough(),
  "block-detach": z.object({ ...withDomid, devid }).passthrough(),
  "network-attach": z.object({ ...withDomid, vif: vifSchema }).passthrough(),
  "network-detach": z.object({ ...withDomid, devid }).passthrough(),
  dmesg: z.object({ clear: z.boolean().optional() }).passthrough(),
  console: z.object({ ...withDomid, replay: z.boolean().optional() }).passthrough(),
};

export type ParsedRequest = { ok: true; request: Request } | { ok: false; id: number; message: string };

/** The id to answer an unusable request with (the client's own when it is one, else -1). */
function usableId(id: unknown): number | undefined {
  return typeof id === "number" && Number.isSafeInteger(id) ? id : undefined;
}

/** One protocol line → a checked request, or the id to answer and a message saying what is wrong. */
export function parseRequest(line: string): ParsedRequest {
  let msg: unknown;
  try { msg = JSON.parse(line); } catch (e) {
    return { ok: false, id: -1, message: `not JSON (${(e as Error).message}); a request is one line {"id": N, "op": "…", …}` };
  }
  return checkRequest(msg);
}

/** A decoded JSON value → a checked request (see parseRequest). */
export function checkRequest(msg: unknown): ParsedRequest {
  if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
    return { ok: false, id: -1, message: `a request is a JSON object {"id": N, "op": "…", …}, got ${kind(msg)}` };
  }
  const m = msg as Record<string, unknown>;
  const id = usableId(m.id);
  if (id === undefined) {
    const got = typeof m.id === "number" ? String(m.id) : kind(m.id);
    return { ok: false, id: -1, message: `id: expected an integer between -2^53 and 2^53 (it comes back in the answer), got ${got}` };
  }
  if (typeof m.op !== "string") return { ok: false, id, message: `op: expected the operation's name (a string), got ${kind(m.op)}` };
  const schema = ops[m.op];
  if (schema === undefined) return { ok: true, request: m as unknown as Request }; // the hypervisor answers ENOSYS
  const r = schema.safeParse(m);
  if (r.success) return { ok: true, request: m as unknown as Request };
  return { ok: false, id, message: `${m.op}: ${r.error.issues.map((i) => describeIssue(i, m)).join("; ")}` };
}

function describeIssue(i: z.ZodIssue, root: unknown): string {
  const where = i.path.map((p, k) => typeof p === "number" ? `[${p}]` : k === 0 ? p : `.${p}`).join("") || "request";
  let got: unknown = root;
  for (const p of i.path) got = got !== null && typeof got === "object" ? (got as Record<string | number, unknown>)[p] : undefined;
  if (i.code === "invalid_type") {
    if (i.received === "undefined") return `${where}: missing (${lower(i.message)})`;
    return `${where}: ${lower(i.message).replace(/, received .*$/, "")}, got ${kind(got)}`;
  }
  if (i.code === "invalid_enum_value") return `${where}: expected one of ${i.options.join(", ")}, got ${kind(got)}`;
  if (i.code === "custom") return i.message;
  return `${where}: ${i.message}, got ${kind(got)}`;
}

function lower(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function kind(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "number" && !Number.isFinite(v)) return `${v} (a number JSON cannot carry back)`;
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}

/** A domain spec checked by the schema: null when it is well formed, else what is wrong (for EINVAL). */
export function specProblem(spec: unknown): string | null {
  const r = specSchema.safeParse(spec);
  if (r.success) return null;
  return r.error.issues.map((i) => describeIssue({ ...i, path: ["spec", ...i.path] }, { spec })).join("; ");
}
