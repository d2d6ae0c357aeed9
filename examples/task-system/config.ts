/**
 * The example's knobs, read from the environment (the seed hard-coded all of them, see README).
 * A bad value is a startup error that names the variable, never a silent fallback.
 */

export type TaskSystemConfig = {
  /** HTTP port; 0 picks a free one. Default 4000, as the seed. */
  port: number;
  /** Tasks processed at once ("workers"). 0 queues tasks without running them. Default 5, as the seed. */
  poolSize: number;
  /** Directory of the SQLite file that holds the queue. Created if needed. Default `./tmp`, as the seed. */
  dataDir: string;
  /** Processing time of a task, drawn uniformly from [minSeconds, maxSeconds]. Default 1–5 s, as the seed. */
  minSeconds: number;
  maxSeconds: number;
};

export const DEFAULT_CONFIG: TaskSystemConfig = {
  port: 4000,
  poolSize: 5,
  dataDir: "./tmp",
  minSeconds: 1,
  maxSeconds: 5,
};

export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

/** The configuration from `env` (normally `process.env`); throws a ConfigurationError naming the bad variable. */
export function configFromEnv(env: Record<string, string | undefined>): TaskSystemConfig {
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const integer = (name: string, fallback: number, max: number): number => {
    const value = text(name);
    if (value === undefined) return fallback;
    const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed > max) {
      throw new ConfigurationError(`${name} must be an integer from 0 to ${max}, got ${JSON.stringify(env[name])}`);
    }
    return parsed;
  };
  const seconds = (name: string, fallback: number): number => {
    const value = text(name);
    if (value === undefined) return fallback;
    const parsed = /^(\d+(\.\d*)?|\.\d+)$/.test(value) ? Number(value) : NaN;
    if (!Number.isFinite(parsed) || parsed > 86_400) {
      throw new ConfigurationError(
        `${name} must be a number of seconds from 0 to 86400, got ${JSON.stringify(env[name])}`,
      );
    }
    return parsed;
  };
  const config: TaskSystemConfig = {
    port: integer("PORT", DEFAULT_CONFIG.port, 65_535),
    poolSize: integer("POOL_SIZE", DEFAULT_CONFIG.poolSize, 1000),
    dataDir: text("DATA_DIR") ?? DEFAULT_CONFIG.dataDir,
    minSeconds: seconds("MIN_SECONDS", DEFAULT_CONFIG.minSeconds),
    maxSeconds: seconds("MAX_SECONDS", DEFAULT_CONFIG.maxSeconds),
  };
  if (config.minSeconds > config.maxSeconds) {
    throw new ConfigurationError(
      `MIN_SECONDS (${config.minSeconds}) must not be greater than MAX_SECONDS (${config.maxSeconds})`,
    );
  }
  return config;
}
