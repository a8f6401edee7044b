/**
 * The daemons' log format (hv.log, xenod.log, a bridge's log): one line per event, every line with the same four
 * leading fields, none containing a space, then the message:
 *
 *   2026-12-07T01:08:22.123Z info  hv       d3 created 'demo' (64 MiB, 1 vCPU)
 *   2026-12-07T01:08:23.456Z warn  xenstore -  xenstore socket /run/xenstored/socket: client #4 (…) is not reading …
 *
 * TIME (ISO 8601, UTC, ms), LEVEL (debug, info, warn, error), COMPONENT (hv, xen, xenstore, control, xenod,
 * bridge, …), DOMAIN (dN, or "-" for the host side). A message of several lines gives several such lines. So
 * `awk '$4 == "d3"'` picks one domain's lines and `awk '$2 != "info"'` the incidents, whichever thread wrote them.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

/** A leading "dN: " in a message (the hypervisor's domain lines) names the domain. */
const DOMAIN_PREFIX = /^d(\d+): /;

/** The lines (each ending in "\n") for one message; `domid` wins over a "dN: " prefix in the message. */
export function formatLogLine(level: LogLevel, component: string, message: string, domid?: number, now = new Date()): string {
  let msg = message.replace(/\n+$/, "");
  let dom = domid;
  const m = DOMAIN_PREFIX.exec(msg);
  if (m !== null) {
    dom ??= Number(m[1]);
    if (dom === Number(m[1])) msg = msg.slice(m[0].length);
  }
  const head = `${now.toISOString()} ${level.padEnd(5)} ${component.replace(/\s+/g, "-").padEnd(8)} ${(dom === undefined ? "-" : `d${dom}`).padEnd(2)} `;
  return msg.split("\n").map((l) => head + l + "\n").join("");
}
