import type { ServerResponse } from "node:http";
import { Status } from "../runtime/errors";
import { GatewayError } from "./http-errors";
import type { RateLimitPolicy } from "./policy";
import { LocalLimiter, type LimitDecision } from "./rate-limit-local";
import { RedisUnavailableError, type ClusterLimiter } from "./rate-limit-redis";

/**
 * Applies a route's rate limit: the local bucket first (cheap, and it sheds a
 * flood before it reaches Redis), then the cluster-wide limit. When Redis
 * cannot answer (or none is configured), `onRedisDown: "open"` (default) admits
 * on the local decision alone, or on a local bucket at the cluster rate when the
 * route has no local limit, and `"closed"` refuses with 503.
 */
export class RateLimiter {
  readonly local = new LocalLimiter();

  constructor(
    private readonly cluster: ClusterLimiter | undefined,
    /** Called when a cluster limit is enforced locally because no Redis is configured. */
    private readonly onNoRedis?: () => void,
  ) {}

  /** Throws 429 (or 503 when closed on a Redis failure); sets RateLimit-* headers on `res` either way. */
  async admit(routeKey: string, clientKey: string, policy: RateLimitPolicy, res: ServerResponse): Promise<void> {
    const key = `${routeKey}|${clientKey}`;
    let decision: LimitDecision | undefined;
    if (policy.local) {
      decision = this.local.take(key, policy.local.ratePerSecond, policy.local.burst ?? Math.max(1, Math.ceil(policy.local.ratePerSecond)));
      if (!decision.allowed) throw tooMany(decision, res);
    }
    const cluster = policy.cluster;
    if (cluster) {
      const window = cluster.windowSeconds ?? 1;
      const burst = cluster.burst ?? Math.max(1, Math.ceil(cluster.limit / 10));
      if (!this.cluster) {
        if (cluster.onRedisDown === "closed") throw new GatewayError(Status.UNAVAILABLE, "rate limit store not configured (no Redis) and the route fails closed", 503);
        // No Redis at all is treated as Redis down: a local bucket at the cluster rate, never no limit.
        if (!policy.local) {
          this.onNoRedis?.();
          decision = this.local.take(`${key}|fallback`, cluster.limit / window, burst);
          if (!decision.allowed) throw tooMany(decision, res);
        }
      } else {
        try {
          decision = await this.cluster.take(key, cluster.limit, window, burst);
        } catch (err) {
          if (!(err instanceof RedisUnavailableError)) throw err;
          if (cluster.onRedisDown === "closed") throw new GatewayError(Status.UNAVAILABLE, "rate limit store unreachable and the route fails closed", 503, { "retry-after": "1" });
          // Fail open: a local bucket at the cluster rate stands in, so a Redis outage is not a free-for-all.
          if (!policy.local) {
            decision = this.local.take(`${key}|fallback`, cluster.limit / window, burst);
          }
        }
        if (decision && !decision.allowed) throw tooMany(decision, res);
      }
    }
    if (decision) setHeaders(res, decision);
  }
}

function setHeaders(res: ServerResponse, d: LimitDecision): void {
  res.setHeader("ratelimit-limit", String(d.limit));
  res.setHeader("ratelimit-remaining", String(Math.max(0, d.remaining)));
  res.setHeader("ratelimit-reset", String(Math.max(0, d.resetSeconds)));
}

function tooMany(d: LimitDecision, res: ServerResponse): GatewayError {
  setHeaders(res, d);
  return new GatewayError(Status.RESOURCE_EXHAUSTED, "rate limit exceeded", 429, { "retry-after": String(d.retryAfterSeconds) });
}
