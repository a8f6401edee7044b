/** The XML-RPC codec: values both ways, XAPI's integer convention, escaping, and refusals with their reasons. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeMethodCall, encodeResponse, parseMethodCall, XmlRpcParseError } from "../../src/api/xmlrpc.js";
import { Int32, XapiDateTime } from "../../src/api/values.js";

test("methodCall: every value type parses; what encodeMethodCall writes parses back", () => {
  const xml = `<?xml version="1.0"?>
<methodCall>
  <methodName>VM.set_memory_dynamic_range</methodName>
  <params>
    <param><value>OpaqueRef:s</value></param>
    <param><value><string>a &amp; b &lt;c&gt;</string></value></param>
    <param><value><int>-5</int></value></param>
    <param><value><i4>7</i4></value></param>
    <param><value><i8>9007199254740991</i8></value></param>
    <param><value><double>60.1</double></value></param>
    <param><value><boolean>1</boolean></value></param>
    <param><value><dateTime.iso8601>20261207T04:12:55Z</dateTime.iso8601></value></param>
    <param><value><array><data><value>x</value><value><boolean>0</boolean></value></data></array></value></param>
    <param><value><struct><member><name>k</name><value><string></string></value></member><member><name>__proto__</name><value>p</value></member></struct></value></param>
    <param><value><nil/></value></param>
  </params>
</methodCall>`;
  const c = parseMethodCall(xml);
  assert.equal(c.method, "VM.set_memory_dynamic_range");
  assert.deepEqual(c.params.slice(0, 9), ["OpaqueRef:s", "a & b <c>", -5, 7, 9007199254740991, 60.1, true, "20261207T04:12:55Z", ["x", false]]);
  const st = c.params[9] as Record<string, unknown>;
  assert.equal(st.k, "");
  assert.equal(Object.getPrototypeOf(st), null, "a struct is a null-prototype object: __proto__ is just a key");
  assert.equal(st["__proto__"], "p");
  assert.equal(c.params[10], null);
  const back = parseMethodCall(encodeMethodCall("m", ["s<&>", [1, "2"], { a: true }]));
  assert.deepEqual(back.params, ["s<&>", ["1", "2"], Object.assign(Object.create(null) as object, { a: true })], "integers travel as strings (XAPI's int64)");
});

test("responses: integers as <string>, doubles, dates, control characters dropped", () => {
  const r = encodeResponse({ Status: "Success", Value: { n: 268435456, f: 0.5, d: new XapiDateTime(Date.UTC(2026, 11, 7, 4, 12, 55)), s: "a\u0001b", l: [] } });
  assert.match(r, /<name>n<\/name><value><string>268435456<\/string><\/value>/);
  assert.match(r, /<name>f<\/name><value><double>0\.5<\/double><\/value>/);
  assert.match(r, /<dateTime\.iso8601>20261207T04:12:55Z<\/dateTime\.iso8601>/);
  assert.match(r, /<name>s<\/name><value>ab<\/value>/);
  assert.match(r, /<name>l<\/name><value><array><data><\/data><\/array><\/value>/);
  assert.match(encodeResponse({ task: new Int32(3) }), /<name>task<\/name><value><int>3<\/int><\/value>/, "valid_ref_counts travel as <int>");
  assert.ok(r.startsWith('<?xml version="1.0"?><methodResponse>') && r.endsWith("</methodResponse>"), "no whitespace outside the elements (xen-api's parser)");
});

test("refusals say what is wrong", () => {
  const bad: [string, RegExp][] = [
    ["", /the document must be one <methodCall>|not well-formed/],
    ["<methodCall>", /not well-formed/],
    ["<methodResponse/>", /must be one <methodCall>/],
    ["<methodCall><params/></methodCall>", /no <methodName>/],
    ["<methodCall><methodName>m</methodName><params><param><value><int>1.5</int></value></param></params></methodCall>", /<int> '1.5' is not an integer/],
    ["<methodCall><methodName>m</methodName><params><param><value><boolean>yes</boolean></value></param></params></methodCall>", /<boolean> 'yes' is not 0 or 1/],
    ["<methodCall><methodName>m</methodName><params><param><value><double>x</double></value></param></params></methodCall>", /<double> 'x' is not a number/],
    ["<methodCall><methodName>m</methodName><params><param><value><blob>1</blob></value></param></params></methodCall>", /unknown value type <blob>/],
    ["<methodCall><methodName>m</methodName><params><param><value><struct><member><name>a</name></member></struct></value></param></params></methodCall>", /needs one <name> and one <value>/],
    ["<methodCall><methodName>m</methodName><params><param><value><array><value>1</value></array></value></param></params></methodCall>", /<array> must hold one <data>/],
    ['<!DOCTYPE m [<!ENTITY x "y">]><methodCall><methodName>&x;</methodName></methodCall>', /DOCTYPE and ENTITY declarations are not accepted/],
  ];
  for (const [xml, re] of bad) {
    assert.throws(() => parseMethodCall(xml), (e: unknown) => { assert.ok(e instanceof XmlRpcParseError, String(e)); assert.match(e.message, re, xml); return true; });
  }
});
