import { create, createFileRegistry, fromBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { canonicalTemplate } from "./path-template";
import { Router } from "./router";
import { RouteConfigError, serviceRoutes, type GatewayRoute } from "./routes";

/**
 * The routes in force, gathered from every source (generated definitions and
 * descriptor sets given at start, services discovered in the registry), each
 * with the upstream that serves it. Replaced as a whole when a source changes,
 * so a request sees one consistent table.
 */

/** A set of proto files and where the services in them are served. */
export interface RouteSource {
  /** Identifies the source (replacing a source with the same id replaces its routes). */
  readonly id: string;
  /** gRPC target of the upstream: `etcd:///<name>` or `host:port`. */
  readonly target: string;
  readonly files: readonly FileDescriptorProto[];
  /** Only these proto services (default: every service in `files`). */
  readonly services?: readonly string[];
}

/** A route bound to its upstream and its type registry. */
export interface BoundRoute extends GatewayRoute {
  readonly target: string;
  readonly registry: FileRegistry;
  readonly sourceId: string;
}

/** Files from base64 or binary `FileDescriptorProto`s (what generated definitions embed). */
export function filesFromDescriptors(descriptors: readonly (string | Uint8Array)[]): FileDescriptorProto[] {
  const seen = new Set<string>();
  const out: FileDescriptorProto[] = [];
  for (const d of descriptors) {
    const f = fromBinary(FileDescriptorProtoSchema, typeof d === "string" ? Buffer.from(d, "base64") : d);
    if (seen.has(f.name)) continue;
    seen.add(f.name);
    out.push(f);
  }
  return out;
}

/** Files from a serialized `FileDescriptorSet` (`buf build -o set.binpb`). */
export function filesFromDescriptorSet(bytes: Uint8Array): FileDescriptorProto[] {
  return fromBinary(FileDescriptorSetSchema, bytes).file;
}

/** The routes of one source; throws RouteConfigError on a bad annotation. */
export function sourceRoutes(source: RouteSource, unannotated: boolean): BoundRoute[] {
  let registry: FileRegistry;
  try {
    registry = createFileRegistry(create(FileDescriptorSetSchema, { file: [...source.files] }));
  } catch (err) {
    throw new RouteConfigError(`${source.id}: the descriptors do not form a complete set: ${(err as Error).message}`);
  }
  const ext = registry.getExtension("google.api.http");
  const out: BoundRoute[] = [];
  for (const type of registry) {
    if (type.kind !== "service") continue;
    if (source.services ? !source.services.includes(type.typeName) : isInfrastructure(type.typeName)) continue;
    for (const r of serviceRoutes(type, ext, { unannotated })) out.push({ ...r, target: source.target, registry, sourceId: source.id });
  }
  return out;
}

// Services every protomesh server offers; they are not part of an API.
function isInfrastructure(name: string): boolean {
  return name.startsWith("grpc.health.") || name.startsWith("grpc.reflection.");
}

export class RouteTable {
  private readonly sources = new Map<string, BoundRoute[]>();
  private current: Router<BoundRoute> = new Router([]);

  constructor(private readonly unannotated: boolean) {}

  get router(): Router<BoundRoute> {
    return this.current;
  }

  /**
   * Adds or replaces a source. Throws RouteConfigError, leaving the table as
   * it was, when its annotations are bad or clash with another source's.
   */
  put(source: RouteSource): BoundRoute[] {
    const routes = sourceRoutes(source, this.unannotated);
    const others = [...this.sources].filter(([id]) => id !== source.id).flatMap(([, r]) => r);
    checkConflicts([...others, ...routes]);
    this.sources.set(source.id, routes);
    this.rebuild();
    return routes;
  }

  remove(id: string): void {
    if (this.sources.delete(id)) this.rebuild();
  }

  private rebuild(): void {
    this.current = new Router([...this.sources.values()].flat());
  }
}

/** Same HTTP method and template shape for two different gRPC methods (or the same binding twice). */
export function checkConflicts(routes: readonly BoundRoute[]): void {
  const seen = new Map<string, BoundRoute>();
  for (const r of routes) {
    const key = `${r.httpMethod} ${canonicalTemplate(r.template, false)}`;
    const other = seen.get(key);
    if (other) {
      if (other.grpcPath === r.grpcPath && other.sourceId !== r.sourceId) {
        throw new RouteConfigError(`${r.origin}: ${key} is already served by ${other.grpcPath} from ${other.sourceId} (${r.sourceId} offers the same service)`);
      }
      throw new RouteConfigError(`conflicting HTTP bindings for ${key}: ${other.origin} and ${r.origin}`);
    }
    seen.set(key, r);
  }
}
