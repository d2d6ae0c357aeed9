/**
 * Values from a JSON schema (the subset the API's schemas use: types and unions, enum, const, bounds, pattern,
 * properties and required, items, oneOf/anyOf, local $refs), for generating requests that pass validation and get
 * as far as the handlers. Mostly valid: the hostile variants come from hostile.ts.
 */
import fc from "fast-check";

export type Schema = Record<string, any>;

/** `resolve` looks up a `$ref` (`#/components/schemas/TaskInput` or a shared schema's `$id`). */
export function fromSchema(
  schema: Schema | undefined,
  resolve: (ref: string) => Schema | undefined,
  depth = 0,
): fc.Arbitrary<unknown> {
  if (schema === undefined || depth > 6) return fc.jsonValue({ maxDepth: 2 });
  if (typeof schema.$ref === "string") return fromSchema(resolve(schema.$ref), resolve, depth + 1);
  if ("const" in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum);
  const choices = schema.oneOf ?? schema.anyOf;
  if (Array.isArray(choices) && choices.length > 0)
    return fc.oneof(
      ...choices.map((choice: Schema) =>
        fromSchema({ ...schema, oneOf: undefined, anyOf: undefined, ...choice }, resolve, depth + 1),
      ),
    );
  const types: string[] = Array.isArray(schema.type)
    ? schema.type
    : typeof schema.type === "string"
      ? [schema.type]
      : [];
  if (types.length === 0)
    return schema.properties !== undefined ? objectOf(schema, resolve, depth) : fc.jsonValue({ maxDepth: 2 });
  return fc.oneof(...types.map((type) => ofType(type, schema, resolve, depth)));
}

function ofType(
  type: string,
  schema: Schema,
  resolve: (ref: string) => Schema | undefined,
  depth: number,
): fc.Arbitrary<unknown> {
  switch (type) {
    case "null":
      return fc.constant(null);
    case "boolean":
      return fc.boolean();
    case "integer":
      return fc.integer({ min: bound(schema.minimum, -1e9), max: bound(schema.maximum, 1e9) });
    case "number":
      return fc.double({ min: bound(schema.minimum, -1e9), max: bound(schema.maximum, 1e9), noNaN: true });
    case "string":
      return stringOf(schema);
    case "array": {
      const minLength = schema.minItems ?? 0;
      const maxLength = Math.min(schema.maxItems ?? 4, minLength + 4);
      return fc.array(fromSchema(schema.items, resolve, depth + 1), { minLength, maxLength });
    }
    case "object":
      return objectOf(schema, resolve, depth);
    default:
      return fc.jsonValue({ maxDepth: 1 });
  }
}

function bound(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? Math.max(-1e12, Math.min(1e12, value)) : fallback;
}

function stringOf(schema: Schema): fc.Arbitrary<string> {
  const minLength = schema.minLength ?? 0;
  const maxLength = Math.min(schema.maxLength ?? 40, minLength + 40);
  if (schema.format === "date-time")
    return fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString());
  if (typeof schema.pattern === "string") {
    try {
      return fc
        .stringMatching(new RegExp(schema.pattern))
        .filter((s) => s.length >= minLength && s.length <= (schema.maxLength ?? Infinity));
    } catch {
      // a pattern fast-check cannot generate from: plain strings below
    }
  }
  return fc.string({ minLength, maxLength, unit: "grapheme" });
}

function objectOf(schema: Schema, resolve: (ref: string) => Schema | undefined, depth: number): fc.Arbitrary<unknown> {
  const properties: Record<string, Schema> = schema.properties ?? {};
  const required: string[] = schema.required ?? [];
  const record = fc.record(
    Object.fromEntries(Object.entries(properties).map(([name, s]) => [name, fromSchema(s, resolve, depth + 1)])),
    { requiredKeys: required.filter((name) => name in properties) },
  );
  if (schema.additionalProperties === false || Object.keys(properties).length > 0) return record;
  return fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 });
}
