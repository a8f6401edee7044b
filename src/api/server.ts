/**
 * The XenAPI endpoint: fastify serving JSON-RPC at POST /jsonrpc and XML-RPC at POST / (and /xmlrpc, where
 * Xen Orchestra's `xen-api` client posts it), and Prometheus text at GET /metrics (metrics.ts), on each listen address: plain HTTP and HTTPS (certificate:
 * cert.ts). Bodies over BODY_LIMIT get 413; a body that is not JSON-RPC or XML-RPC gets 400 with the reason in
 * the transport's error form; everything else is answered as XAPI answers: HTTP 200 with Success/Failure.
 *
 * Started by xenod (src/toolstack/daemon.ts) with `--api-listen` (default DEFAULT_LISTEN); the addresses it
 * listens on are written to API_INFO in the run directory ({"urls": [...]}), so a port 0 can be found.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import fastifyWebsocket from "@fastify/websocket";
import { defaultCacheDir } from "../images/index.js";
import { registerRoutes } from "./http-routes.js";
import { AuditLog } from "./audit.js";
import type { ApiBackend } from "./backend.js";
import { ensureCertificate } from "./cert.js";
import { Dispatcher } from "./dispatch.js";
import { ApiMetrics } from "./metrics.js";
import { XapiError } from "./errors.js";
import { XenModel } from "./model.js";
import { LocalAuthenticator, type Authenticator } from "./users.js";
import { VmActions } from "./vm-actions.js";
import { encodeResponse, parseMethodCall, XmlRpcParseError } from "./xmlrpc.js";

export const DEFAULT_LISTEN = "http://127.0.0.1:8080,https://127.0.0.1:8443";
/** Where users, the audit log and the certificate live: $XENO_API_DIR, else this. */
export const DEFAULT_API_DIR = "/var/lib/xeno";
export const API_INFO = "api.json";
/** Save files of suspended VMs, in the API directory. */
export const SUSPEND_DIR = "suspend";
/** Largest request body (bytes); xapi's own limit for XML-RPC is larger, but no call here needs 1 MiB. */
export const BODY_LIMIT = 1 << 20;

export interface ListenAddress { scheme: "http" | "https"; host: string; port: number }

/** Parses `--api-listen`: "none", or comma-separated http://HOST:PORT / https://HOST:PORT. */
export function parseListen(spec: string): ListenAddress[] | string {
  if (spec.trim() === "none" || spec.trim() === "") return [];
  const out: ListenAddress[] = [];
  for (const part of spec.split(",")) {
    const m = /^(https?):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/.exec(part.trim());
    if (!m || Number(m[3]) > 65535) return `'${part}' is not http://HOST:PORT or https://HOST:PORT (or 'none')`;
    out.push({ scheme: m[1] as "http" | "https", host: m[2]!.replace(/^\[|\]$/g, ""), port: Number(m[3]) });
  }
  return out;
}

export interface ApiServerOptions {
  backend: ApiBackend;
  listen: ListenAddress[];
  /** Users, audit log, certificate (made 0700 if missing). */
  apiDir: string;
  /** Where API_INFO and the model's STATE_FILE (halted VMs, host and pool UUIDs) are kept. */
  runDir: string;
  log(line: string, level?: "info" | "warn" | "error"): void;
  /** Tried in order at login; default: the local users file. A directory (LDAP) authenticator goes here. */
  authenticators?: Authenticator[];
  /** Directories VM.create_from_xl_config may take kernels, ramdisks and disk images from (vm-create.ts); default
   * the image cache ($XENO_IMAGES or ~/.cache/xeno) and SR_DIR in the API directory. */
  createRoots?: string[];
}

/** Disk images for VMs created through the API, in the API directory. */
export const SR_DIR = "sr";

export class ApiServer {
  readonly urls: string[] = [];
  private readonly apps: FastifyInstance[] = [];
  /** Aborted by stop(): calls waiting in event.from answer at once, so closing does not wait for their timeouts. */
  private readonly closing = new AbortController();

  readonly metrics: ApiMetrics;

  private constructor(readonly model: XenModel, readonly dispatcher: Dispatcher, private readonly backend: ApiBackend) {
    this.metrics = new ApiMetrics(model, dispatcher);
  }

  /** Starts listening on every address it can; an address in use is logged and skipped (xenod still runs). */
  static async start(opts: ApiServerOptions): Promise<ApiServer> {
    if (!existsSync(opts.apiDir)) mkdirSync(opts.apiDir, { recursive: true, mode: 0o700 });
    // Halted VMs' configs belong with the hypervisor instance (the run directory), as the domains do; users,
    // audit and certificate with the host (the API directory).
    const model = new XenModel(opts.backend, opts.runDir, opts.log);
    const audit = new AuditLog(opts.apiDir);
    audit.secure();
    const dispatcher = new Dispatcher({
      model, vm: new VmActions(model, opts.backend, resolve(opts.apiDir, SUSPEND_DIR), opts.createRoots ?? [defaultCacheDir(), resolve(opts.apiDir, SR_DIR)]), audit, log: opts.log,
      authenticators: opts.authenticators ?? [LocalAuthenticator.inDir(opts.apiDir)],
    });
    const s = new ApiServer(model, dispatcher, opts.backend);
    model.start();
    for (const a of opts.listen) {
      const https = a.scheme === "https" ? await ensureCertificate(opts.apiDir, opts.log) : undefined;
      const app = await s.makeApp(https);
      try {
        await app.listen({ host: a.host, port: a.port });
        const addr = app.server.address();
        const port = typeof addr === "object" && addr ? addr.port : a.port;
        const host = a.host.includes(":") ? `[${a.host}]` : a.host;
        s.urls.push(`${a.scheme}://${host}:${port}`);
        s.apps.push(app);
      } catch (e) {
        opts.log(`API: cannot listen on ${a.scheme}://${a.host}:${a.port}: ${(e as Error).message} (use --api-listen to choose another address)`, "warn");
        await app.close();
      }
    }
    try { writeFileSync(join(opts.runDir, API_INFO), JSON.stringify({ urls: s.urls, apiDir: opts.apiDir }) + "\n", { mode: 0o600 }); } catch { /* informative */ }
    if (s.urls.length > 0) opts.log(`API: XenAPI (JSON-RPC at /jsonrpc, XML-RPC at /) on ${s.urls.join(", ")}; users, audit log and certificate in ${opts.apiDir}`);
    return s;
  }

  async stop(): Promise<void> {
    this.closing.abort();
    this.model.stop();
    await Promise.all(this.apps.map((a) => a.close()));
  }

  private async makeApp(https?: { key: string; cert: string }): Promise<FastifyInstance> {
    const app = (https ? Fastify({ https, logger: false, bodyLimit: BODY_LIMIT }) : Fastify({ logger: false, bodyLimit: BODY_LIMIT })) as FastifyInstance;
    // Bodies are parsed here (JSON or XML-RPC by route), whatever Content-Type says: clients differ.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));
    // Frames up to 64 KiB (a paste); the console's own flow control keeps the rest in check.
    await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });
    // A browser asking for / gets the web console; other clients a line saying what is served.
    app.get("/", async (req, reply) => (/text\/html/.test(req.headers.accept ?? "") ? reply.redirect("/ui/")
      : reply.type("text/plain").send("Xeno XenAPI: POST XML-RPC to / or /xmlrpc, JSON-RPC to /jsonrpc; the web console is at /ui/\n")));
    registerRoutes(app, { model: this.model, dispatcher: this.dispatcher, backend: this.backend });
    app.get("/metrics", async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const sid = typeof q.session_id === "string" ? q.session_id : undefined;
      if (!(await this.metrics.authorised(req.headers.authorization, sid))) {
        return reply.code(401).header("www-authenticate", 'Basic realm="xeno"').type("text/plain")
          .send("credentials of an API user are needed: HTTP Basic (xeno user add), or ?session_id= of a session\n");
      }
      const m = await this.metrics.scrape();
      return reply.header("content-type", m.type).send(Buffer.from(m.text));
    });
    app.post("/jsonrpc", (req, reply) => this.jsonRpc(req, reply));
    app.post("/", (req, reply) => this.xmlRpc(req, reply));
    app.post("/xmlrpc", (req, reply) => this.xmlRpc(req, reply));
    return app;
  }

  private abortOnClose(reply: FastifyReply): AbortSignal {
    const ac = new AbortController();
    reply.raw.once("close", () => ac.abort());
    return AbortSignal.any([ac.signal, this.closing.signal]);
  }

  private async jsonRpc(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    // A Buffer, so that fastify adds no "; charset=utf-8": xen-api compares the content-type exactly.
    const send = (status: number, v: unknown): FastifyReply => reply.code(status).header("content-type", "application/json").send(Buffer.from(JSON.stringify(v)));
    const bad = (why: string, id: unknown = null): FastifyReply => send(400, { jsonrpc: "2.0", id, error: { code: -32700, message: "JSONRPC_PARSE_FAILURE", data: [why] } });
    let msg: unknown;
    try { msg = JSON.parse(typeof req.body === "string" ? req.body : ""); } catch (e) { bad(`the body is not JSON: ${(e as Error).message}`); return; }
    if (msg === null || typeof msg !== "object" || Array.isArray(msg)) { bad("the body must be one JSON-RPC request object (batches are not served)"); return; }
    const { jsonrpc, id, method, params } = msg as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
    if (jsonrpc !== undefined && jsonrpc !== "2.0" && jsonrpc !== "1.0") { bad(`jsonrpc must be "2.0" (or absent for 1.0), not ${JSON.stringify(jsonrpc)}`); return; }
    if (id !== undefined && id !== null && typeof id !== "string" && typeof id !== "number") { bad("id must be a string, a number or null"); return; }
    const v2 = jsonrpc === "2.0";
    try {
      const result = await this.dispatcher.call(method, params ?? [], req.ip, this.abortOnClose(reply));
      send(200, v2 ? { jsonrpc: "2.0", id: id ?? null, result } : { id: id ?? null, result, error: null });
    } catch (e) {
      const x = e as XapiError;
      const error = { code: 1, message: x.code, data: x.params };
      send(200, v2 ? { jsonrpc: "2.0", id: id ?? null, error } : { id: id ?? null, result: null, error });
    }
  }

  private async xmlRpc(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    // A Buffer, so that fastify adds no "; charset=utf-8": xen-api compares the content-type exactly.
    const send = (status: number, v: unknown): FastifyReply => reply.code(status).header("content-type", "text/xml").send(Buffer.from(encodeResponse(v)));
    let call;
    try {
      call = parseMethodCall(typeof req.body === "string" ? req.body : "");
    } catch (e) {
      const why = e instanceof XmlRpcParseError ? e.why : (e as Error).message;
      send(400, { Status: "Failure", ErrorDescription: ["XMLRPC_UNMARSHAL_FAILURE", why] });
      return;
    }
    try {
      const value = await this.dispatcher.call(call.method, call.params, req.ip, this.abortOnClose(reply));
      send(200, { Status: "Success", Value: value });
    } catch (e) {
      send(200, { Status: "Failure", ErrorDescription: (e instanceof XapiError ? e : new XapiError("INTERNAL_ERROR", String(e))).description });
    }
  }
}
