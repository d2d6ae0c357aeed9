/**
 * A PostgreSQL server of the test's own, for tests that crash or restart the server: initdb in a temporary folder,
 * listening on a free loopback port with its socket in that folder, so that stopping it touches no other test's
 * server. Built from the binaries of the Debian package the shared server comes from (/usr/lib/postgresql/<major>/bin,
 * the newest). initdb and the server refuse to run as root, so under root they run as the `postgres` user, who owns
 * the folder.
 */
import { execFile } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./free-port.ts";

const run = promisify(execFile);
const PACKAGE_BINARIES = "/usr/lib/postgresql";

/** The folder of initdb, pg_ctl and postgres, or null when no server package is installed. */
export function postgresBinaries(): string | null {
  if (!existsSync(PACKAGE_BINARIES)) return null;
  const majors = readdirSync(PACKAGE_BINARIES)
    .filter((name) => existsSync(join(PACKAGE_BINARIES, name, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] === undefined ? null : join(PACKAGE_BINARIES, majors[0], "bin");
}

export class PrivatePostgres {
  readonly url: string;
  readonly #bin: string;
  readonly #dir: string;
  readonly #port: number;
  readonly #asPostgres: boolean;

  private constructor(bin: string, dir: string, port: number, asPostgres: boolean) {
    this.#bin = bin;
    this.#dir = dir;
    this.#port = port;
    this.#asPostgres = asPostgres;
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  /** initdb and start; fsync stays on, as the durability the test checks depends on it. */
  static async create(bin: string): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), "conveyor-pg-"));
    const asPostgres = userInfo().uid === 0;
    if (asPostgres) {
      const { stdout } = await run("id", ["-u", "postgres"]);
      const { stdout: group } = await run("id", ["-g", "postgres"]);
      chownSync(dir, Number(stdout.trim()), Number(group.trim()));
      chmodSync(dir, 0o700);
    }
    const server = new PrivatePostgres(bin, dir, await freePort(), asPostgres);
    // --no-sync: the empty cluster needs no flush to disk; the server's own writes keep fsync on.
    await server.#tool("initdb", ["-D", server.#data, "-U", "postgres", "-A", "trust", "--no-sync"]);
    await server.start();
    return server;
  }

  get #data(): string {
    return join(this.#dir, "data");
  }

  async #tool(name: string, args: string[]): Promise<void> {
    const path = join(this.#bin, name);
    if (this.#asPostgres) await run("runuser", ["-u", "postgres", "--", path, ...args]);
    else await run(path, args);
  }

  async start(): Promise<void> {
    const options = `-p ${this.#port} -k ${this.#dir} -c listen_addresses=127.0.0.1 -c fsync=on`;
    await this.#tool("pg_ctl", ["-D", this.#data, "-o", options, "-l", join(this.#dir, "log"), "-w", "start"]);
  }

  /** Stops the server the way a crash does: every process killed at once, no checkpoint; recovery replays the WAL. */
  async crash(): Promise<void> {
    await this.#tool("pg_ctl", ["-D", this.#data, "-m", "immediate", "-w", "stop"]);
  }

  async destroy(): Promise<void> {
    await this.#tool("pg_ctl", ["-D", this.#data, "-m", "immediate", "-w", "stop"]).catch(() => {});
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
