/**
 * vif=[...] spec strings (xl-network-configuration(5); Xen's tools/xl/xl_parse.c parse_nic_config and
 * tools/libs/util/libxlu_vif.c for `rate=`).
 *
 * A spec is comma-separated `key=value` pairs and flags; all optional; '' is a valid spec (all defaults).
 * Defaults follow xl: bridge xenbr0, script vif-bridge, and a MAC in Xen's OUI 00:16:3e with three random bytes.
 * Keys xl knows but Xeno does not use (COLO, accel, gatewaydev…) are kept in `extra` and reported by the caller.
 */
import { randomBytes } from "node:crypto";
import { ConfigError } from "./errors.js";
import type { SpecOrigin } from "./disk.js";

export interface VifRate {
  /** Bytes per second, after the b → B conversion (bits / 8). */
  bytesPerSecond: number;
  /** Credit replenishment interval (default 50 ms). */
  intervalUsecs: number;
  /** Credit per interval, as libxl computes it: bytesPerSecond * intervalUsecs / 1e6, rounded down. */
  bytesPerInterval: number;
}

export interface VifSpec {
  spec: string;
  devid: number;
  mac: string;
  macGenerated: boolean;
  bridge: string;
  script: string;
  type?: "vif" | "ioemu";
  model?: string;
  ip?: string;
  vifname?: string;
  backend?: string;
  gatewaydev?: string;
  rate?: VifRate;
  mtu?: number;
  vlan?: string;
  trusted: boolean;
  /** Recognised xl keys without meaning for Xeno (COLO settings, accel…), kept verbatim. */
  extra: Record<string, string>;
  /** Keys the caller should warn about: unknown ones and ignored ones. */
  warnings: string[];
}

/** Xen's OUI (xl-network-configuration(5) "mac"). */
export const XEN_OUI = "00:16:3e";
export const DEFAULT_BRIDGE = "xenbr0";
export const DEFAULT_VIF_SCRIPT = "vif-bridge";
/** libxlu_vif.c: default replenishment interval 50 ms. */
const DEFAULT_RATE_INTERVAL_USECS = 50_000;
const UINT32_MAX = 0xffffffff;

export function randomXenMac(rand: (n: number) => Uint8Array = (n) => randomBytes(n)): string {
  const b = rand(3);
  return `${XEN_OUI}:${[...b].map((x) => x.toString(16).padStart(2, "0")).join(":")}`;
}

export function parseVifSpec(spec: string, devid: number, origin?: SpecOrigin,
                             rand?: (n: number) => Uint8Array): VifSpec {
  const fail = (msg: string): ConfigError => new ConfigError("CONFIG_BAD_VIF", `${origin ? `${origin.key}: ` : ""}'${spec}': ${msg}`, {
    file: origin?.file ?? "<vif spec>", line: origin?.pos.line ?? 1, column: origin?.pos.column ?? 1,
    key: origin?.key, sourceLine: origin?.sourceLine,
  });
  const v: VifSpec = {
    spec, devid, mac: "", macGenerated: false, bridge: DEFAULT_BRIDGE, script: DEFAULT_VIF_SCRIPT,
    trusted: true, extra: {}, warnings: [],
  };
  let mac: string | undefined;
  for (const raw of spec.split(",")) {
    const tok = raw.trim();
    if (tok === "") continue;
    if (tok === "trusted") { v.trusted = true; continue; }
    if (tok === "untrusted") { v.trusted = false; continue; }
    const eq = tok.indexOf("=");
    if (eq < 0) { v.warnings.push(`unrecognised vif argument '${tok}', ignored`); continue; }
    const key = tok.slice(0, eq), val = tok.slice(eq + 1);
    switch (key) {
      case "mac": mac = parseMac(val, fail); break;
      case "bridge": v.bridge = val; break;
      case "script": v.script = val; break;
      case "ip": v.ip = val; break;
      case "vifname": v.vifname = val; break;
      case "backend": v.backend = val; break;
      case "model": v.model = val; break;
      case "vlan": v.vlan = val; break;
      case "type":
        if (val !== "vif" && val !== "ioemu") throw fail(`invalid type '${val}' (vif or ioemu)`);
        v.type = val;
        break;
      case "gatewaydev": v.gatewaydev = val; break;
      case "netdev":
        v.gatewaydev = val;
        v.warnings.push("the netdev parameter is deprecated, use gatewaydev instead");
        break;
      case "rate": v.rate = parseVifRate(val, fail); break;
      case "mtu": {
        const n = parseUlong(val);
        if (n === undefined || n < 68 || n > 65535) throw fail(`invalid mtu '${val}' (68..65535)`);
        v.mtu = n;
        break;
      }
      case "devid": {
        const n = parseUlong(val);
        if (n === undefined || n > 0xffff) throw fail(`invalid devid '${val}'`);
        v.devid = n;
        break;
      }
      case "accel":
        v.warnings.push("the accel parameter for vifs is not supported, ignored");
        break;
      default:
        if (/^colo_/.test(key) || key === "forwarddev") {
          v.extra[key] = val;
          v.warnings.push(`vif parameter '${key}' (COLO) is not implemented yet, ignored`);
        } else {
          v.warnings.push(`unknown vif parameter '${key}', ignored`);
        }
    }
  }
  if (mac === undefined) {
    v.mac = randomXenMac(rand);
    v.macGenerated = true;
  } else {
    v.mac = mac;
  }
  return v;
}

function parseUlong(s: string): number | undefined {
  if (!/^(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.test(s)) return undefined;
  const n = /^0[xX]/.test(s) ? parseInt(s.slice(2), 16) : /^0./.test(s) ? parseInt(s, 8) : Number(s);
  return n <= UINT32_MAX ? n : undefined;
}

/** Six groups of 1–2 hex digits separated by ':' (xl also accepts other separators by accident; we do not). */
function parseMac(s: string, fail: (m: string) => ConfigError): string {
  const parts = s.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw fail(`invalid mac '${s}' (six hex bytes separated by ':', e.g. 00:16:3e:12:34:56)`);
  }
  const bytes = parts.map((p) => parseInt(p, 16));
  if (bytes[0] & 1) throw fail(`invalid mac '${s}': a multicast address (low bit of the first byte set)`);
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * `RATE[@INTERVAL]`: RATE matches ^[0-9]+[GMK]?[Bb]/s$ (decimal multipliers; lower-case b means bits),
 * INTERVAL matches ^[0-9]+[mu]?s?$ (no suffix means seconds). As libxlu_vif.c.
 */
export function parseVifRate(s: string, fail: (m: string) => ConfigError = (m) =>
  new ConfigError("CONFIG_BAD_VIF", m, { file: "<vif spec>", line: 1, column: 1 })): VifRate {
  const at = s.indexOf("@");
  const rate = at < 0 ? s : s.slice(0, at);
  const interval = at < 0 ? undefined : s.slice(at + 1);
  if (rate === "") throw fail(`no rate specified in '${s}'`);
  const rm = /^([0-9]+)([GMK]?)([Bb])\/s$/.exec(rate);
  if (!rm) throw fail(`invalid rate '${rate}' (e.g. 10Mb/s, 250KB/s, 1MB/s@20ms)`);
  let bps = BigInt(rm[1]);
  if (bps === 0n || bps > BigInt(UINT32_MAX)) throw fail(`rate overflow in '${rate}'`);
  bps *= { G: 1_000_000_000n, M: 1_000_000n, K: 1_000n, "": 1n }[rm[2] as "G" | "M" | "K" | ""];
  if (rm[3] === "b") bps /= 8n;
  let usecs = BigInt(DEFAULT_RATE_INTERVAL_USECS);
  if (interval !== undefined) {
    const im = /^([0-9]+)([mu]?)(s?)$/.exec(interval);
    if (!im) throw fail(`invalid replenishment interval '${interval}' (e.g. 20ms, 500us, 1s)`);
    usecs = BigInt(im[1]);
    if (usecs === 0n || usecs > BigInt(UINT32_MAX)) throw fail(`replenishment interval overflow in '${interval}'`);
    if (im[2] === "") usecs *= 1_000_000n;
    else if (im[2] === "m") usecs *= 1_000n;
    if (usecs > BigInt(UINT32_MAX)) throw fail(`replenishment interval overflow in '${interval}'`);
  }
  const perInterval = (bps * usecs) / 1_000_000n;
  if (bps > BigInt(Number.MAX_SAFE_INTEGER) || perInterval > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw fail(`rate overflow in '${s}'`);
  }
  return { bytesPerSecond: Number(bps), intervalUsecs: Number(usecs), bytesPerInterval: Number(perInterval) };
}
