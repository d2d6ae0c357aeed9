/**
 * Sends one attempt of a webhook: a POST of the body to the publisher's target over node:http(s), through keep-alive
 * agents, with the SSRF guard in the socket's lookup (ssrf-guard.ts). Any 2xx is a success; a redirect is a failure
 * like any other status (never followed); a 410 is reported as such (the publisher is then disabled). The whole
 * attempt (connecting, the response and its body) has the publisher's timeout. Of the response, the status, the
 * Retry-After header and the first MAX_RESPONSE_BYTES of the body are kept; the rest is read and dropped, so that the
 * connection can be used again.
 */
import http from "node:http";
import https from "node:https";
import { type AddressPolicy, guardedLookup, literalRefusal, type LookupFunction } from "./ssrf-guard.ts";

export const MAX_RESPONSE_BYTES = 8 * 1024;

export type SendRequest = {
  /** POST (a delivery) by default; recovery GETs and DELETEs. */
  method?: "POST" | "GET" | "DELETE";
  target: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Stops the attempt (the delivery task's signal: a cancel or a shutdown). */
  signal: AbortSignal;
  /** How much of the response body is kept (MAX_RESPONSE_BYTES by default). */
  maxResponseBytes?: number;
};

export type SendResult = {
  /** The response's status, or null when none came. */
  status: number | null;
  durationMs: number;
  /** What went wrong, for people; null on a 2xx. */
  error: string | null;
  timedOut: boolean;
  retryAfter: string | undefined;
  responseBody: string | null;
};

export type HttpSenderOptions = {
  policy: AddressPolicy;
  /** The resolver the guard wraps (dns.lookup by default); tests give their own. */
  resolve?: LookupFunction;
  /**
   * Wraps the guarded lookup: what the socket finally calls. Tests put a tripwire here that refuses anything but
   * loopback, so that even a broken guard could not make a test dial out.
   */
  interceptLookup?: (lookup: LookupFunction) => LookupFunction;
};

export class HttpSender {
  readonly #policy: AddressPolicy;
  readonly #lookup: LookupFunction;
  readonly #agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY }),
  };

  constructor(options: HttpSenderOptions) {
    this.#policy = options.policy;
    const guarded = guardedLookup(options.policy, options.resolve);
    this.#lookup = options.interceptLookup?.(guarded) ?? guarded;
  }

  async send(request: SendRequest): Promise<SendResult> {
    const started = performance.now();
    const result = (partial: Omit<SendResult, "durationMs">): SendResult => ({
      ...partial,
      durationMs: Math.round(performance.now() - started),
    });
    let url: URL;
    try {
      url = new URL(request.target);
    } catch {
      return result(failure(`${JSON.stringify(request.target)} is not a URL`));
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      return result(failure(`${url.protocol} targets are not sent over HTTP`));
    const refusal = literalRefusal(url.hostname, this.#policy);
    if (refusal !== null) return result(failure(`refused to connect to ${url.hostname}: ${refusal}`));
    const timeout = AbortSignal.timeout(request.timeoutMs);
    const signal = AbortSignal.any([timeout, request.signal]);
    try {
      const response = await this.#post(url, request, signal);
      const ok = response.status >= 200 && response.status < 300;
      return result({
        status: response.status,
        error: ok ? null : `the receiver answered ${response.status}`,
        timedOut: false,
        retryAfter: response.retryAfter,
        responseBody: response.body,
      });
    } catch (error) {
      const timedOut = timeout.aborted;
      const message = timedOut
        ? `no answer within ${request.timeoutMs} ms`
        : error instanceof Error
          ? error.message
          : String(error);
      return result({ ...failure(message), timedOut });
    }
  }

  #post(
    url: URL,
    request: SendRequest,
    signal: AbortSignal,
  ): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
    const client = url.protocol === "https:" ? https : http;
    const limit = request.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    const method = request.method ?? "POST";
    return new Promise((resolve, reject) => {
      const req = client.request(url, {
        method,
        agent: this.#agents[url.protocol as "http:" | "https:"],
        lookup: this.#lookup as never,
        headers:
          method === "POST"
            ? { ...request.headers, "content-length": String(Buffer.byteLength(request.body)) }
            : request.headers,
        signal,
      });
      req.on("error", reject);
      req.on("response", (response) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        response.on("data", (chunk: Buffer) => {
          if (kept >= limit) return;
          chunks.push(chunk);
          kept += chunk.length;
        });
        response.on("error", reject);
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            retryAfter: headerValue(response.headers["retry-after"]),
            body: Buffer.concat(chunks).subarray(0, limit).toString("utf8"),
          }),
        );
      });
      req.end(method === "POST" ? request.body : undefined);
    });
  }

  close(): void {
    for (const agent of Object.values(this.#agents)) agent.destroy();
  }
}

function failure(error: string): Omit<SendResult, "durationMs"> {
  return { status: null, error, timedOut: false, retryAfter: undefined, responseBody: null };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
