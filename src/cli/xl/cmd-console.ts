/**
 * xl console [-t pv|serial] [-n NUM] [-e ESC] DOMAIN: the domain's console on this terminal.
 *
 * From a terminal: raw mode, every key goes to the guest (Ctrl-C included) except the escape character (default
 * Ctrl-], -e "^X" or one character), which detaches; the domain keeps running. From a pipe (scripts): the bytes
 * go to the guest as they are, except that an escape character also detaches (as xenconsole reads it from any
 * stdin); end of input does not detach, so the guest's answer to the last command still arrives. Either way the
 * command ends when the domain is destroyed (the stream closes), on detach, or on SIGTERM/SIGHUP (and SIGINT
 * from a pipe), with status 0; a domain that does not exist or has no such console is an error (status 1).
 *
 * Recent output is replayed first (as xenconsoled's buffer delivers what the guest wrote while nobody read).
 */
import type { Duplex } from "node:stream";
import { fetchTable } from "./client.js";
import { resolveDomain, type Dom } from "./domains.js";
import type { XlEnv } from "./env.js";
import { describeFailure, XlError } from "./errors.js";
import { UsageError, value, type ParsedOpts } from "./getopt.js";
import { parseEscape } from "./parse.js";

/** Ctrl-]: xl console's default escape character. */
export const DEFAULT_ESCAPE = 0x1d;

/** Which console `-t` asks for, checked against what the domain has (one console each in Xeno). */
export function checkConsoleType(d: Dom, type: string | undefined, num: string | undefined): void {
  if (num !== undefined && num !== "0") {
    throw new XlError(`${d.name} has one console (number 0); -n ${num} does not exist`);
  }
  if (type === undefined) return;
  if (type !== "pv" && type !== "serial" && type !== "vuart") throw new UsageError(`console type '${type}': one of pv, serial, vuart`);
  const xen = d.spec?.xen !== false;
  if (type === "vuart") throw new XlError("vuart consoles are not implemented yet (the domain's console is " + (xen ? "the PV console, -t pv)" : "the emulated serial port, -t serial)"));
  if (xen && type === "serial") {
    throw new XlError(`domain '${d.name}' is a Xen guest: its console is the PV console (hvc0), -t pv; it has no emulated serial console`);
  }
  if (!xen && type === "pv") {
    throw new XlError(`domain '${d.name}' boots without Xen (xen_platform=0): its console is the emulated serial port (ttyAMA0), -t serial; it has no PV console`);
  }
}

/** Splits input at the escape character: the bytes before it, and whether it was there. */
export function splitAtEscape(chunk: Uint8Array, escape: number): { bytes: Uint8Array; detach: boolean } {
  const i = chunk.indexOf(escape);
  return i < 0 ? { bytes: chunk, detach: false } : { bytes: chunk.subarray(0, i), detach: true };
}

export async function consoleCmd(p: ParsedOpts, env: XlEnv): Promise<number> {
  const esc = value(p, "e");
  const escape = esc === undefined ? DEFAULT_ESCAPE : parseEscape(esc);
  if (p.args.length > 1) throw new UsageError("one domain at a time");
  const c = await env.connect();
  let stream: Duplex;
  let d: Dom;
  try {
    const { table } = await fetchTable(c, env.now());
    d = resolveDomain(table, p.args[0]!);
    if (d.domid === 0) throw new XlError("Domain-0 has no console in Xeno: it is the toolstack itself (xenod and the hypervisor process)");
    checkConsoleType(d, value(p, "t"), value(p, "n"));
    try {
      stream = await c.openConsole(d.domid, { replay: true });
    } catch (e) {
      throw describeFailure(e, `attach to the console of domain '${d.name}' (${d.domid})`);
    }
  } finally {
    c.close(); // the console has a connection of its own
  }
  return attach(stream, env, escape);
}

/** Runs the console until the stream closes, the user detaches, or a signal; restores the terminal. */
export function attach(stream: Duplex, env: XlEnv, escape: number): Promise<number> {
  const stdin = env.stdin;
  const tty = stdin.isTTY === true;
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      stdin.off("data", onInput);
      if (tty) { stdin.setRawMode(false); env.err("\n"); } // the guest's line may be unfinished
      stdin.pause();
      for (const s of SIGNALS) process.off(s, onSignal);
      stream.off("data", onOutput);
      stream.destroy();
      resolve(0);
    };
    const onInput = (chunk: Buffer): void => {
      const { bytes, detach } = splitAtEscape(chunk, escape);
      if (bytes.length > 0) stream.write(bytes);
      if (detach) {
        // Let what came before the escape reach the guest first.
        stream.end(() => finish());
        setTimeout(finish, 200).unref();
      }
    };
    const onOutput = (b: Buffer): void => { env.stdout.write(b); };
    const onSignal = (): void => finish();
    // From a terminal Ctrl-C is a key for the guest (raw mode), so SIGINT only comes from elsewhere.
    const SIGNALS: NodeJS.Signals[] = ["SIGTERM", "SIGHUP", "SIGINT"];
    for (const s of SIGNALS) process.on(s, onSignal);
    stream.on("data", onOutput);
    stream.on("close", finish);
    stream.on("end", finish);
    stream.on("error", () => finish());
    if (tty) stdin.setRawMode(true);
    stdin.on("data", onInput);
    stdin.resume();
    // End of a piped stdin: stay attached (the output of what was sent is still to come).
  });
}
