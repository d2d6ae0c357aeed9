/**
 * A TCP proxy on loopback that a test can cut, to put a network between a node and its store or bus without
 * touching the server itself (which other tests share).
 *
 * - `freeze()`: a partition as a network makes one. Open connections stay open but nothing crosses them in either
 *   direction (bytes are discarded), and new connections are accepted but never reach the target: a client's
 *   queries hang, as they do behind a dead switch, rather than fail fast.
 * - `drop()`: every open connection is reset, and new ones are refused while dropped (the server looks gone).
 * - `heal()`: back to forwarding. The bytes discarded while frozen are lost, so a connection that was frozen is
 *   reset on heal (its protocol exchange is broken), as a real one would have timed out by then.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export type ProxyMode = "forward" | "frozen" | "dropped";

export class TcpProxy {
  #server: Server;
  #mode: ProxyMode = "forward";
  /** Each client socket, with its upstream once connected. */
  #pairs = new Set<{ client: Socket; upstream: Socket | null }>();
  #port = 0;
  readonly #targetHost: string;
  readonly #targetPort: number;

  private constructor(targetHost: string, targetPort: number) {
    this.#targetHost = targetHost;
    this.#targetPort = targetPort;
    this.#server = createServer((client) => this.#accept(client));
  }

  /** A proxy listening on 127.0.0.1 (a free port) in front of `targetHost:targetPort`. */
  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetHost, targetPort);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once("error", reject);
      proxy.#server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = proxy.#server.address();
    if (address === null || typeof address === "string") throw new Error("the proxy has no TCP address");
    proxy.#port = address.port;
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  /** `url` with its host and port replaced by the proxy's (for postgres:// and amqp:// URLs). */
  rewrite(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = "127.0.0.1";
    parsed.port = String(this.#port);
    return parsed.toString();
  }

  /** Stop every byte, keeping connections open: reads and writes hang. */
  freeze(): void {
    this.#mode = "frozen";
  }

  /** Reset every connection, and refuse new ones until heal(). */
  drop(): void {
    this.#mode = "dropped";
    for (const pair of this.#pairs) this.#close(pair);
  }

  /** Forward again; connections that were frozen are reset (their peers' state is unknowable). */
  heal(): void {
    const wasFrozen = this.#mode === "frozen";
    this.#mode = "forward";
    if (wasFrozen) for (const pair of this.#pairs) this.#close(pair);
  }

  /** Open connections through the proxy. */
  get connections(): number {
    return this.#pairs.size;
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) this.#close(pair);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if (this.#mode === "dropped") {
      resetSocket(client);
      return;
    }
    const pair: { client: Socket; upstream: Socket | null } = { client, upstream: null };
    this.#pairs.add(pair);
    client.on("error", () => this.#close(pair));
    client.on("close", () => this.#close(pair));
    if (this.#mode === "frozen") {
      // Accepted while frozen: never connected, the client waits for a server greeting that does not come (its
      // bytes are read and discarded, as a dead link's buffers would take them).
      client.on("data", () => {});
      return;
    }
    const upstream = connect(this.#targetPort, this.#targetHost);
    pair.upstream = upstream;
    upstream.on("error", () => this.#close(pair));
    upstream.on("close", () => this.#close(pair));
    // Bytes are forwarded one chunk at a time rather than piped, so that a freeze black-holes them at once in
    // both directions (a paused pipe resumes itself on the next drain).
    client.on("data", (chunk) => {
      if (this.#mode === "forward") upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (this.#mode === "forward") client.write(chunk);
    });
  }

  #close(pair: { client: Socket; upstream: Socket | null }): void {
    if (!this.#pairs.delete(pair)) return;
    resetSocket(pair.client);
    if (pair.upstream !== null) resetSocket(pair.upstream);
  }
}

/**
 * Resets a connection (an RST, as a dead link's peer sees it), or closes it when its write side has already ended.
 * Node's resetAndDestroy() fails with EINVAL while a shutdown is in flight (the socket auto-ends when its peer
 * sends FIN) and leaves the handle neither open nor closed: the process then spins at 100 % CPU at exit, for ever
 * (Node 24.21; it held test/store-outage.test.ts for 30 minutes after its tests had passed).
 */
export function resetSocket(socket: Socket): void {
  if (socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}
