/**
 * Tokens from files (CONVEYOR_TOKEN_FILE, CONVEYOR_READ_TOKEN_FILE, CONVEYOR_ADMIN_TOKEN_FILE, or the flags
 * --token-file, --read-token-file, --admin-token-file), the way orchestrators hand out secrets (Docker and Kubernetes
 * mount them as files): read once at start, surrounding whitespace trimmed. A file that is missing, unreadable or
 * empty stops the node with a ConfigError naming the variable and the path, never the content; so does a token
 * given both as a value and as a file, which would leave one of them silently unused.
 */
import { readFileSync } from "node:fs";
import type { NodeConfig } from "../core/config.ts";
import { ConfigError } from "../core/errors.ts";

type TokenKey = "token" | "readToken" | "adminToken";

/** The file variables and flags, with the value each stands beside. */
export const TOKEN_FILES: ReadonlyArray<{ variable: string; value: string; flag: string; key: TokenKey }> = [
  { variable: "CONVEYOR_TOKEN_FILE", value: "CONVEYOR_TOKEN", flag: "token", key: "token" },
  { variable: "CONVEYOR_READ_TOKEN_FILE", value: "CONVEYOR_READ_TOKEN", flag: "read-token", key: "readToken" },
  { variable: "CONVEYOR_ADMIN_TOKEN_FILE", value: "CONVEYOR_ADMIN_TOKEN", flag: "admin-token", key: "adminToken" },
];

export type ReadText = (path: string) => string;

const readText: ReadText = (path) => readFileSync(path, "utf8");

/** The tokens the environment's files name, by setting. */
export function tokenFilesFromEnv(
  env: Record<string, string | undefined>,
  read: ReadText = readText,
): Pick<NodeConfig, TokenKey> {
  const tokens: Pick<NodeConfig, TokenKey> = {};
  for (const { variable, value, key } of TOKEN_FILES) {
    const path = nonEmpty(env[variable]);
    if (path === undefined) continue;
    if (nonEmpty(env[value]) !== undefined) throw new ConfigError(`${value} and ${variable} are both set: give one`);
    tokens[key] = readToken(variable, path, read);
  }
  return tokens;
}

/** The tokens the flags' files name (`--token-file` …), by setting; they override the environment, as flags do. */
export function tokenFilesFromFlags(
  flags: Record<string, unknown>,
  read: ReadText = readText,
): Pick<NodeConfig, TokenKey> {
  const tokens: Pick<NodeConfig, TokenKey> = {};
  for (const { flag, key } of TOKEN_FILES) {
    const path = flags[`${flag}-file`];
    if (typeof path !== "string") continue;
    if (typeof flags[flag] === "string") throw new ConfigError(`--${flag} and --${flag}-file are both set: give one`);
    tokens[key] = readToken(`--${flag}-file`, path, read);
  }
  return tokens;
}

function readToken(name: string, path: string, read: ReadText): string {
  let text: string;
  try {
    text = read(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(`${name}: cannot read ${path} (${reason})`);
  }
  const token = text.trim();
  if (token === "") throw new ConfigError(`${name}: ${path} is empty`);
  return token;
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === "" ? undefined : text;
}
