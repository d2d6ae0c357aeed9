/** Latencies of one endpoint, kept whole (a minute of requests is a few hundred thousand numbers), and its errors. */
export type EndpointStats = {
  requests: number;
  ok: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Answers other than the expected status, by status; failures without an answer, by error code. */
  errors: Record<string, number>;
};

export class EndpointRecorder {
  readonly #latencies: number[] = [];
  readonly errors: Record<string, number> = {};
  ok = 0;
  /** Since the last progress line: requests answered and their latencies. */
  #window: number[] = [];

  record(ms: number, error: string | null): void {
    this.#latencies.push(ms);
    this.#window.push(ms);
    if (error === null) this.ok++;
    else this.errors[error] = (this.errors[error] ?? 0) + 1;
  }

  get requests(): number {
    return this.#latencies.length;
  }

  get errorCount(): number {
    return Object.values(this.errors).reduce((a, b) => a + b, 0);
  }

  /** The requests and p99 since the last call. */
  takeWindow(): { count: number; p99Ms: number } {
    const window = this.#window;
    this.#window = [];
    return {
      count: window.length,
      p99Ms: quantile(
        window.sort((a, b) => a - b),
        0.99,
      ),
    };
  }

  stats(seconds: number): EndpointStats {
    const sorted = Float64Array.from(this.#latencies).sort();
    return {
      requests: sorted.length,
      ok: this.ok,
      perSecond: round(this.ok / seconds),
      p50Ms: round(quantile(sorted, 0.5)),
      p99Ms: round(quantile(sorted, 0.99)),
      maxMs: round(sorted.length === 0 ? 0 : sorted[sorted.length - 1]!),
      errors: { ...this.errors },
    };
  }
}

export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
