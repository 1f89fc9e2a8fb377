/**
 * The protos of everything registered, learnt through gRPC reflection from
 * one instance of each registered service, plus the project's own protos
 * when the console was given them. The API page documents these; the Config
 * page renders and validates config values with them. A service is asked
 * again after {@link STALE_MS} or when the instance it was learnt from left.
 */
import { create, createFileRegistry, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { ReflectionClient } from "../../explorer/reflection-client";
import type { Logger } from "../../runtime/logger";
import type { ServiceIndex } from "../services/service-index";

const STALE_MS = 30_000;
const REFLECTION_DEADLINE_MS = 4000;
const CONCURRENCY = 8;

/** What reflection said about one registered service. */
export interface LearntService {
  /** The registered name (`greeter`). */
  readonly registered: string;
  /** Proto services the instance serves (reflection and health left out). */
  readonly protoServices: readonly string[];
  readonly files: readonly FileDescriptorProto[];
  readonly from: string;
  readonly at: number;
  readonly error?: string;
}

export class DescriptorCatalog {
  private readonly learnt = new Map<string, LearntService>();
  private readonly inflight = new Map<string, Promise<LearntService>>();

  constructor(
    private readonly index: ServiceIndex,
    private readonly logger: Logger,
    /** The project's protos (`--protos`), always part of the catalog. */
    private readonly project?: { registry: FileRegistry; projectFiles: readonly string[] },
  ) {}

  /** What one registered service serves, asking an instance if needed. */
  async service(registered: string, refresh = false): Promise<LearntService> {
    const known = this.learnt.get(registered);
    const instance = this.index.instances({ service: registered, limit: 1 }).items[0];
    const fresh = known && Date.now() - known.at < STALE_MS && (!instance || known.from === instance.address);
    if (known && fresh && !refresh) return known;
    if (!instance) return known ?? { registered, protoServices: [], files: [], from: "", at: Date.now(), error: "no instance is registered" };
    let pending = this.inflight.get(registered);
    if (!pending) {
      pending = this.reflect(registered, instance.address).finally(() => this.inflight.delete(registered));
      this.inflight.set(registered, pending);
    }
    return pending;
  }

  /** Every registered service, learnt (a few at a time). */
  async all(refresh = false): Promise<LearntService[]> {
    const names = this.index.summaries().filter((s) => s.instances > 0).map((s) => s.name);
    const out: LearntService[] = [];
    for (let i = 0; i < names.length; i += CONCURRENCY) {
      out.push(...(await Promise.all(names.slice(i, i + CONCURRENCY).map((n) => this.service(n, refresh)))));
    }
    return out;
  }

  /** A registry of the given learnt services' files plus the project's. */
  registry(services: readonly LearntService[]): FileRegistry {
    const files = new Map<string, FileDescriptorProto>();
    if (this.project) for (const f of this.project.registry.files) files.set(f.proto.name, f.proto);
    for (const s of services) for (const f of s.files) if (!files.has(f.name)) files.set(f.name, f);
    return createFileRegistry(create(FileDescriptorSetSchema, { file: orderByImports([...files.values()]) }));
  }

  /** The project's own file names (to document beside what reflection found). */
  get projectFiles(): readonly string[] {
    return this.project?.projectFiles ?? [];
  }

  private async reflect(registered: string, address: string): Promise<LearntService> {
    const channel = new grpc.Client(address, grpc.credentials.createInsecure());
    const client = new ReflectionClient(channel, { deadline: Date.now() + REFLECTION_DEADLINE_MS });
    let result: LearntService;
    try {
      const names = (await client.listServices()).filter((n) => !n.startsWith("grpc.reflection.") && n !== "grpc.health.v1.Health");
      for (const n of names) await client.loadSymbol(n);
      result = { registered, protoServices: names, files: client.pool.protos(), from: address, at: Date.now() };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.logger.warn("console: reflection failed", { service: registered, address, err: message });
      result = { registered, protoServices: [], files: [], from: address, at: Date.now(), error: `reflection on ${address} failed: ${message}` };
    } finally {
      client.close();
      channel.close();
    }
    this.learnt.set(registered, result);
    return result;
  }
}

/** Files with their imports first, as createFileRegistry wants them. */
function orderByImports(files: FileDescriptorProto[]): FileDescriptorProto[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const out: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (f: FileDescriptorProto) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    for (const d of f.dependency) {
      const dep = byName.get(d);
      if (dep) visit(dep);
    }
    out.push(f);
  };
  files.forEach(visit);
  return out;
}
