/** Shared by the API tests: calls over JSON-RPC and XML-RPC with fetch, and a users file made for a test. */
import { encodeMethodCall } from "../../src/api/xmlrpc.js";
import { addUser, USERS_FILE } from "../../src/api/users.js";
import type { Role } from "../../src/api/roles.js";
import { join } from "node:path";

export async function jsonRpc(url: string, method: string, params: unknown[]): Promise<{ status: number; body: { result?: unknown; error?: { code: number; message: string; data: string[] } }; type: string | null }> {
  const r = await fetch(`${url}/jsonrpc`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  return { status: r.status, body: await r.json() as never, type: r.headers.get("content-type") };
}

/** A JSON-RPC call that must succeed: its result. */
export async function ok(url: string, method: string, params: unknown[]): Promise<unknown> {
  const r = await jsonRpc(url, method, params);
  if (r.body.error) throw new Error(`${method}: ${r.body.error.message}(${r.body.error.data.join(", ")})`);
  return r.body.result;
}

/** A JSON-RPC call that must fail: [CODE, params…]. */
export async function fails(url: string, method: string, params: unknown[]): Promise<string[]> {
  const r = await jsonRpc(url, method, params);
  if (!r.body.error) throw new Error(`${method} succeeded: ${JSON.stringify(r.body.result).slice(0, 200)}`);
  return [r.body.error.message, ...r.body.error.data];
}

export async function xmlRpc(url: string, method: string, params: unknown[], path = "/"): Promise<{ status: number; text: string; type: string | null }> {
  const r = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "text/xml" }, body: encodeMethodCall(method, params) });
  return { status: r.status, text: await r.text(), type: r.headers.get("content-type") };
}

export async function makeUsers(apiDir: string, users: [string, Role, string][]): Promise<void> {
  for (const [name, role, pw] of users) await addUser(join(apiDir, USERS_FILE), name, role, pw);
}
