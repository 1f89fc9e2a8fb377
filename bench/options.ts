/** Command-line flags of `npm run bench`. */

export const SCENARIOS = ["unary", "streaming", "discovery", "hash", "scale", "overhead", "instructions", "tx"] as const;
/** What a run without `--only` does: `instructions` (valgrind, minutes per process) only on request. */
export const DEFAULT_SCENARIOS = SCENARIOS.filter((s) => s !== "instructions");
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  /** Seconds instead of minutes: proves the harness works, judges nothing. */
  quick: boolean;
  only: ScenarioName[];
  rounds: number;
  warmupMs: number;
  windowMs: number;
  /** Pin servers and clients to separate cores (default on). */
  pin: boolean;
  /** Write each server and client worker's CPU profile (`--cpu-prof`) into this directory. */
  profileDir: string | undefined;
  /**
   * Run the echo servers and clients from esbuild bundles with plain `node` instead of through
   * tsx, as a deployment runs compiled JavaScript (tsx wraps every closure in a naming call).
   */
  compiled: boolean;
  /** Also write the Markdown report here. */
  out: string | undefined;
  /** Also write every raw figure here, as JSON. */
  json: string | undefined;
}

export const USAGE = `usage: npm run bench -- [--quick] [--only ${SCENARIOS.join(",")}] [--rounds N] [--window-ms MS] [--warmup-ms MS]
                         [--no-pin] [--compiled] [--profile DIR] [--out FILE.md] [--json FILE.json]`;

export function parseOptions(argv: readonly string[]): BenchOptions {
  const quick = argv.includes("--quick");
  const options: BenchOptions = {
    quick,
    only: [...DEFAULT_SCENARIOS],
    rounds: quick ? 1 : 8,
    warmupMs: quick ? 100 : 300,
    windowMs: quick ? 300 : 1500,
    pin: true,
    profileDir: undefined,
    compiled: false,
    out: undefined,
    json: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer, got ${v}`);
      return n;
    };
    switch (flag) {
      case "--quick":
        break;
      case "--only":
        options.only = value().split(",").map((s) => {
          const name = s.trim() as ScenarioName;
          if (!SCENARIOS.includes(name)) throw new Error(`--only: unknown scenario "${s}" (${SCENARIOS.join(", ")})`);
          return name;
        });
        break;
      case "--rounds":
        options.rounds = positive(value());
        break;
      case "--window-ms":
        options.windowMs = positive(value());
        break;
      case "--warmup-ms":
        options.warmupMs = positive(value());
        break;
      case "--no-pin":
        options.pin = false;
        break;
      case "--compiled":
        options.compiled = true;
        break;
      case "--profile":
        options.profileDir = value();
        break;
      case "--out":
        options.out = value();
        break;
      case "--json":
        options.json = value();
        break;
      case "--help":
      case "-h":
        throw new Error(USAGE);
      default:
        throw new Error(`unknown flag ${flag}\n${USAGE}`);
    }
  }
  return options;
}
