/**
 * The guest console over a WebSocket, for the web console's terminal (xterm.js): GET /console/ws?ticket=T
 * upgraded to a WebSocket whose binary messages are the console's bytes both ways (guest output to the
 * browser, keystrokes and pastes to the guest), after the recent output is replayed, as `xeno console` does.
 *
 * A ticket is what `VM.xeno_console_ticket(session, vm)` answers (vm-operator or above, as xapi's console
 * access): TICKET_BYTES random bytes, good for one WebSocket within TICKET_MS, for that VM's domain at the time
 * it was issued, and owned by the session's user. A browser cannot put a session in a WebSocket's headers, and
 * a session ref in a URL would be logged and long-lived; a one-shot ticket is neither. Opening and closing go
 * to the audit log (`console.open` / `console.close`, with the VM and the bytes each way).
 */
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";

export const TICKET_MS = 30_000;
const TICKET_BYTES = 24;
/** Tickets outstanding at most (a client asking for many without using them cannot grow memory). */
const MAX_TICKETS = 1000;
/** Bytes buffered towards a slow browser before the guest's output is paused (the console ring then fills, as with a slow `xeno console`). */
const HIGH_WATER = 1 << 20;

export interface Ticket { user: string; role: string; vmUuid: string; vmName: string; domid: number; expires: number; from: string }

export class ConsoleTickets {
  private readonly tickets = new Map<string, Ticket>();

  issue(t: Omit<Ticket, "expires">): string {
    const now = Date.now();
    for (const [k, v] of this.tickets) if (v.expires < now) this.tickets.delete(k);
    while (this.tickets.size >= MAX_TICKETS) this.tickets.delete(this.tickets.keys().next().value!);
    const id = randomBytes(TICKET_BYTES).toString("base64url");
    this.tickets.set(id, { ...t, expires: now + TICKET_MS });
    return id;
  }

  /** The ticket's grant, once: a second use, an unknown or an expired ticket gives null. */
  take(id: unknown): Ticket | null {
    if (typeof id !== "string" || id.length > 64) return null;
    const t = this.tickets.get(id);
    if (!t) return null;
    this.tickets.delete(id);
    return t.expires >= Date.now() ? t : null;
  }
}

/**
 * Joins a browser's WebSocket to a console stream. Ends when either side closes; `done` gets the bytes each
 * way (for the audit log).
 */
export function joinConsole(ws: WebSocket, stream: Duplex, done: (bytes: { toGuest: number; fromGuest: number }, why: string) => void): void {
  let toGuest = 0, fromGuest = 0, ended = false;
  const end = (why: string): void => {
    if (ended) return;
    ended = true;
    stream.destroy();
    if (ws.readyState === ws.OPEN) ws.close(1000, why.slice(0, 100));
    done({ toGuest, fromGuest }, why);
  };
  stream.on("data", (b: Buffer) => {
    fromGuest += b.length;
    ws.send(b, { binary: true });
    if (ws.bufferedAmount > HIGH_WATER) {
      stream.pause();
      const resume = (): void => { if (ws.bufferedAmount < HIGH_WATER / 2 || ws.readyState !== ws.OPEN) stream.resume(); else setTimeout(resume, 50); };
      setTimeout(resume, 50);
    }
  });
  // Binary and text frames alike (a text frame is UTF-8 keystrokes) go to the guest as bytes.
  ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
    const b = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    toGuest += b.length;
    stream.write(b);
  });
  stream.on("close", () => end("the console closed (domain gone?)"));
  stream.on("error", (e) => end(`console error: ${e.message}`));
  ws.on("close", () => end("the browser closed it"));
  ws.on("error", (e) => end(`WebSocket error: ${e.message}`));
}
