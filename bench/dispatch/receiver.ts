/**
 * The webhook receiver of the dispatch bench, in a process of its own: a keep-alive HTTP server on loopback that
 * answers 200 to every POST, at once or after `delayMs`, and counts what it received (and how many message-ids it saw
 * twice). The parent asks it for its counts and resets them between runs over IPC.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const delayMs = Number(process.argv[2] ?? 0);
let received = 0;
let repeated = 0;
let seen = new Set<string>();

const server = createServer((request, response) => {
  const id = String(request.headers["message-id"] ?? "");
  request.resume();
  request.on("end", () => {
    received++;
    if (seen.has(id)) repeated++;
    else seen.add(id);
    const answer = () => response.writeHead(200, { "content-type": "text/plain" }).end("ok");
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  process.send?.({ kind: "ready", port: (server.address() as AddressInfo).port });
});

process.on("message", (message: { kind: string }) => {
  if (message.kind === "counts") process.send?.({ kind: "counts", received, repeated, distinct: seen.size });
  else if (message.kind === "reset") {
    received = 0;
    repeated = 0;
    seen = new Set();
    process.send?.({ kind: "reset" });
  } else if (message.kind === "stop") server.close(() => process.exit(0));
});
