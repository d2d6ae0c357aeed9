/**
 * SQL lives in .sql files, one named statement per operation (Graphile Worker, River's sqlc files):
 *
 *   -- name: taskClaim
 *   -- Claims up to :limit queued tasks of :queue. Params: queue, types (JSON array), node, limit, now.
 *   UPDATE ...;
 *
 * This reads such a file into a map from name to statement text.
 */
import { readFileSync } from "node:fs";

export function readNamedStatements(url: URL): Map<string, string> {
  const statements = new Map<string, string>();
  let name: string | null = null;
  let lines: string[] = [];
  const flush = () => {
    if (name !== null) statements.set(name, lines.join("\n").trim());
  };
  for (const line of readFileSync(url, "utf8").split("\n")) {
    const header = /^--\s*name:\s*(\w+)\s*$/.exec(line);
    if (header) {
      flush();
      name = header[1] ?? null;
      lines = [];
    } else if (!line.startsWith("--")) {
      lines.push(line);
    }
  }
  flush();
  return statements;
}
