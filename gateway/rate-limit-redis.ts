import type { Redis, RedisOptions } from "ioredis";
import { requireOptional } from "../runtime/optional-dependency";
import type { Logger } from "../runtime/logger";
import type { LimitDecision } from "./rate-limit-local";

/**
 * A limit shared by every gateway instance, kept in Redis with GCRA (the
 * generic cell rate algorithm): one key per (route, client) holding the
 * "theoretical arrival time", advanced by one emission interval per admitted
 * request, all in one Lua script so concurrent gateways never race. The clock
 * is Redis's own (`TIME`), so gateways with skewed clocks agree.
 *
 * Redis down or slow never hangs a request: the offline queue is off and each
 * call has a short timeout; the caller then falls back (open) or refuses
 * (closed) as the route's policy says.
 */

// KEYS[1] = bucket; ARGV[1] = emission interval (µs), ARGV[2] = burst.
// Returns { allowed (0/1), remaining, retry-after µs, reset µs }.
const GCRA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local newTat = tat + interval
local allowAt = newTat - interval * burst
if now < allowAt then
  return {0, 0, allowAt - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', newTat), 'PX', math.ceil((newTat - now) / 1000) + 1)
return {1, math.floor((now - allowAt) / interval), 0, newTat - now}
`;

export interface ClusterLimiterOptions {
  /** `redis://host:port/db` or ioredis options. */
  readonly redis: string | RedisOptions;
  /** Longest wait for one Redis answer before falling back (default 100 ms). */
  readonly timeoutMs?: number;
  /** Prefix of the Redis keys (default `protomesh:gw:`). */
  readonly keyPrefix?: string;
  readonly logger: Logger;
}

/** Thrown when Redis could not answer in time; the caller decides open or closed. */
export class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
}

type ScriptRedis = Redis & { gcra(key: string, interval: number, burst: number): Promise<[number, number, number, number]> };

export class ClusterLimiter {
  private readonly redis: ScriptRedis;
  private readonly timeoutMs: number;
  private readonly keyPrefix: string;
  private downSince: number | undefined;

  constructor(private readonly options: ClusterLimiterOptions) {
    const { default: IORedis } = requireOptional<{ default: typeof import("ioredis").default }>("ioredis", "the gateway's cluster-wide rate limit", "~6.0.0");
    this.timeoutMs = options.timeoutMs ?? 100;
    this.keyPrefix = options.keyPrefix ?? "protomesh:gw:";
    const base: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.timeoutMs,
      connectTimeout: 1000,
      // Keep trying to reconnect in the background, never more than 1 s apart.
      retryStrategy: (times) => Math.min(1000, 50 * times),
    };
    const redis = typeof options.redis === "string" ? new IORedis(options.redis, base) : new IORedis({ ...options.redis, ...base });
    redis.on("error", (err: Error) => {
      if (this.downSince === undefined) {
        this.downSince = Date.now();
        options.logger.warn("rate limit: Redis unreachable; routes fall back to their local limit or refuse, as configured", { err: err.message });
      }
    });
    redis.on("ready", () => {
      if (this.downSince !== undefined) options.logger.info("rate limit: Redis reachable again", { downMs: Date.now() - this.downSince });
      this.downSince = undefined;
    });
    redis.defineCommand("gcra", { numberOfKeys: 1, lua: GCRA });
    this.redis = redis as ScriptRedis;
  }

  /** Admits one request against `limit` per `windowSeconds` (smoothed), with `burst` requests of slack. */
  async take(key: string, limit: number, windowSeconds: number, burst: number): Promise<LimitDecision> {
    const intervalUs = Math.max(1, Math.round((windowSeconds * 1e6) / limit));
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        this.redis.gcra(this.keyPrefix + key, intervalUs, burst),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new RedisUnavailableError(`Redis did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
      const [allowed, remaining, retryUs, resetUs] = answer.map(Number);
      return {
        allowed: allowed === 1,
        limit: burst,
        remaining,
        retryAfterSeconds: allowed === 1 ? 0 : Math.max(1, Math.ceil(retryUs / 1e6)),
        resetSeconds: Math.ceil(resetUs / 1e6),
      };
    } catch (err) {
      if (err instanceof RedisUnavailableError) throw err;
      throw new RedisUnavailableError(`Redis: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
