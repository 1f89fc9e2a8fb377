/**
 * Groups concurrent store writes of one kind into one statement. Up to `maxInFlight` statements
 * run at once; while they do, new writes queue, and the next statement takes every queued one
 * (up to `maxBatch`). A lone write is therefore sent at once, and under load many transactions
 * share one round trip, one parse/bind and one commit. Each write still resolves only when the
 * statement that carried it committed, so nothing is answered before it is durable.
 *
 * Writes with the same key (a transaction's gid) never share a statement (a multi-row insert or
 * update would see the second as a conflict with the first instead of with what is stored), and
 * one waits while a statement with the other is in flight, so they run in the order submitted.
 * If a shared statement fails, its writes are retried one statement each, so a write that
 * cannot succeed fails alone.
 */
export class Batcher<I, O> {
  private readonly queue: Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private inFlight = 0;
  /** Keys of the writes in statements now running. */
  private readonly busy = new Set<string>();

  constructor(
    /** Runs the writes as one statement; answers one output per item, in order. */
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly keyOf: (item: I) => string,
    private readonly maxInFlight = 2,
    private readonly maxBatch = 64,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.take();
      if (batch.length === 0) return; // everything queued waits on a statement in flight
      const keys = batch.map((w) => this.keyOf(w.item));
      for (const k of keys) this.busy.add(k);
      this.inFlight++;
      void this.flush(batch).finally(() => {
        for (const k of keys) this.busy.delete(k);
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** The oldest queued write of each key not in flight (up to `maxBatch`); the rest stay queued in order. */
  private take(): typeof this.queue {
    const keys = new Set<string>();
    const batch: typeof this.queue = [];
    const rest: typeof this.queue = [];
    for (const w of this.queue) {
      const key = this.keyOf(w.item);
      if (batch.length < this.maxBatch && !keys.has(key) && !this.busy.has(key)) batch.push(w);
      else rest.push(w);
      keys.add(key);
    }
    this.queue.splice(0, this.queue.length, ...rest);
    // One order for every statement's row locks, so two statements never wait on each other.
    return batch.length > 1 ? batch.sort((a, b) => (this.keyOf(a.item) < this.keyOf(b.item) ? -1 : 1)) : batch;
  }

  private async flush(batch: typeof this.queue): Promise<void> {
    try {
      const out = await this.run(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(out[i]!));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      await Promise.all(
        batch.map(async (w) => {
          try {
            w.resolve((await this.run([w.item]))[0]!);
          } catch (e) {
            w.reject(e);
          }
        }),
      );
    }
  }
}
