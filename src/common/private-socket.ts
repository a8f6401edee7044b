/**
 * Sockets and run directories that only their owner (root, for the daemons) may use, whatever the umask:
 * whoever can connect to xenod's, the hypervisor's or the XenStore socket can create a domain whose disk is any
 * host file or write /local/domain/0, i.e. is root. C xenstored creates its socket 0600 for the same reason.
 */
import { chmodSync, mkdirSync, statSync } from "node:fs";
import type { Server } from "node:net";

/** A daemon's socket: read-write for its owner only. */
export const SOCKET_MODE = 0o600;
/** A daemon's run directory: its owner only (others cannot even reach the sockets inside). */
export const RUN_DIR_MODE = 0o700;

/**
 * Creates `dir` (and missing parents) and sets it to 0700 even if it existed with another mode. Refuses a
 * directory owned by another user (who could replace the sockets in it), with a message saying what to do.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: RUN_DIR_MODE });
  const uid = process.getuid?.();
  const st = statSync(dir);
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(`${dir} belongs to uid ${st.uid}, not to uid ${uid} that runs this daemon: a daemon's run directory ` +
      `must be its own (another user could replace its sockets); run as uid ${st.uid}, or set XENO_RUN_DIR to a directory of your own`);
  }
  chmodSync(dir, RUN_DIR_MODE);
}

/**
 * server.listen(path) with the socket file created 0600 whatever the process's umask: the umask is 0177 while
 * Node binds the socket (synchronously, inside listen()), so the file is 0600 from its creation (with 077 it was
 * 0700 until the chmod once listening, which test/toolstack/socket-modes caught in that window), and it is
 * chmod'ed once listening as well. At no moment may another user connect. Main thread only (process.umask
 * throws in worker threads).
 */
export function listenPrivate(server: Server, path: string, done: () => void): void {
  const old = process.umask(0o177);
  try {
    server.listen(path, () => {
      try { chmodSync(path, SOCKET_MODE); } catch { /* the umask already made it 0600 */ }
      done();
    });
  } finally {
    process.umask(old);
  }
}
