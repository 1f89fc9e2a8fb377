/**
 * Background work a test starts (a steady call load) must not outlive the test, even when the
 * test fails half-way before its own `stop()`: a load left calling keeps making calls, spans
 * and log lines that the next specs in the same process would count as theirs. Loads register
 * here; a root `afterEach` hook stops whatever a test left running. Loads started in a
 * suite's `before` hook belong to the suite and are left alone.
 */
interface Stoppable {
  stop(): Promise<unknown>;
}

const leftovers = new Set<Stoppable>();
let inTest = false;

/** Registers `work` to be stopped after the current test if it is still running then. */
export function stopAfterTest<T extends Stoppable>(work: T): T {
  if (!inTest) return work;
  leftovers.add(work);
  const stop = work.stop.bind(work);
  work.stop = () => {
    leftovers.delete(work);
    return stop();
  };
  return work;
}

/** Root hooks (exported as `mochaHooks` by test/setup.ts). */
export const leftoverHooks = {
  beforeEach(): void {
    inTest = true;
  },
  async afterEach(): Promise<void> {
    inTest = false;
    const left = [...leftovers];
    leftovers.clear();
    await Promise.all(left.map((w) => w.stop().catch(() => undefined)));
  },
};
