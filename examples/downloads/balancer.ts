/**
 * A small round-robin proxy (HTTP, SSE and WebSocket) to try the cluster on one machine: the role nginx plays in the
 * seed's blog post, without installing nginx.
 *
 *   BALANCER_PORT=4000 UPSTREAMS=4001,4002,4003 node examples/downloads/balancer.ts
 *
 * Each request goes to the next node in turn (so a page, its POST and its live connection may each land on a
 * different node, which is the point). A node that refuses the connection is skipped for two seconds and the request
 * goes to the next one, so a killed node drops out at once; a connection cut by its node's death (the live stream,
 * an SSE stream) is the client's to make again, and it lands on a live node. Not for production: no TLS, no limits.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";

type Upstream = { host: string; port: number; downUntil: number };

const port = Number(process.env.BALANCER_PORT ?? 4000);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`balancer: BALANCER_PORT must be a port number, got ${JSON.stringify(process.env.BALANCER_PORT)}`);
  process.exit(2);
}
const upstreams: Upstream[] = (process.env.UPSTREAMS ?? "4001,4002,4003").split(",").map((entry) => {
  const [host, portText] = entry.includes(":") ? entry.split(":") : ["127.0.0.1", entry];
  const upstreamPort = Number(portText);
  if (!Number.isInteger(upstreamPort) || upstreamPort < 1 || upstreamPort > 65_535) {
    console.error(`balancer: UPSTREAMS must be ports or host:port, comma-separated; got ${JSON.stringify(entry)}`);
    process.exit(2);
  }
  return { host: host!, port: upstreamPort, downUntil: 0 };
});
const DOWN_MS = 2000;
const MAX_BODY = 1024 * 1024;
let turn = 0;

/** The upstreams to try, starting with the next in turn, those known down last. */
function order(): Upstream[] {
  const start = turn++ % upstreams.length;
  const rotated = [...upstreams.slice(start), ...upstreams.slice(0, start)];
  const now = Date.now();
  return [...rotated.filter((u) => u.downUntil <= now), ...rotated.filter((u) => u.downUntil > now)];
}

function refused(error: NodeJS.ErrnoException): boolean {
  return error.code === "ECONNREFUSED" || error.code === "ECONNRESET" || error.code === "EHOSTUNREACH";
}

const server = createServer((req, res) => {
  // The body is read first (requests here are small), so that a request refused by one node can go to the next.
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > MAX_BODY) return void res.writeHead(413).end();
    forward(req, res, Buffer.concat(chunks), order());
  });
});

function forward(req: IncomingMessage, res: ServerResponse, body: Buffer, candidates: Upstream[]): void {
  const upstream = candidates.shift();
  if (upstream === undefined) {
    res.writeHead(502, { "content-type": "application/json" });
    return void res.end('{"error":{"code":"no_upstream","message":"no node answered"}}');
  }
  const headers = { ...req.headers, "x-forwarded-for": req.socket.remoteAddress ?? "" };
  const proxied = request(
    { host: upstream.host, port: upstream.port, method: req.method, path: req.url, headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      res.on("close", () => answer.destroy());
    },
  );
  proxied.on("error", (error: NodeJS.ErrnoException) => {
    if (!res.headersSent && refused(error)) {
      upstream.downUntil = Date.now() + DOWN_MS;
      return forward(req, res, body, candidates);
    }
    res.destroy();
  });
  proxied.end(body);
}

server.on("upgrade", (req: IncomingMessage, client: Socket, head: Buffer) => {
  const candidates = order();
  const attempt = () => {
    const upstream = candidates.shift();
    if (upstream === undefined) return void client.destroy();
    let connected = false;
    const socket = connect(upstream.port, upstream.host, () => {
      connected = true;
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length > 0) socket.write(head);
      socket.pipe(client).pipe(socket);
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (!connected && refused(error)) {
        upstream.downUntil = Date.now() + DOWN_MS;
        return attempt();
      }
      client.destroy();
    });
    socket.on("close", () => {
      if (connected) client.destroy();
    });
    client.on("close", () => socket.destroy());
    client.on("error", () => socket.destroy());
  };
  attempt();
});

server.listen(port, () => {
  const list = upstreams.map((u) => `${u.host}:${u.port}`).join(", ");
  const { port: actual } = server.address() as AddressInfo;
  console.log(`Balancer listening on http://localhost:${actual}, round robin over ${list}`);
});
for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => process.exit(0));
