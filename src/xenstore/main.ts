/**
 * A standalone XenStore daemon on the unix socket, for development and for pointing xenstore-utils at:
 *   node dist/src/xenstore/main.js [--socket PATH]
 * (default: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket).
 */

import { XenStoreSocketServer, defaultSocketPath } from "./socket-server.js";
import { XenStore } from "./store.js";

async function main(argv: string[]): Promise<void> {
  let path = defaultSocketPath();
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--socket" && argv[i + 1] !== undefined) path = argv[++i]!;
    else {
      process.stderr.write("usage: xenstored [--socket PATH]\n");
      process.exit(2);
    }
  }
  const server = new XenStoreSocketServer(new XenStore(), { path });
  await server.listen();
  process.stderr.write(`xenstore: listening on ${path}\n`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`xenstore: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
