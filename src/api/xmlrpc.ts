/**
 * XML-RPC (http://xmlrpc.com/spec.md) as XAPI speaks it: a methodCall is parsed into a method name and values;
 * answers are written as one struct `{Status: "Success", Value}` or `{Status: "Failure", ErrorDescription}`.
 * Parsing is fast-xml-parser's (its validator first; no DOCTYPE or entity declarations accepted: XML-RPC needs none, and refusing
 * them closes the entity-expansion attacks); writing is here.
 *
 * Values: <string> (and untyped <value>text</value>), <int>/<i4>/<i8>, <double>, <boolean>, <dateTime.iso8601>
 * (read as a string), <base64> (read as a string), <array>, <struct>, <nil/>. XAPI's int64 do not fit XML-RPC's
 * 32-bit <int>, so xapi writes every integer as a <string>; so does `encodeResponse` (clients convert).
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { Int32, XapiDateTime } from "./values.js";

export type XmlRpcValue = string | number | boolean | null | XapiDateTime | XmlRpcValue[] | { [k: string]: XmlRpcValue };

/** A body that is not a well-formed XML-RPC methodCall: `why` says what was wrong. */
export class XmlRpcParseError extends Error {
  constructor(readonly why: string) { super(why); this.name = "XmlRpcParseError"; }
}

type Node = { [tag: string]: Node[] } | { "#text": string };

const parser = new XMLParser({
  preserveOrder: true, ignoreAttributes: true, parseTagValue: false, trimValues: false, processEntities: true,
  ignoreDeclaration: true, ignorePiTags: true,
});

/** Nesting deeper than this is refused (a hostile body of 100,000 nested arrays would exhaust the stack). */
const MAX_DEPTH = 64;

const tagOf = (n: Node): string => Object.keys(n)[0] ?? "";
const isText = (n: Node): n is { "#text": string } => "#text" in n;
/** The element children of a node, whitespace between them skipped; other text is an error. */
function elements(children: Node[], where: string): { tag: string; kids: Node[] }[] {
  const out: { tag: string; kids: Node[] }[] = [];
  for (const c of children) {
    if (isText(c)) {
      if (String(c["#text"]).trim() !== "") throw new XmlRpcParseError(`unexpected text '${String(c["#text"]).slice(0, 40)}' in <${where}>`);
      continue;
    }
    const tag = tagOf(c);
    out.push({ tag, kids: (c as Record<string, Node[]>)[tag] ?? [] });
  }
  return out;
}
const textOf = (kids: Node[]): string => kids.map((k) => (isText(k) ? String(k["#text"]) : "")).join("");

function parseValue(kids: Node[], depth: number): XmlRpcValue {
  if (depth > MAX_DEPTH) throw new XmlRpcParseError(`values nested deeper than ${MAX_DEPTH}`);
  if (kids.every(isText)) return textOf(kids); // <value>text</value>: a string
  const els = elements(kids, "value");
  if (els.length > 1) throw new XmlRpcParseError(`a <value> holds ${els.length} elements`);
  const { tag, kids: inner } = els[0]!;
  const text = (): string => { if (!inner.every(isText)) throw new XmlRpcParseError(`<${tag}> holds elements`); return textOf(inner); };
  switch (tag) {
    case "string": case "dateTime.iso8601": case "base64": return text();
    case "int": case "i4": case "i8": {
      const t = text().trim();
      if (!/^[+-]?\d{1,19}$/.test(t)) throw new XmlRpcParseError(`<${tag}> '${t.slice(0, 40)}' is not an integer`);
      return Number(t);
    }
    case "double": {
      const t = text().trim(), v = Number(t);
      if (t === "" || !Number.isFinite(v)) throw new XmlRpcParseError(`<double> '${t.slice(0, 40)}' is not a number`);
      return v;
    }
    case "boolean": {
      const t = text().trim();
      if (t !== "0" && t !== "1") throw new XmlRpcParseError(`<boolean> '${t.slice(0, 40)}' is not 0 or 1`);
      return t === "1";
    }
    case "nil": return null;
    case "array": {
      const data = elements(inner, "array");
      if (data.length !== 1 || data[0]!.tag !== "data") throw new XmlRpcParseError("<array> must hold one <data>");
      return elements(data[0]!.kids, "data").map((v) => {
        if (v.tag !== "value") throw new XmlRpcParseError(`<data> holds <${v.tag}>, not <value>`);
        return parseValue(v.kids, depth + 1);
      });
    }
    case "struct": {
      const out: Record<string, XmlRpcValue> = Object.create(null) as Record<string, XmlRpcValue>;
      for (const m of elements(inner, "struct")) {
        if (m.tag !== "member") throw new XmlRpcParseError(`<struct> holds <${m.tag}>, not <member>`);
        const parts = elements(m.kids, "member");
        const name = parts.find((p) => p.tag === "name"), value = parts.find((p) => p.tag === "value");
        if (!name || !value || parts.length !== 2) throw new XmlRpcParseError("a <member> needs one <name> and one <value>");
        out[textOf(name.kids)] = parseValue(value.kids, depth + 1);
      }
      return out;
    }
    default: throw new XmlRpcParseError(`unknown value type <${tag}>`);
  }
}

/** Parses a methodCall; throws XmlRpcParseError saying what is wrong. */
export function parseMethodCall(xml: string): { method: string; params: XmlRpcValue[] } {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new XmlRpcParseError("DOCTYPE and ENTITY declarations are not accepted");
  // The parser is lenient (an unclosed tag is closed for you); the validator is not.
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new XmlRpcParseError(`not well-formed XML: ${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`);
  let doc: Node[];
  try {
    doc = parser.parse(xml) as Node[];
  } catch (e) {
    throw new XmlRpcParseError(`not well-formed XML: ${(e as Error).message.split("\n")[0]}`);
  }
  const top = elements(doc, "document");
  if (top.length !== 1 || top[0]!.tag !== "methodCall") throw new XmlRpcParseError("the document must be one <methodCall>");
  const parts = elements(top[0]!.kids, "methodCall");
  const nameEl = parts.find((p) => p.tag === "methodName");
  if (!nameEl) throw new XmlRpcParseError("<methodCall> has no <methodName>");
  const method = textOf(nameEl.kids).trim();
  const paramsEl = parts.find((p) => p.tag === "params");
  const params: XmlRpcValue[] = [];
  for (const p of paramsEl ? elements(paramsEl.kids, "params") : []) {
    if (p.tag !== "param") throw new XmlRpcParseError(`<params> holds <${p.tag}>, not <param>`);
    const v = elements(p.kids, "param");
    if (v.length !== 1 || v[0]!.tag !== "value") throw new XmlRpcParseError("a <param> must hold one <value>");
    params.push(parseValue(v[0]!.kids, 1));
  }
  return { method, params };
}

const escapeXml = (s: string): string => s.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"))
  // Characters XML 1.0 cannot carry at all are dropped (a guest-chosen name could hold them).
  // eslint-disable-next-line no-control-regex
  .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, "");

/** One value as XML-RPC; integers as <string> (XAPI's int64 convention), other numbers as <double>. */
export function encodeValue(v: unknown, out: string[] = []): string[] {
  if (v === null || v === undefined) out.push("<value><nil/></value>");
  else if (typeof v === "string") out.push("<value>", escapeXml(v), "</value>");
  else if (typeof v === "number") out.push(Number.isInteger(v) ? `<value><string>${v}</string></value>` : `<value><double>${Number.isFinite(v) ? v : 0}</double></value>`);
  else if (typeof v === "boolean") out.push(`<value><boolean>${v ? 1 : 0}</boolean></value>`);
  else if (v instanceof Int32) out.push(`<value><int>${v.n | 0}</int></value>`);
  else if (v instanceof XapiDateTime) out.push(`<value><dateTime.iso8601>${v.toJSON()}</dateTime.iso8601></value>`);
  else if (Array.isArray(v)) {
    out.push("<value><array><data>");
    for (const x of v) encodeValue(x, out);
    out.push("</data></array></value>");
  } else if (typeof v === "object") {
    out.push("<value><struct>");
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      out.push("<member><name>", escapeXml(k), "</name>");
      encodeValue(x, out);
      out.push("</member>");
    }
    out.push("</struct></value>");
  } else out.push("<value>", escapeXml(String(v)), "</value>");
  return out;
}

/**
 * A methodResponse carrying one value (XAPI's Success/Failure struct), with no whitespace outside the elements:
 * `xen-api`'s parser (@vates/xml, whitespace kept) takes a newline after the declaration for the document.
 */
export function encodeResponse(value: unknown): string {
  return ['<?xml version="1.0"?><methodResponse><params><param>', ...encodeValue(value), "</param></params></methodResponse>"].join("");
}

/** A methodCall (for tests and tools). */
export function encodeMethodCall(method: string, params: unknown[]): string {
  const out = ['<?xml version="1.0"?>\n<methodCall><methodName>', escapeXml(method), "</methodName><params>"];
  for (const p of params) { out.push("<param>"); encodeValue(p, out); out.push("</param>"); }
  out.push("</params></methodCall>\n");
  return out.join("");
}
