/**
 * What a careless or hostile client sends: values of the wrong type, strings with NUL bytes and lone surrogates,
 * huge and deeply nested values, prototype-pollution keys, ids that are not quite numbers, bodies that are not
 * JSON or not UTF-8, and the wrong content type.
 */
import fc from "fast-check";

/** A JSON value that no schema expects in its place. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1e308, -0, 2 ** 53 + 1, "", " ", "\u0000", "null", "[]", "{}", [], {}),
  fc.constantFrom(
    "a\u0000b",
    "\ud800",
    "\udfff x",
    "😀".repeat(50),
    "%00",
    "../../etc/passwd",
    "<script>",
    "' OR 1=1 --",
  ),
  fc.string({ maxLength: 30, unit: "binary" }),
  fc.double(),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((n) => Number(n)),
  fc.constant("x".repeat(70_000)),
  fc.nat({ max: 3000 }).map((depth) => nested(depth)),
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom({ __proto__: { polluted: true } }, JSON.parse('{"__proto__":{"polluted":true}}'), {
    constructor: { prototype: { polluted: true } },
  }),
);

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

/** A body from a valid one: one field replaced, removed or added, or the body replaced whole. */
export function mutateBody(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    {
      weight: 3,
      arbitrary: fc.tuple(valid, fc.nat(), hostileValue).map(([body, index, value]) => {
        if (body === null || typeof body !== "object" || Array.isArray(body)) return value;
        const keys = Object.keys(body);
        if (keys.length === 0) return { x: value };
        return { ...body, [keys[index % keys.length]!]: value };
      }),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(valid, fc.nat()).map(([body, index]) => {
        if (body === null || typeof body !== "object" || Array.isArray(body)) return body;
        const keys = Object.keys(body);
        const copy: Record<string, unknown> = { ...body };
        if (keys.length > 0) delete copy[keys[index % keys.length]!];
        return copy;
      }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(valid, fc.constantFrom("__proto__", "constructor", "prototype", "extra", ""), hostileValue)
        .map(([body, key, value]) =>
          body === null || typeof body !== "object" || Array.isArray(body)
            ? body
            : JSON.parse(
                JSON.stringify({ ...body, [key === "__proto__" ? "__proto_x" : key]: value }).replace(
                  '"__proto_x"',
                  '"__proto__"',
                ),
              ),
        ),
    },
    { weight: 2, arbitrary: hostileValue },
  );
}

/** Raw bodies that are not the JSON of anything, or not UTF-8, or near and over the body limit. */
export const hostileRawBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.constantFrom(
    "",
    "{",
    "}",
    "[",
    "nul",
    "{'a':1}",
    '{"a":1,}',
    "\u0000",
    '{"a":"\u0000"}',
    '{"a":"\\u0000"}',
    "\ufeff{}",
    "1e999",
    "NaN",
  ),
  fc.constantFrom(
    Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
    Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
    Buffer.from('{"type":"echo","data":"\xed\xa0\x80"}', "latin1"),
  ),
  fc.string({ maxLength: 50, unit: "binary" }),
  fc
    .constantFrom(1024 * 1024 - 20, 1024 * 1024 + 1, 2 * 1024 * 1024)
    .map((size) => `{"type":"echo","data":"${"x".repeat(size)}"}`),
  // Deeper than the call stack goes: anything that walks a body by recursion overflows on these.
  fc.oneof(fc.nat({ max: 20_000 }), fc.constant(200_000)).map((depth) => `${"[".repeat(depth)}${"]".repeat(depth)}`),
  fc
    .oneof(fc.nat({ max: 20_000 }), fc.constant(200_000))
    .map((depth) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`),
);

/** A content type for a body: JSON in its spellings, or anything else. */
export const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant("application/json") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      undefined,
      "application/json; charset=utf-8",
      "application/json; charset=latin1",
      "APPLICATION/JSON",
      "application/json;",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/octet-stream",
      "application/vnd.api+json",
      "",
      ";;;",
      "application/json\u0000",
    ),
  },
);

/** A path parameter: a likely one (an existing id or name) or one that is not quite right. */
export function pathParam(likely: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...likely) },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        "0",
        "-1",
        "1e99",
        "0x10",
        "1.5",
        " 1",
        "1 ",
        "01",
        "9007199254740993",
        "99999999999999999999999",
        "NaN",
        "Infinity",
        "%00",
        "%",
        "%zz",
        "%2F",
        "..",
        ".",
        "a%20b",
        "%F0%9F%98%80",
        "%ED%A0%80",
        "x".repeat(300),
        "null",
        "__proto__",
        "constructor",
        "%C0%AF",
      ),
    },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 20 }).map(encodeURIComponent) },
  );
}

/** Query values: what the route declares, mangled, repeated, or unknown keys. */
export const hostileQueryValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "",
    "-1",
    "0",
    "1e99",
    "0x10",
    "true",
    "false",
    "null",
    "%00",
    "a,b,,c",
    ",",
    "9007199254740993",
    "x".repeat(3000),
  ),
  fc.string({ maxLength: 20 }),
  fc.integer().map(String),
);

/** Extra request headers a client might send. */
export const hostileHeaders: fc.Arbitrary<Record<string, string>> = fc.record(
  {
    "idempotency-key": fc.oneof(fc.string({ maxLength: 10 }), fc.constant("k".repeat(1000))),
    authorization: fc.constantFrom("", "Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer x y", "bearer secret"),
    accept: fc.constantFrom("*/*", "text/html", "application/json", "image/png", ""),
    "last-event-id": fc.constantFrom("", "x", "1:2", "::"),
    "x-forwarded-for": fc.constantFrom("10.0.0.1", "::1", "garbage"),
    "accept-encoding": fc.constantFrom("gzip", "br", "identity", "*;q=0"),
  },
  { requiredKeys: [] },
);
