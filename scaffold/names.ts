/**
 * The names a scaffolded project derives from the one the user gives: the npm package, the etcd
 * service, the Kubernetes objects and Prometheus labels use it as is; the proto package, file and
 * service, and the TypeScript identifiers, are derived from it.
 */

/** Every spelling of a project's name that its files need. */
export interface ProjectNames {
  /** As given: `order-service` (npm package, etcd service name, Kubernetes names, `service` label). */
  readonly name: string;
  /** `OrderService`: the proto service and the generated `OrderServiceDefinition`. */
  readonly pascal: string;
  /** `orderService`: TypeScript values (`orderServiceHandlers`). */
  readonly camel: string;
  /** `order_service`: the proto package's first segment and the .proto file's name. */
  readonly snake: string;
  /** `order_service.v1`. */
  readonly protoPackage: string;
}

/** Longest name accepted: Kubernetes adds up to 22 characters to a Deployment's name for its pods (63 at most). */
export const MAX_NAME_LENGTH = 40;

/**
 * Names that would collide with what the framework or protobuf already own: `grpc.*` services are
 * left out of the metrics queries (health, reflection), and `google.*` / `protomesh.*` are taken.
 */
const RESERVED = new Set(["grpc", "google", "protomesh", "node-modules", "favicon-ico"]);

const PATTERN = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** The template proto's message names: a service of the same name would not compile. */
const TEMPLATE_MESSAGES = new Set(["SayHelloRequest", "SayHelloResponse", "StreamHellosRequest", "StreamHellosResponse"]);

/**
 * Why `name` cannot name a project, or undefined when it can. A name must be an npm package
 * name, an RFC 1035 label (Kubernetes Service names) and map to a proto package identifier:
 * lower-case letters, digits and single dashes, starting with a letter.
 */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return "the name is empty";
  if (name.length > MAX_NAME_LENGTH) return `it is ${name.length} characters long; the limit is ${MAX_NAME_LENGTH} (Kubernetes names of its pods must fit in 63)`;
  if (!PATTERN.test(name)) {
    return "use lower-case letters, digits and single dashes, starting with a letter and not ending with a dash (it becomes the npm package, the etcd service and the Kubernetes names)";
  }
  if (RESERVED.has(name)) {
    return `"${name}" is reserved (grpc.*, google.* and protomesh.* name the framework's own services)`;
  }
  if (TEMPLATE_MESSAGES.has(projectNames(name).pascal)) return `its proto service would be called ${projectNames(name).pascal}, like a message of the template`;
  return undefined;
}

/** The spellings of a valid `name` (check it with {@link nameProblem} first). */
export function projectNames(name: string): ProjectNames {
  const words = name.split("-");
  const pascal = words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("");
  const snake = words.join("_");
  return { name, pascal, camel: pascal.charAt(0).toLowerCase() + pascal.slice(1), snake, protoPackage: `${snake}.v1` };
}
