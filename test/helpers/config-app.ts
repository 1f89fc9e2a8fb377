/**
 * A stand-in application for cross-process config specs: loads the greeter
 * config and prints one JSON line per event on stdout:
 * `{"event":"loaded"|"changed","version":N,"greeting":…,"at":<epoch ms>}`.
 * Options come from the environment (ETCD_ENDPOINTS, PROTOMESH_NAMESPACE,
 * PROTOMESH_ENV, PROTOMESH_LABELS); the app name is argv[2]. Exits on stdin end.
 */
import { load } from "../../config";
import { GreeterConfigDefinition } from "./greeter-config";

async function main(): Promise<void> {
  const cfg = await load(GreeterConfigDefinition, { app: process.argv[2] ?? "greeter", cacheFile: process.env.CONFIG_CACHE_FILE || undefined });
  const emit = (event: string, version: number, greeting: string) =>
    process.stdout.write(`${JSON.stringify({ event, version, greeting, source: cfg.source, at: Date.now() })}\n`);
  cfg.watch((next, _prev, change) => emit("changed", change.version, next.greeting));
  emit("loaded", cfg.version, cfg.current.greeting);
  process.stdin.resume();
  process.stdin.on("end", () => void cfg.close().then(() => process.exit(0)));
}

main().catch((err) => {
  process.stdout.write(`${JSON.stringify({ event: "error", message: err instanceof Error ? err.message : String(err) })}\n`);
  process.exit(1);
});
