/**
 * Flag parsing shared by the commands: node:util parseArgs plus checks that turn a bad value into a
 * one-line error naming the flag (exit code 2), never a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

export class UsageError extends Error {
  override name = "UsageError";
}

export const HELP_FLAG = { type: "boolean", short: "h" } as const;

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses `args` strictly; every command lists `help: HELP_FLAG` among its options. */
export function parse<const T extends Options>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** An integer flag within bounds, or undefined when absent. */
export function integerFlag(
  name: string,
  value: string | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined || value === "") return undefined;
  const number = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < min || number > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return number;
}
