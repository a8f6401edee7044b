/** Errors of the virtual switch, its daemon, the passt uplink and the bridge client, each with a stable `code`. */

export type NetErrorCode =
  | "NET_BAD_NAME" //          a bridge name that is not 1-15 characters of [A-Za-z0-9_.-] (or is "." / "..")
  | "NET_BAD_OPTION" //        a malformed daemon option (forward spec, MAC, address, number)
  | "NET_BAD_LENGTH" //        a stream length prefix outside [MIN_FRAME, MAX_FRAME]: the stream cannot be resynced
  | "NET_PORT_LIMIT" //        the switch already has its maximum number of ports
  | "NET_SOCKET_PATH" //       the socket's directory cannot be made, or the path exists and is not a socket
  | "NET_BRIDGE_IN_USE" //     another daemon is listening on this bridge's socket
  | "NET_PASST_NOT_FOUND" //   the passt binary is not installed (apt-get install passt)
  | "NET_PASST_FAILED" //      passt exited or did not answer its readiness probe
  | "NET_CONNECT" //           a client could not connect to the bridge socket
  | "NET_DAEMON_START" //      ensureBridge spawned a daemon that did not come up
  | "NET_START_ABORTED"; //    a daemon's start was aborted (BridgeDaemonOptions.signal) before it claimed the socket

export class NetError extends Error {
  constructor(readonly code: NetErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NetError";
  }
}

/** bridge-main's exit status when another daemon already serves the bridge (ensureBridge then just connects). */
export const EXIT_BRIDGE_IN_USE = 3;
