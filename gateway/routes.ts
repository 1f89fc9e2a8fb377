import { getOption, hasOption, type DescExtension, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { compileTemplate, type CompiledTemplate } from "./path-match";
import { parseTemplate, TemplateSyntaxError, type PathTemplate } from "./path-template";

/**
 * Routes derived from `google.api.http` annotations (and, when asked, a
 * `POST /package.Service/Method` route for methods without one). Every check
 * the spec implies is made here, once, so a bad annotation stops the gateway at
 * start-up with the proto file and method named, instead of misrouting later.
 */

/** One HTTP binding of one gRPC method. */
export interface GatewayRoute {
  readonly httpMethod: string;
  readonly template: PathTemplate;
  readonly compiled: CompiledTemplate;
  readonly method: DescMethod;
  /** `/package.Service/Method`. */
  readonly grpcPath: string;
  readonly service: string;
  /** `*`, a top-level request field name, or undefined (no body). */
  readonly body: string | undefined;
  /** The body field's descriptor when `body` names one. */
  readonly bodyField: DescField | undefined;
  /** The response field sent as the body instead of the whole message. */
  readonly responseBody: DescField | undefined;
  /** Path variables: dotted proto name → the fields from the request message down to the leaf. */
  readonly pathFields: ReadonlyMap<string, readonly DescField[]>;
  /** Where it came from, for messages: `file.proto: pkg.Service.Method`. */
  readonly origin: string;
  /** From an annotation, or made up for an unannotated method. */
  readonly kind: "annotated" | "default";
}

/** An annotation that cannot be served; the message names the proto file and method. */
export class RouteConfigError extends Error {
  override readonly name = "RouteConfigError";
}

export interface BuildRoutesOptions {
  /** Also route `POST /package.Service/Method` (JSON body) for methods without annotations. */
  unannotated?: boolean;
  /** Limit to these services (full names); default every service in the registry. */
  services?: readonly string[];
}

const HTTP_KINDS = ["get", "put", "post", "delete", "patch"] as const;

/** The routes of one service. */
export function serviceRoutes(service: DescService, ext: DescExtension | undefined, options: BuildRoutesOptions = {}): GatewayRoute[] {
  const out: GatewayRoute[] = [];
  for (const method of service.methods) {
    const rule = ext && hasOption(method, ext) ? (getOption(method, ext) as unknown as HttpRuleShape) : undefined;
    if (rule) {
      out.push(bindingRoute(method, rule, false));
      for (const extra of rule.additionalBindings ?? []) {
        if ((extra.additionalBindings ?? []).length > 0) throw new RouteConfigError(`${origin(method)}: additional_bindings nest one level only`);
        out.push(bindingRoute(method, extra, true));
      }
    } else if (options.unannotated) {
      const grpcPath = `/${service.typeName}/${method.name}`;
      const template = parseTemplate(grpcPath.replace(/\//g, "/"));
      out.push({
        httpMethod: "POST",
        template,
        compiled: compileTemplate(template),
        method,
        grpcPath,
        service: service.typeName,
        body: "*",
        bodyField: undefined,
        responseBody: undefined,
        pathFields: new Map(),
        origin: origin(method),
        kind: "default",
      });
    }
  }
  return out;
}

/** The fields of a dynamic `google.api.HttpRule` message the gateway reads. */
interface HttpRuleShape {
  pattern: { case: string | undefined; value?: unknown };
  body: string;
  responseBody: string;
  additionalBindings?: HttpRuleShape[];
}

function bindingRoute(method: DescMethod, rule: HttpRuleShape, additional: boolean): GatewayRoute {
  const where = `${origin(method)}${additional ? " (additional_bindings)" : ""}`;
  let httpMethod: string;
  let path: string;
  const p = rule.pattern;
  if (p.case !== undefined && (HTTP_KINDS as readonly string[]).includes(p.case)) {
    httpMethod = p.case.toUpperCase();
    path = String(p.value);
  } else if (p.case === "custom") {
    const custom = p.value as { kind: string; path: string };
    httpMethod = custom.kind.toUpperCase();
    path = custom.path;
    if (!/^[A-Z][A-Z0-9-]*$/.test(httpMethod)) throw new RouteConfigError(`${where}: custom method kind ${JSON.stringify(custom.kind)} is not an HTTP method token`);
  } else {
    throw new RouteConfigError(`${where}: google.api.http names no pattern (get, put, post, delete, patch or custom)`);
  }
  let template: PathTemplate;
  try {
    template = parseTemplate(path);
  } catch (err) {
    if (err instanceof TemplateSyntaxError) throw new RouteConfigError(`${where}: ${err.message}`);
    throw err;
  }
  const input = method.input;
  const pathFields = new Map<string, readonly DescField[]>();
  for (const v of template.variables) {
    const name = v.fieldPath.join(".");
    pathFields.set(name, resolvePathField(input, v.fieldPath, `${where}: path variable {${name}}`));
  }
  let bodyField: DescField | undefined;
  const body = rule.body === "" ? undefined : rule.body;
  if (body !== undefined && body !== "*") {
    const f = input.fields.find((x) => x.name === body);
    if (!f) throw new RouteConfigError(`${where}: body ${JSON.stringify(body)} is not a field of ${input.typeName}`);
    if (f.fieldKind === "list" || f.fieldKind === "map") throw new RouteConfigError(`${where}: body ${JSON.stringify(body)} is a repeated or map field; name a message field or use "*"`);
    bodyField = f;
  }
  let responseBody: DescField | undefined;
  if (rule.responseBody !== "") {
    responseBody = method.output.fields.find((x) => x.name === rule.responseBody);
    if (!responseBody) throw new RouteConfigError(`${where}: response_body ${JSON.stringify(rule.responseBody)} is not a field of ${method.output.typeName}`);
  }
  if ((method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") && body !== "*") {
    throw new RouteConfigError(`${where}: a client-streaming method needs body: "*" (the request stream is the body)`);
  }
  return {
    httpMethod,
    template,
    compiled: compileTemplate(template),
    method,
    grpcPath: `/${method.parent.typeName}/${method.name}`,
    service: method.parent.typeName,
    body,
    bodyField,
    responseBody,
    pathFields,
    origin: where,
    kind: "annotated",
  };
}

function resolvePathField(input: DescMessage, path: readonly string[], where: string): DescField[] {
  const chain: DescField[] = [];
  let msg: DescMessage | undefined = input;
  for (let i = 0; i < path.length; i++) {
    if (!msg) throw new RouteConfigError(`${where}: ${path.slice(0, i).join(".")} is not a message`);
    const f: DescField | undefined = msg.fields.find((x) => x.name === path[i]);
    if (!f) throw new RouteConfigError(`${where}: ${msg.typeName} has no field ${path[i]}`);
    if (f.fieldKind === "list" || f.fieldKind === "map") throw new RouteConfigError(`${where}: ${f.name} is repeated or a map; path variables bind single values`);
    chain.push(f);
    msg = f.fieldKind === "message" ? f.message : undefined;
  }
  const leaf = chain[chain.length - 1];
  if (leaf.fieldKind === "message" && !PATH_WKT.has(leaf.message.typeName)) {
    throw new RouteConfigError(`${where}: ${leaf.name} is a message; path variables bind scalar fields`);
  }
  return chain;
}

// Well-known types whose JSON form is one string, so a path segment can hold them.
const PATH_WKT = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.StringValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
]);

function origin(method: DescMethod): string {
  return `${method.parent.file.proto.name}: ${method.parent.typeName}.${method.name}`;
}
