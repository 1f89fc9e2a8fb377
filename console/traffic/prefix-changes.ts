/**
 * Hears every change under an etcd prefix and hands the changed keys on, so a
 * page can say "this service's rule changed" over server-sent events. It keeps
 * no state beyond the revision: the page re-reads what it shows. A failed
 * watch backs off and resumes after the last revision seen; a compaction
 * reports every key as changed (`undefined`), since some changes were lost.
 */
import type { Etcd3, IEvent } from "etcd3";
import { Backoff } from "../../registry/etcd/backoff";
import { runListWatch } from "../../registry/etcd/list-watch";
import { deadlineIn } from "../../registry/etcd/options";
import { prefixEnd } from "../../registry/etcd/watch-stream";
import type { Logger } from "../../runtime/logger";

export interface PrefixChangesOptions {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  /** The keys (without the prefix) changed by one watch response; `undefined` means "anything may have changed". */
  readonly onChange: (keys: readonly string[] | undefined) => void;
}

export class PrefixChanges {
  private rev = 0n;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly o: PrefixChangesOptions) {}

  start(): void {
    this.loop ??= runListWatch(
      {
        client: this.o.client,
        prefix: this.o.prefix,
        callTimeoutMs: this.o.callTimeoutMs,
        backoff: new Backoff(),
        sync: async () => {
          // Only the revision matters: what the keys hold is read by the page itself.
          const res = await this.o.client.kv.range({ key: Buffer.from(this.o.prefix), range_end: prefixEnd(this.o.prefix), keys_only: true, limit: 1 }, deadlineIn(this.o.callTimeoutMs));
          const resynced = this.rev !== 0n;
          this.rev = BigInt(res.header.revision);
          if (resynced) this.o.onChange(undefined);
        },
        revision: () => this.rev,
        apply: (events: IEvent[]) => {
          const keys = new Set<string>();
          for (const e of events) {
            const rev = BigInt(e.kv.mod_revision);
            if (rev > this.rev) this.rev = rev;
            keys.add(e.kv.key.toString("utf8").slice(this.o.prefix.length));
          }
          if (keys.size > 0) this.o.onChange([...keys]);
        },
        onWatching: () => undefined,
        onFailure: (err) => void (!this.abort.signal.aborted && this.o.logger.warn("console: watch failed; retrying", { prefix: this.o.prefix, err: String(err) })),
        onCompacted: () => undefined,
      },
      this.abort.signal,
    );
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }
}
