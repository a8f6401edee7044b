/**
 * The HTTPS listener's certificate: TLS_KEY/TLS_CERT in the API directory, made self-signed (RSA 2048,
 * SHA-256, 10 years, CN and subjectAltName = this host's name, localhost and 127.0.0.1) on first start by the npm
 * package `selfsigned` (pure JavaScript), as xapi makes /etc/xensource/xapi-ssl.pem on first boot. Replace
 * both files (PEM) to serve another certificate.
 */
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";

export const TLS_KEY = "api-key.pem";
export const TLS_CERT = "api-cert.pem";

export async function ensureCertificate(dir: string, log: (line: string) => void): Promise<{ key: string; cert: string }> {
  const keyPath = join(dir, TLS_KEY), certPath = join(dir, TLS_CERT);
  if (existsSync(keyPath) && existsSync(certPath)) return { key: readFileSync(keyPath, "utf8"), cert: readFileSync(certPath, "utf8") };
  const name = hostname();
  const pems = await generate([{ name: "commonName", value: name }, { name: "organizationName", value: "Xeno" }], {
    keySize: 2048, algorithm: "sha256", notAfterDate: new Date(Date.now() + 10 * 365 * 86400_000),
    extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: name }, { type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] }],
  });
  writeFileSync(keyPath, pems.private, { mode: 0o600 });
  writeFileSync(certPath, pems.cert, { mode: 0o644 });
  log(`API: made a self-signed certificate for ${name} (${certPath}, SHA-256 fingerprint ${new X509Certificate(pems.cert).fingerprint256})`);
  return { key: pems.private, cert: pems.cert };
}
