/**
 * Group commit for the delivery tasks of one node: what many of them ask of the store at about the same time (the
 * reads of their deliveries, the records of their attempts) goes in one statement. A request waits at most for the
 * current turn of the event loop, or for the statement already running: under load each statement carries every
 * request that arrived while the previous one ran; alone, a request goes at once.
 */

type Waiting<I, O> = { item: I; resolve: (out: O) => void; reject: (error: unknown) => void };

export class Batcher<I, O> {
  readonly #run: (items: I[]) => Promise<O[]>;
  readonly #max: number;
  #waiting: Waiting<I, O>[] = [];
  #busy = false;

  /** `run` answers a batch, one output per item in order; at most `max` items a batch. */
  constructor(run: (items: I[]) => Promise<O[]>, max = 100) {
    this.#run = run;
    this.#max = max;
  }

  add(item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (!this.#busy) {
        this.#busy = true;
        // Those that come in this same turn (the tasks a claim started together) join the first batch.
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.#max);
      try {
        const outputs = await this.#run(batch.map((w) => w.item));
        for (const [i, w] of batch.entries()) w.resolve(outputs[i]!);
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    this.#busy = false;
  }
}
