/** What every scenario gets from the orchestrator. */
import type { CpuPlan } from "./workers";

export interface BenchContext {
  readonly quick: boolean;
  /** Measured rounds per comparison (contenders interleaved inside each round). */
  readonly rounds: number;
  /** Warm-up and measured window of one contender in one round, in ms. */
  readonly warmupMs: number;
  readonly windowMs: number;
  readonly etcdEndpoints: string[];
  /** Registry namespace of this run. */
  readonly namespace: string;
  readonly cpus: CpuPlan;
  /** With `--profile`: where server and client workers write their CPU profiles. */
  readonly profileDir: string | undefined;
  /** With `--compiled`: the echo workers run from esbuild bundles with plain `node`. */
  readonly compiled: boolean;
  /** Progress line on stderr. */
  log(line: string): void;
}
