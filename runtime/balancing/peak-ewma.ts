/**
 * Peak-EWMA latency of one endpoint, after Finagle's PeakEwma and tower's peak_ewma (read, not
 * copied): a latency above the estimate replaces it at once (the peak), one below it blends in
 * with weight `1 − exp(−Δt/τ)`, and the estimate decays towards zero while nothing is observed,
 * so an endpoint that was slow long ago gets tried again. The load that p2c compares is
 * `estimate × (pending + 1)`.
 */

/** Settings of the estimate. */
export interface PeakEwmaSettings {
  /** Decay time constant τ in milliseconds (default 10,000). */
  readonly decayMs: number;
  /** Estimate of an endpoint with no history and no peers to borrow from, in milliseconds (default 30, as Linkerd). */
  readonly defaultRttMs: number;
  /** Latency a failed call counts as, at least, in milliseconds (default 250): errors count against an endpoint. */
  readonly failurePenaltyMs: number;
}

export const PEAK_EWMA_DEFAULTS: PeakEwmaSettings = { decayMs: 10_000, defaultRttMs: 30, failurePenaltyMs: 250 };

export class PeakEwma {
  /** Calls picked for this endpoint and not yet ended. */
  pending = 0;
  /** When p2c last sent it a call (ms, performance clock). */
  lastPicked: number;
  private estimate: number;
  private stamp: number;

  constructor(
    private readonly settings: PeakEwmaSettings,
    now: number,
    seedMs: number = settings.defaultRttMs,
  ) {
    this.estimate = seedMs;
    this.stamp = now;
    this.lastPicked = now;
  }

  /** The latency estimate at `now`, decayed since the last observation. */
  latency(now: number): number {
    const elapsed = now - this.stamp;
    return elapsed <= 0 ? this.estimate : this.estimate * Math.exp(-elapsed / this.settings.decayMs);
  }

  /** What p2c compares: latency × (pending + 1). */
  load(now: number): number {
    return this.latency(now) * (this.pending + 1);
  }

  /** Records one finished call. */
  observe(rttMs: number, failed: boolean, now: number): void {
    const rtt = failed ? Math.max(rttMs, this.settings.failurePenaltyMs) : Math.max(0, rttMs);
    const elapsed = Math.max(0, now - this.stamp);
    const current = this.latency(now);
    if (rtt > current) {
      this.estimate = rtt;
    } else {
      const w = Math.exp(-elapsed / this.settings.decayMs);
      this.estimate = current * w + rtt * (1 - w);
    }
    this.stamp = now;
  }

  /** Forgets the history (a new connection): starts again from `seedMs`. */
  reset(seedMs: number, now: number): void {
    this.estimate = seedMs;
    this.stamp = now;
  }
}
