/** The machine and servers a run was measured on, for the record beside the figures. */
import { execFileSync } from "node:child_process";
import { connect } from "node:net";
import { cpus, loadavg, totalmem } from "node:os";
import pg from "pg";
import { PG_URL, REDIS_URL } from "./env.ts";

export type MachineInfo = {
  nproc: number;
  memoryGiB: number;
  cpu: string;
  node: string;
  sqlite: string;
  postgres: string;
  postgresSettings: Record<string, string>;
  redis: string;
  /** 1-minute load average when the run began: a busy machine makes every figure lower. */
  loadAverage: number;
  /** The commit measured, and the files under src/ that differed from it (uncommitted work measured too). */
  git?: { commit: string; uncommittedSrc: string[] };
};

export async function machineInfo(): Promise<MachineInfo> {
  const [postgres, redis] = await Promise.all([postgresInfo(), redisVersion()]);
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync("nproc", { encoding: "utf8" }).trim());
  } catch {}
  return {
    nproc,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    node: process.version,
    sqlite: process.versions.sqlite ?? "unknown",
    postgres: postgres.version,
    postgresSettings: postgres.settings,
    redis,
    loadAverage: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    git: gitState(),
  };
}

function gitState(): { commit: string; uncommittedSrc: string[] } {
  // Not trimmed at the start: a porcelain line begins with its two status columns, the first often a space.
  const git = (...args: string[]) =>
    execFileSync("git", args, { encoding: "utf8", cwd: new URL("../../", import.meta.url) }).trimEnd();
  try {
    const changed = git("status", "--porcelain", "--", "src")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => line.slice(3));
    return { commit: git("rev-parse", "--short", "HEAD"), uncommittedSrc: changed };
  } catch {
    return { commit: "unknown", uncommittedSrc: [] };
  }
}

async function postgresInfo(): Promise<{ version: string; settings: Record<string, string> }> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
       WHERE name IN ('server_version', 'shared_buffers', 'fsync', 'synchronous_commit', 'max_connections')`,
    );
    const settings: Record<string, string> = {};
    for (const row of rows)
      settings[row.name] = row.unit === "8kB" ? `${(Number(row.setting) * 8) / 1024}MB` : row.setting;
    const version = settings.server_version ?? "unknown";
    delete settings.server_version;
    return { version, settings };
  } catch (error) {
    return { version: `unreachable (${error instanceof Error ? error.message : String(error)})`, settings: {} };
  } finally {
    await client.end().catch(() => {});
  }
}

/** `INFO server` over a bare socket: the parent process needs no Redis client for one line. */
function redisVersion(): Promise<string> {
  const url = new URL(REDIS_URL);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port || 6379), url.hostname);
    let text = "";
    const done = (value: string) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(3000, () => done("unreachable (timeout)"));
    socket.on("error", (error) => done(`unreachable (${error.message})`));
    socket.on("connect", () => socket.write("INFO server\r\n"));
    socket.on("data", (chunk) => {
      text += chunk.toString("utf8");
      const match = /redis_version:([^\r\n]+)/.exec(text);
      if (match !== null) done(match[1]!);
    });
  });
}
