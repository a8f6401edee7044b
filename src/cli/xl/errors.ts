/**
 * Errors of the xl-style subcommands and the messages for the toolstack's error codes.
 *
 * Exit statuses (as xl): 1 for a failed operation, 2 for a usage error (getopt.ts UsageError).
 */

/** A failed operation: printed as `xeno CMD: message`, exit status 1 (or `status`). */
export class XlError extends Error {
  constructor(message: string, readonly status = 1, options?: ErrorOptions) {
    super(message, options);
    this.name = "XlError";
  }
}

/**
 * A feature the hypervisor or the protocol does not provide yet: says so, exit status 1. `what` names the
 * feature ("vuart consoles"); empty when the command itself is what is missing (the `xeno CMD:` prefix names it).
 */
export class NotImplementedError extends XlError {
  constructor(what: string, detail?: string) {
    super(`${what === "" ? "not implemented yet" : `${what} is not implemented yet`}${detail ? `: ${detail}` : ""}`);
    this.name = "NotImplementedError";
  }
}

/** The code of an error from the toolstack client (src/hv/protocol.ts ErrorCode, or the client's own). */
export function errorCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null | undefined)?.code;
  return typeof c === "string" ? c : undefined;
}

/**
 * The message for a failed request: the toolstack's message, with what it means and what to do.
 * `what`: the action ("pause domain 'web' (3)"); the result reads "cannot pause domain 'web' (3): …".
 */
export function describeFailure(e: unknown, what: string): XlError {
  const msg = e instanceof Error ? e.message : String(e);
  const hint = ((): string => {
    switch (errorCode(e)) {
      case "ENOENT_DOMAIN": return "the domain does not exist (any more); 'xeno list' shows the domains";
      case "EEXIST_NAME": return "a domain with that name exists already; choose another name";
      case "EINVAL": return "the request was refused as invalid";
      case "ENOMEM": return "not enough free memory in the hypervisor's pool ('xeno info' shows free_memory; " +
        "'xeno mem-set' can shrink a running domain)";
      case "ESTATE": return "not possible in the domain's current state ('xeno list' shows it)";
      case "EBUILD": return "the domain could not be built";
      case "EBUSY": return "the guest still uses it; unmount or stop using it in the guest, or add -f to remove it anyway";
      case "ENOSYS": return "the toolstack daemon does not know this operation (is it older than this xeno?)";
      case "EHVDOWN": return "the toolstack daemon has no connection to the hypervisor right now; retry in a moment";
      case "ECONN": return "the connection to the toolstack daemon (xenod) was lost";
      case "EPROTO": return "the toolstack daemon answered something that is not the protocol";
      case "ESTART": return "the toolstack daemon or the hypervisor could not be started";
      default: return "";
    }
  })();
  return new XlError(`cannot ${what}: ${msg}${hint && !msg.includes(hint) ? ` (${hint})` : ""}`, 1, { cause: e });
}
