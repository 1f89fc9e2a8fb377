/**
 * The transactions scenario on its own (`npm run bench -- --only tx` runs the same code inside
 * the harness): starts a private etcd, then see `scenario-tx.ts`.
 *
 *   node bin/run.js bench/tx.ts [--seconds 4] [--rounds 3] [--concurrency 16] [--no-embedded] [--no-fsync]
 *                               [--only saga --only TCC] [--profile dir] [--compiled] [--bound]
 *
 * `--only` keeps the variants whose name contains the text (the baseline always runs);
 * `--profile` writes a CPU profile of each worker (bank, coordinator) to `dir` when it exits;
 * `--compiled` runs the workers from bundled JavaScript with plain node instead of through tsx;
 * `--bound` adds a saga whose steps are the baseline's plain UPDATEs, without the barrier (what
 * the coordinator alone costs: the most a cheaper barrier could reach).
 *
 * Postgres keeps fsync on (its default, as deployed) unless `--no-fsync`.
 */
import { parseArgs } from "node:util";
import { startEmbeddedEtcd } from "protomesh";
import { runTxBench, txTable } from "./scenario-tx";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: "string" }, rounds: { type: "string" }, concurrency: { type: "string" }, "no-embedded": { type: "boolean" }, "no-fsync": { type: "boolean" }, only: { type: "string", multiple: true }, profile: { type: "string" }, compiled: { type: "boolean" }, bound: { type: "boolean" } } });
  const settings = {
    seconds: Number(values.seconds ?? 4),
    rounds: Number(values.rounds ?? 3),
    concurrency: Number(values.concurrency ?? 16),
    embedded: !values["no-embedded"],
    durable: !values["no-fsync"],
  };
  const extra = { only: values.only, profileDir: values.profile, compiled: values.compiled, bound: values.bound };
  for (const [k, v] of Object.entries(settings)) if (typeof v === "number" && !(v > 0)) throw new Error(`--${k} needs a positive number`);
  const etcd = await startEmbeddedEtcd();
  try {
    const rows = await runTxBench({ ...settings, ...extra }, etcd.endpoints, "txbench", (s) => process.stderr.write(`[tx bench] ${s}\n`));
    process.stdout.write(`Postgres fsync ${settings.durable ? "on" : "off"}, concurrency ${settings.concurrency}, ${settings.rounds} rounds × ${settings.seconds} s per variant, median round by throughput\n\n${txTable(rows)}\n`);
  } finally {
    await etcd.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
