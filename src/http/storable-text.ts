/**
 * Text every store can keep: no NUL character and no lone UTF-16 surrogate, in any string (or object key) of a
 * request's body, query or path. PostgreSQL refuses both (a NUL in text or jsonb; a lone surrogate escape in
 * jsonb), and turns a lone surrogate in plain text into U+FFFD, so that what was written is not what is read back.
 * Refused up front, on every route and both stores, as a 400 naming the field, rather than a 500 from the store
 * after part of the work was done (found by fuzzing: test/fuzz).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ValidationError } from "../core/errors.ts";
import { storableText as storable } from "../core/task-input.ts";

const MESSAGE = "must not contain NUL characters or lone surrogates";

export function installStorableText(app: FastifyInstance): void {
  app.addHook("preValidation", async (request: FastifyRequest) => {
    const problems = [
      ...unstorable("body", request.body),
      ...unstorable("querystring", request.query),
      ...unstorable("params", request.params),
    ];
    if (problems.length > 0) {
      const message = problems.map((p) => `${p.in}${p.field === "" ? "" : `.${p.field}`} ${p.message}`).join("; ");
      throw new ValidationError(message, problems);
    }
  });
}

type Problem = { in: string; field: string; message: string };

/**
 * The fields of `value` whose text (or key) cannot be stored, as field paths (`payload.items.0.name`). Iterative,
 * with each entry linked to its parent rather than carrying its path: a body may be nested far deeper than the call
 * stack goes (the schemas refuse that after this check), and paths are only spelled out for what is refused.
 */
export function unstorable(part: string, value: unknown): Problem[] {
  const found: Problem[] = [];
  const refuse = (at: Entry | null, key?: string) => {
    const path: string[] = key === undefined ? [] : [key.toWellFormed().replaceAll("\u0000", "?")];
    for (let entry = at; entry !== null && entry.key !== null; entry = entry.parent) path.unshift(entry.key);
    found.push({ in: part, field: path.join("."), message: MESSAGE });
  };
  const pending: Entry[] = [{ value, key: null, parent: null }];
  while (pending.length > 0 && found.length < 10) {
    const entry = pending.pop()!;
    if (typeof entry.value === "string") {
      if (!storable(entry.value)) refuse(entry);
    } else if (Array.isArray(entry.value)) {
      for (let i = 0; i < entry.value.length; i++)
        pending.push({ value: entry.value[i], key: String(i), parent: entry });
    } else if (entry.value !== null && typeof entry.value === "object") {
      for (const [key, item] of Object.entries(entry.value)) {
        if (storable(key)) pending.push({ value: item, key, parent: entry });
        else refuse(entry, key);
      }
    }
  }
  return found;
}

type Entry = { value: unknown; key: string | null; parent: Entry | null };
