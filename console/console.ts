/**
 * `startConsole`: one process serving the admin UI and its API, talking to
 * etcd (instances, config, users, audit), to running instances (reflection,
 * health, metrics) and to trace data. Each page is a module (its routes, its
 * UI page); adding a page is adding a module to {@link pageModules}.
 */
import type { FileRegistry } from "@bufbuild/protobuf";
import type { Etcd3 } from "etcd3";
import { EtcdDiscovery } from "../registry/etcd/discovery";
import { createEtcdClient, resolveEtcdOptions, type EtcdOptions } from "../registry/etcd/options";
import { registerEtcdResolver } from "../registry/etcd/resolver";
import { getLogger, type Logger } from "../runtime/logger";
import { DescriptorCatalog } from "./api-docs/descriptor-catalog";
import { apiDocsModule } from "./api-docs/api-docs-module";
import { TryCalls } from "./api-docs/try-calls";
import { AuditLog } from "./audit/audit-log";
import { auditModule } from "./audit/audit-module";
import { UserStore } from "./auth/users";
import { configModule } from "./config-center/config-module";
import { checkAuthMode, isLoopback, type AuthMode } from "./server/access";
import { startHttpServer, type RunningHttpServer } from "./server/console-server";
import type { ConsoleModule } from "./server/route";
import { checkAssets, defaultAssetsDir } from "./server/static-files";
import { ServiceIndex } from "./services/service-index";
import { servicesModule } from "./services/services-module";
import { JaegerSource } from "./traces/jaeger-source";
import { RedMetrics } from "./traces/red-metrics";
import { TraceStore } from "./traces/trace-store";
import { tracesModule } from "./traces/traces-module";
import { trafficModule } from "./traffic/traffic-module";
import { transactionsModule } from "./transactions/transactions-module";
import { DEFAULT_TX_SERVICE } from "../transaction/server/tx-server";

export interface ConsoleOptions extends EtcdOptions {
  /** Address to bind. Default 127.0.0.1. Anything but loopback needs `auth: "users"`. */
  host?: string;
  /** Default 8090; 0 picks a free port. */
  port?: number;
  /** Sign-in: `"none"` (loopback only; the default there) or `"users"` (the default elsewhere). */
  signIn?: AuthMode;
  /** The project's compiled protos (config schemas and API docs beside what reflection finds). */
  protos?: { registry: FileRegistry; projectFiles: readonly string[] };
  /** Embedded OTLP/HTTP receiver (on by default): how many traces it keeps. */
  traces?: { receiver?: boolean; maxTraces?: number; jaeger?: string };
  /** Where the built UI is. Default: the package's `dist/console-ui`. */
  assetsDir?: string;
  /** Mark the session cookie `Secure` (when served through HTTPS). */
  secureCookies?: boolean;
  /**
   * The HTTP gateway in front of the services (its base URL, e.g.
   * `http://127.0.0.1:8080`): shown on the Traffic & gateway page, and the
   * API page tries methods over HTTP through it where a route exists.
   */
  gateway?: string;
  /** The transaction coordinator the Transactions page asks (default `etcd:///protomesh-tx`). */
  transactions?: { coordinator?: string };
  /** Pages added by the caller (each a module with its routes). */
  extraModules?: (context: ConsoleContext) => ConsoleModule[];
}

/** What every page module can use. The etcd client never leaves the server. */
export interface ConsoleContext {
  readonly etcd: Etcd3;
  readonly etcdOptions: EtcdOptions;
  readonly namespace: string;
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  readonly audit: AuditLog;
  readonly services: ServiceIndex;
  readonly catalog: DescriptorCatalog;
}

export interface RunningConsole {
  readonly url: string;
  readonly port: number;
  readonly signIn: AuthMode;
  readonly users: UserStore;
  readonly audit: AuditLog;
  /** The embedded receiver's store, when on (`POST <url>v1/traces`). */
  readonly traceStore: TraceStore | undefined;
  close(): Promise<void>;
}

export const DEFAULT_CONSOLE_PORT = 8090;

export async function startConsole(options: ConsoleOptions = {}): Promise<RunningConsole> {
  const host = options.host ?? "127.0.0.1";
  const auth = options.signIn ?? (isLoopback(host) ? "none" : "users");
  checkAuthMode(host, auth);
  const gatewayUrl = options.gateway === undefined ? undefined : checkGatewayUrl(options.gateway);
  const jaegerUrl = options.traces?.jaeger ? checkHttpUrl("Jaeger", options.traces.jaeger, "http://jaeger:16686") : undefined;
  const assetsDir = options.assetsDir ?? defaultAssetsDir();
  checkAssets(assetsDir);
  const logger = options.logger ?? getLogger().child({ component: "console" });
  const resolved = resolveEtcdOptions({ ...options, logger });
  const etcd = createEtcdClient(resolved);
  const { namespace, callTimeoutMs } = resolved;
  const closers: (() => Promise<void> | void)[] = [() => etcd.close()];
  try {
    const users = new UserStore(etcd, namespace, callTimeoutMs);
    if (auth === "users" && !(await users.any())) {
      throw new Error(`sign-in is required but no console user exists in namespace ${namespace}: add one with \`protomesh console user add NAME --role admin\``);
    }
    const audit = new AuditLog(etcd, namespace, callTimeoutMs);
    const services = new ServiceIndex(etcd, namespace, callTimeoutMs, logger);
    closers.unshift(() => services.stop());
    await services.start();
    const catalog = new DescriptorCatalog(services, logger, options.protos);
    const etcdOptions: EtcdOptions = { endpoints: [...resolved.endpoints], namespace, tls: resolved.tls, auth: resolved.auth, callTimeoutMs, logger };
    const context: ConsoleContext = { etcd, etcdOptions, namespace, callTimeoutMs, logger, audit, services, catalog };

    const traceStore = options.traces?.receiver === false ? undefined : new TraceStore({ maxTraces: options.traces?.maxTraces });
    const jaeger = jaegerUrl ? new JaegerSource(jaegerUrl) : undefined;
    const traces = tracesModule({ store: traceStore, jaeger, red: new RedMetrics(services, traceStore) });
    registerEtcdResolver();
    const discovery = new EtcdDiscovery({ client: etcd, namespace, callTimeoutMs, logger });
    closers.unshift(() => discovery.close());
    let http: RunningHttpServer | undefined;
    const modules = pageModules(context, {
      traces: traces.module,
      api: apiDocsModule(catalog, new TryCalls(services, discovery), () => http?.sessions, gatewayUrl),
      traffic: trafficModule({ ...context, gatewayUrl }),
      transactions: transactionsModule({ coordinator: options.transactions?.coordinator ?? `etcd:///${DEFAULT_TX_SERVICE}`, discovery, audit, services }),
    });
    modules.push(...(options.extraModules?.(context) ?? []));
    closers.unshift(...modules.map((m) => () => m.close?.()));
    http = await startHttpServer({
      host,
      port: options.port ?? DEFAULT_CONSOLE_PORT,
      auth,
      users,
      modules,
      assetsDir,
      logger,
      secureCookies: options.secureCookies,
      publicRoutes: traces.publicRoutes,
    });
    const server = http;
    closers.unshift(() => server.close());
    logger.info("console serving", { url: server.url, auth });
    return {
      url: server.url,
      port: server.port,
      signIn: auth,
      users,
      audit,
      traceStore,
      close: () => runClosers(closers),
    };
  } catch (err) {
    await runClosers(closers);
    throw err;
  }
}

/** The pages, in navigation order. A new page is one more entry here plus its UI module. */
function pageModules(context: ConsoleContext, built: { traces: ConsoleModule; api: ConsoleModule; traffic: ConsoleModule; transactions: ConsoleModule }): ConsoleModule[] {
  return [
    servicesModule({ index: context.services, etcd: context.etcd, namespace: context.namespace, callTimeoutMs: context.callTimeoutMs, audit: context.audit }),
    configModule({ etcd: context.etcd, etcdOptions: context.etcdOptions, namespace: context.namespace, catalog: context.catalog, audit: context.audit }),
    built.api,
    built.traffic,
    built.transactions,
    built.traces,
    auditModule(context.audit),
  ];
}

/** The gateway's base URL, without a trailing slash; only http(s). */
function checkGatewayUrl(text: string): string {
  return checkHttpUrl("gateway", text, "http://127.0.0.1:8080");
}

/** A base URL the console calls (the gateway, Jaeger's query API), without a trailing slash; only http(s). */
function checkHttpUrl(what: string, text: string, example: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`the ${what} URL ${JSON.stringify(text)} is not a URL: give one such as ${example}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`the ${what} URL must be http:// or https://, got ${JSON.stringify(text)}`);
  return url.href.replace(/\/+$/, "");
}

async function runClosers(closers: (() => Promise<void> | void)[]): Promise<void> {
  for (const close of closers.splice(0)) {
    try {
      await close();
    } catch {
      // closing is best effort: one failure must not keep the rest open
    }
  }
}
