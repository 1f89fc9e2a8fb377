/**
 * Stores opened by the console, one per document, kept for reuse (each holds
 * its own etcd connection) and closed when the cache is full or the console
 * stops, oldest first.
 */
export class StoreCache<T extends { close(): void }> {
  private readonly stores = new Map<string, T>();

  constructor(private readonly max = 64) {}

  get(key: string, open: () => T): T {
    let store = this.stores.get(key);
    if (store) {
      // Most recently used last, so the oldest is the first to go.
      this.stores.delete(key);
      this.stores.set(key, store);
      return store;
    }
    store = open();
    this.stores.set(key, store);
    if (this.stores.size > this.max) {
      const [oldest, s] = this.stores.entries().next().value as [string, T];
      this.stores.delete(oldest);
      s.close();
    }
    return store;
  }

  close(): void {
    for (const s of this.stores.values()) s.close();
    this.stores.clear();
  }
}
