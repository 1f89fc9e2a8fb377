/**
 * The alert hook: told when a branch keeps failing or a transaction gives up, so a person
 * looks at it. A function, a webhook (POST of the alert as JSON), or by default a log line.
 */
import type { Logger } from "../../runtime/logger";

export interface TxAlert {
  /** `branch-failing`: a branch failed `alertAfterAttempts` calls in a row; `gave-up`: the retry limit ended the transaction, or a notification ran out of schedule or reached `maxAgeMs`. */
  readonly kind: "branch-failing" | "gave-up";
  readonly gid: string;
  readonly mode: string;
  readonly status: string;
  readonly branchId?: string;
  readonly op?: string;
  readonly method?: string;
  readonly attempts: number;
  readonly lastError: string;
  readonly at: number;
}

export interface AlertOptions {
  /** Called with each alert; errors it throws are logged and dropped. */
  onAlert?: (alert: TxAlert) => void | Promise<void>;
  /** URL that receives each alert as a JSON POST (2 s deadline, not retried). */
  alertWebhook?: string;
  /** Alert when a branch's failed calls reach this count, and again at each multiple (default 3). */
  alertAfterAttempts?: number;
}

export function alertSender(options: AlertOptions, logger: Logger): (alert: TxAlert) => void {
  return (alert) => {
    logger.warn("transaction alert", { ...alert });
    const jobs: Promise<unknown>[] = [];
    if (options.onAlert) jobs.push(Promise.resolve().then(() => options.onAlert!(alert)));
    if (options.alertWebhook) {
      jobs.push(
        fetch(options.alertWebhook, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(alert), signal: AbortSignal.timeout(2000) }).then((r) => {
          if (!r.ok) throw new Error(`webhook answered HTTP ${r.status}`);
        }),
      );
    }
    for (const job of jobs) job.catch((err: unknown) => logger.warn("transaction alert hook failed", { gid: alert.gid, error: String(err) }));
  };
}
