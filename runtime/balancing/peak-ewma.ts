/**
 * Peak-EWMA latency of one endpoint, after Finagle's PeakEwma and tower's peak_ewma (read, not
 * copied): a latency above the estimate replaces it at once (the peak), one below it blends in
 * with weight `1 − exp(−Δt/τ)`, and the estimate decays towards zero while nothing is observed,
 * so an endpoint that was slow long ago gets tried again. The load that p2c compares is
 * `latency × (pending + 1)`, where the latency is the estimate or, when larger, the mean age of
 * the calls still open on the endpoint. A finished call is the only thing the estimate learns
 * from, so without the age a hung endpoint would keep its last good estimate for as long as its
 * calls hang (up to their deadlines) and keep winning picks whenever its peers had more calls
 * pending; with it, the hung endpoint's cost grows with every millisecond its calls stay open.
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
  /** Calls started on this endpoint and not yet ended, and the sum of their start times. */
  private openCalls = 0;
  private openStartSum = 0;
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

  /** What p2c compares: max(latency estimate, mean age of the open calls) × (pending + 1). */
  load(now: number): number {
    let latency = this.latency(now);
    if (this.openCalls > 0) {
      const age = now - this.openStartSum / this.openCalls;
      if (age > latency) latency = age;
    }
    return latency * (this.pending + 1);
  }

  /** A call started on the endpoint at `at`; pair it with one `callClosed(at)` with the same `at`. */
  callOpened(at: number): void {
    this.openCalls++;
    this.openStartSum += at;
  }

  /** The call opened at `at` ended. */
  callClosed(at: number): void {
    if (this.openCalls <= 1) {
      this.openCalls = 0;
      this.openStartSum = 0; // no drift from adding and taking away large timestamps
      return;
    }
    this.openCalls--;
    this.openStartSum -= at;
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
