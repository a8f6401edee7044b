/** What an xl subcommand runs with: output streams, the daemon connection, the clock (tests pass fakes). */
import { version } from "node:os";
import type { XlClient } from "./client.js";

export interface XlEnv {
  out(s: string): void;
  err(s: string): void;
  /** Connects to xenod (started on demand); the caller closes the client. */
  connect(): Promise<XlClient>;
  /** Unix time, s. */
  now(): number;
  /** `version` of uname (xl info prints the host's). */
  osVersion(): string;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
}

export function processEnv(connect: () => Promise<XlClient>): XlEnv {
  return {
    out: (s) => { process.stdout.write(s); },
    err: (s) => { process.stderr.write(s); },
    connect,
    now: () => Date.now() / 1000,
    osVersion: () => version(),
    stdin: process.stdin,
    stdout: process.stdout,
  };
}

/** Runs `f` with a connected client and closes it afterwards. */
export async function withClient<T>(env: XlEnv, f: (c: XlClient) => Promise<T>): Promise<T> {
  const c = await env.connect();
  try {
    return await f(c);
  } finally {
    c.close();
  }
}
