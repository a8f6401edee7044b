/**
 * XenStore path rules (docs/xenstore.txt, "Paths are /-separated"; xenstored's is_valid_nodename):
 * absolute paths start with '/', use only ASCII alphanumerics and `-/_@`, have no doubled or trailing '/'
 * (except the root "/"), and are at most XENSTORE_ABS_PATH_MAX bytes; below a domain's home
 * (/local/domain/<domid>/) an unprivileged domain may use at most XENSTORE_REL_PATH_MAX bytes. A path not
 * starting with '/' is relative to the caller's home. Paths starting with '@' name special watch events
 * (@introduceDomain, @releaseDomain) and are accepted only where the caller allows them.
 */

import { XS_ERR } from "./errors.js";
import { XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX } from "./wire.js";

export const INTRODUCE_DOMAIN = "@introduceDomain";
export const RELEASE_DOMAIN = "@releaseDomain";

const SLASH = 0x2f;
const AT = 0x40;

/** The home path of a domain: /local/domain/<domid>. */
export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/** True for ASCII alphanumerics and - / _ @ (docs/xenstore.txt). */
function validChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || // 0-9
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    c === 0x2d || // -
    c === SLASH ||
    c === 0x5f || // _
    c === AT
  );
}

/** Characters valid, no "//", no trailing '/' unless the whole path is "/". No allocation. */
function wellFormed(p: string): boolean {
  const n = p.length;
  if (n === 0) return false;
  let prevSlash = false;
  for (let i = 0; i < n; i++) {
    const c = p.charCodeAt(i);
    if (!validChar(c)) return false;
    if (c === SLASH) {
      if (prevSlash) return false;
      prevSlash = true;
    } else prevSlash = false;
  }
  return !(prevSlash && n > 1);
}

/** Length of the "/local/domain/<digits>/" prefix of p, or 0 (the base of XENSTORE_REL_PATH_MAX). */
function homePrefixLength(p: string): number {
  const pre = "/local/domain/";
  if (!p.startsWith(pre)) return 0;
  let i = pre.length;
  const start = i;
  while (i < p.length && i - start <= 5) {
    const c = p.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    i++;
  }
  if (i === start || i >= p.length || p.charCodeAt(i) !== SLASH) return 0;
  return i + 1;
}

/**
 * Canonicalise a client-supplied path: relative → absolute under the caller's home; validated; EINVAL on any
 * violation. Special '@' paths are returned as they are when allowSpecial, else EINVAL.
 */
export function resolvePath(raw: string, domid: number, privileged: boolean, allowSpecial: boolean): string {
  if (raw.length === 0) throw XS_ERR.EINVAL;
  const c0 = raw.charCodeAt(0);
  if (c0 === AT) {
    if (!allowSpecial || raw.length > XENSTORE_ABS_PATH_MAX || !wellFormed(raw)) throw XS_ERR.EINVAL;
    return raw;
  }
  const abs = c0 === SLASH ? raw : `${domainPath(domid)}/${raw}`;
  if (abs.length > XENSTORE_ABS_PATH_MAX || !wellFormed(abs)) throw XS_ERR.EINVAL;
  if (!privileged && abs.length - homePrefixLength(abs) > XENSTORE_REL_PATH_MAX) throw XS_ERR.EINVAL;
  return abs;
}

/** docs/xenstore.txt: child is a child of parent if identical, if parent is "/", or if parent + "/" prefixes it. */
export function isChildOf(child: string, parent: string): boolean {
  if (parent === "/") return child.charCodeAt(0) === SLASH;
  return child === parent || (child.startsWith(parent) && child.charCodeAt(parent.length) === SLASH);
}

/** The parent of an absolute path other than "/". */
export function parentPath(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.substring(0, i);
}

/** Number of components: "/" → 0, "/a/b" → 2. */
export function pathDepth(p: string): number {
  if (p === "/") return 0;
  let n = 0;
  for (let i = 0; i < p.length; i++) if (p.charCodeAt(i) === SLASH) n++;
  return n;
}
