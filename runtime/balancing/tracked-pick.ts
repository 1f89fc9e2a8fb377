/**
 * A COMPLETE pick whose call is counted against its endpoint from the pick until it ends, and
 * whose start and end the balancer hears about: one object (the pick result itself) and its two
 * callbacks per call, for `p2c`, `least_request` and `consistent_hash` with bounded load.
 *
 * Why from the pick: grpc-js runs `onCallStarted` only after an asynchronous credentials step,
 * so counting from there would let every pick of a burst (all made in one tick) see the load
 * from before the burst, and the burst would land on one endpoint. A pick whose call has not
 * started by the next turn of the event loop (cancelled, or picked again because its subchannel
 * left READY) gives its count back then; should it start later after all (slow call
 * credentials), it counts again from its start.
 */
import * as grpc from "@grpc/grpc-js";
import type { experimental } from "@grpc/grpc-js";

type PickResult = experimental.PickResult;
type OnCallEnded = NonNullable<PickResult["onCallEnded"]>;

/** What a tracked pick reports to its endpoint's state. */
export interface CallObserver {
  /** One more call counts against the endpoint (at the pick, or at a late start after a release). */
  claim(): void;
  /** One call no longer counts (it ended, or did not start within its turn). */
  release(): void;
  /** The call started at `at` (performance clock, ms); called at most once per call. */
  opened(at: number): void;
  /**
   * The call ended with `code`, `now` ms on the performance clock; it had been picked at
   * `pickedAt` and opened at `openedAt` (-1 when it never started).
   */
  closed(code: grpc.status, pickedAt: number, openedAt: number, now: number): void;
}

const enum State {
  Picked,
  Started,
  Ended,
}

const { PickResultType } = grpc.experimental;

export class TrackedPick implements PickResult {
  readonly pickResultType = PickResultType.COMPLETE;
  readonly subchannel: PickResult["subchannel"];
  readonly status = null;
  readonly onCallStarted: () => void;
  readonly onCallEnded: OnCallEnded;
  private state = State.Picked;
  private readonly pickedIn = turn;
  private openedAt = -1;

  /** `child` is the endpoint's own COMPLETE pick; its callbacks still run. */
  constructor(child: PickResult, observer: CallObserver, pickedAt: number) {
    this.subchannel = child.subchannel;
    const childStarted = child.onCallStarted;
    const childEnded = child.onCallEnded;
    observer.claim();
    unstarted.set(observer, (unstarted.get(observer) ?? 0) + 1);
    if (!releaseScheduled) {
      releaseScheduled = true;
      setImmediate(releaseUnstarted);
    }
    // Each callback goes through a local before it becomes a property: V8 allocates a function
    // literal assigned straight to a property in the old generation, one per pick here.
    const onCallStarted = (): void => {
      if (this.state === State.Picked) {
        this.state = State.Started;
        if (this.pickedIn === turn) settle(observer);
        else observer.claim(); // released meanwhile: count it again
        this.openedAt = performance.now();
        observer.opened(this.openedAt);
      }
      childStarted?.();
    };
    const onCallEnded: OnCallEnded = (code, details, metadata) => {
      if (this.state !== State.Ended) {
        const wasStarted = this.state === State.Started;
        this.state = State.Ended;
        // An unstarted pick of an earlier turn was released already.
        if (wasStarted || this.pickedIn === turn) {
          if (!wasStarted) settle(observer);
          observer.release();
        }
        observer.closed(code, pickedAt, this.openedAt, performance.now());
      }
      childEnded?.(code, details, metadata);
    };
    this.onCallStarted = onCallStarted;
    this.onCallEnded = onCallEnded;
  }
}

/** Advances once per event-loop turn in which calls were picked; unstarted picks of earlier turns are released. */
let turn = 0;
let releaseScheduled = false;
/** Picks of the current turn whose calls have not started, per observer. */
const unstarted = new Map<CallObserver, number>();

/** No longer waiting to start. */
function settle(observer: CallObserver): void {
  unstarted.set(observer, unstarted.get(observer)! - 1);
}

function releaseUnstarted(): void {
  releaseScheduled = false;
  turn++;
  for (const [observer, count] of unstarted) for (let i = 0; i < count; i++) observer.release();
  unstarted.clear();
}
