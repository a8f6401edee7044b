/**
 * The endpoint's HTTP handlers besides the RPC transports: XAPI's GET /rrd_updates (rrd.ts), the web console's
 * page and assets under /ui/ (web/ in the repository, xterm.js and uPlot from their npm packages: nothing from
 * the internet), and the console WebSocket /console/ws (console-ws.ts).
 *
 * Assets are served from a fixed table of files, never from a path the client names, so no request can read
 * another file.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import type { ApiBackend } from "./backend.js";
import { joinConsole } from "./console-ws.js";
import type { Dispatcher } from "./dispatch.js";
import type { XenModel } from "./model.js";
import { rrdJson, rrdXml } from "./rrd.js";
import { XapiError } from "./errors.js";

const require = createRequire(import.meta.url);
/** The repository root: dist/src/api/ → ../../.. ; src/api/ (tsx) → ../.. */
function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try { readFileSync(join(d, "web", "index.html")); return d; } catch { d = dirname(d); }
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
}

/** URL path → [file, content type]. */
function assetTable(): Map<string, [string, string]> {
  const web = join(repoRoot(), "web");
  const pkg = (name: string, file: string): string => join(dirname(require.resolve(`${name}/package.json`)), file);
  return new Map<string, [string, string]>([
    ["/ui/", [join(web, "index.html"), "text/html; charset=utf-8"]],
    ["/ui/app.js", [join(web, "app.js"), "text/javascript; charset=utf-8"]],
    ["/ui/style.css", [join(web, "style.css"), "text/css; charset=utf-8"]],
    ["/ui/vendor/xterm.mjs", [pkg("@xterm/xterm", "lib/xterm.mjs"), "text/javascript; charset=utf-8"]],
    ["/ui/vendor/xterm.css", [pkg("@xterm/xterm", "css/xterm.css"), "text/css; charset=utf-8"]],
    ["/ui/vendor/addon-fit.mjs", [pkg("@xterm/addon-fit", "lib/addon-fit.mjs"), "text/javascript; charset=utf-8"]],
    ["/ui/vendor/uplot.mjs", [pkg("uplot", "dist/uPlot.esm.js"), "text/javascript; charset=utf-8"]],
    ["/ui/vendor/uplot.css", [pkg("uplot", "dist/uPlot.min.css"), "text/css; charset=utf-8"]],
  ]);
}

export interface RouteDeps {
  model: XenModel;
  dispatcher: Dispatcher;
  backend: ApiBackend;
}

export function registerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { model, dispatcher } = deps;
  const assets = assetTable();
  const cache = new Map<string, Buffer>();
  for (const [path, [file, type]] of assets) {
    app.get(path, async (_req, reply) => {
      let body = cache.get(path);
      if (!body) {
        try { body = readFileSync(file); } catch (e) {
          return reply.code(500).type("text/plain").send(`web console asset ${file} is missing (${(e as Error).message}); run npm ci\n`);
        }
        cache.set(path, body);
      }
      return reply.header("content-type", type).header("cache-control", "no-cache").header("x-content-type-options", "nosniff")
        .header("content-security-policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'").send(body);
    });
  }
  app.get("/ui", async (_req, reply) => reply.redirect("/ui/"));

  // XAPI's /rrd_updates: ?session_id= (any role), start (Unix s; < 0: relative to now), cf (AVERAGE, MIN, MAX), interval
  // (s), host=true (the host's series too), json=true (else XML), vm_uuid (one VM only).
  app.get("/rrd_updates", async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    // A task the client made (task.create, passed as task_id, as Xen Orchestra's connector does) ends with the answer.
    const bad = (why: string): unknown => {
      dispatcher.tasks.finish(q.task_id, new XapiError("INTERNAL_ERROR", `rrd_updates: ${why}`));
      return reply.code(400).type("text/plain").send(`rrd_updates: ${why}\n`);
    };
    if (typeof q.session_id !== "string" || dispatcher.whoIs(q.session_id) === null) {
      return reply.code(401).type("text/plain").send("rrd_updates: ?session_id= of a live session is needed (session.login_with_password)\n");
    }
    const int = (v: unknown, dflt: number | undefined): number | undefined => {
      if (v === undefined) return dflt;
      return typeof v === "string" && /^-?\d{1,15}$/.test(v) ? Number(v) : NaN;
    };
    const start = int(q.start, undefined), interval = int(q.interval, 5);
    if (start === undefined) return bad("start= is required (Unix seconds, or negative: seconds before now)");
    if (Number.isNaN(start)) return bad(`start=${String(q.start)} is not an integer`);
    if (interval === undefined || !(interval >= 0)) return bad(`interval=${String(q.interval)} is not a non-negative integer`);
    const cf = q.cf === undefined ? "AVERAGE" : q.cf;
    if (cf !== "AVERAGE" && cf !== "MIN" && cf !== "MAX") return bad(`cf=${String(q.cf)}: AVERAGE, MIN or MAX (the consolidation functions kept)`);
    const flag = (v: unknown): boolean => v === "true" || v === "1";
    const vmUuid = typeof q.vm_uuid === "string" ? q.vm_uuid : undefined;
    const x = model.rrd.export({ start, interval, host: flag(q.host), vmUuid, nowMs: Date.now(), cf });
    dispatcher.tasks.finish(q.task_id);
    if (flag(q.json)) return reply.header("content-type", "application/json").send(rrdJson(x));
    return reply.header("content-type", "text/xml").send(rrdXml(x));
  });

  // The console: a WebSocket taking a one-shot ticket (VM.xeno_console_ticket).
  app.get("/console/ws", { websocket: true }, (socket: WebSocket, req) => {
    const q = req.query as Record<string, unknown>;
    const t = dispatcher.tickets.take(q.ticket);
    const from = req.ip;
    if (!t) {
      dispatcher.auditEvent({ user: "-", role: "-" }, "console.open", [], "refused: unknown, used or expired ticket", from);
      socket.close(4001, "unknown, used or expired console ticket (ask VM.xeno_console_ticket for one)");
      return;
    }
    const who = { user: t.user, role: t.role };
    const vm = `${t.vmName} (${t.vmUuid}, domid ${t.domid})`;
    // The domid must still be that VM's (a ticket outlives its domain by up to 30 s; the domid could be another's).
    const now = model.domains.get(t.vmUuid);
    if (!now || now.domid !== t.domid) {
      dispatcher.auditEvent(who, "console.open", [vm], "refused: the VM's domain is gone", from);
      socket.close(4002, "the VM's domain is gone (ask for a new ticket)");
      return;
    }
    if (!deps.backend.openConsole) {
      socket.close(1011, "this xenod does not offer consoles to the API");
      return;
    }
    deps.backend.openConsole(t.domid, true).then((stream) => {
      if (socket.readyState !== socket.OPEN) { stream.destroy(); return; }
      dispatcher.auditEvent(who, "console.open", [vm], "ok", from);
      joinConsole(socket, stream, (bytes, why) => {
        dispatcher.auditEvent(who, "console.close", [vm, `${bytes.toGuest} bytes to the guest, ${bytes.fromGuest} from it`], why, from);
      });
    }, (e: unknown) => {
      dispatcher.auditEvent(who, "console.open", [vm], `failed: ${(e as Error).message}`, from);
      socket.close(1011, `cannot open the console: ${(e as Error).message}`.slice(0, 120));
    });
  });
}
