/**
 * The proxy's reset must leave a process that can exit. Node's resetAndDestroy() on a socket whose shutdown is in
 * flight fails with EINVAL and strands the handle, and the process then spins at exit for ever: that held
 * test/store-outage.test.ts for 30 minutes after its tests had passed, whenever a peer's FIN reached the proxy just
 * before the other side of its connection closed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";

const PROXY = new URL("./tcp-proxy.ts", import.meta.url).pathname;

test("a socket reset while its shutdown is in flight closes, and its process exits", { timeout: 30_000 }, async () => {
  // A server socket is ended and reset in the same tick: the shutdown has been asked for and has not completed.
  const script = `
    import { createServer, connect } from "node:net";
    import { resetSocket } from ${JSON.stringify(PROXY)};
    const server = createServer((socket) => {
      socket.on("error", (error) => console.log("error " + error.code));
      socket.on("close", () => console.log("closed"));
      socket.end("bye");
      resetSocket(socket);
      server.close();
    });
    server.listen(0, "127.0.0.1", () => {
      const client = connect({ port: server.address().port, host: "127.0.0.1", allowHalfOpen: true });
      client.on("error", () => {});
      client.on("close", () => {});
      client.resume();
      setTimeout(() => client.destroy(), 100);
    });`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  const deadline = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [code, signal] = await once(child, "exit");
  clearTimeout(deadline);
  assert.equal(signal, null, `the process did not exit within 10 s (killed): ${out}`);
  assert.equal(code, 0, out);
  assert.equal(out.trim(), "closed");
});
