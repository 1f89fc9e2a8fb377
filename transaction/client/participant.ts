/**
 * A participant: a generated service definition plus where it runs. Its type parameter is the
 * definition's client interface, so method names and request types come from the proto.
 */
import { createClient, type ClientHandle, type ClientOptions } from "../../runtime/client";
import type { MethodDefinition, ServiceDefinition } from "../../runtime/definition";
import type { CallOptions } from "../../runtime/context";

export interface Participant<C> {
  readonly definition: ServiceDefinition<unknown, C>;
  /** `etcd:///service` or `host:port`. */
  readonly target: string;
  /** A typed client on the target, made on first use. */
  client(): C & ClientHandle;
  /** The method definition by local name (`tryDebit`); throws when the service has none. */
  method(localName: string): MethodDefinition;
  close(): void;
}

/**
 * Names a participant service for transactions.
 *
 * @example
 *   const bankA = participant(AccountDefinition, "etcd:///bank-a");
 */
export function participant<C>(definition: ServiceDefinition<unknown, C>, target: string, options: ClientOptions = {}): Participant<C> {
  if (typeof target !== "string" || target === "") throw new TypeError("participant: target must be etcd:///service or host:port");
  let client: (C & ClientHandle) | undefined;
  return {
    definition,
    target,
    client: () => (client ??= createClient(definition, target, options)),
    method(localName) {
      const m = Object.hasOwn(definition.methods, localName) ? definition.methods[localName] : undefined;
      if (!m) throw new TypeError(`${definition.typeName} has no method ${localName}`);
      if (m.kind !== "unary") throw new TypeError(`${definition.typeName}.${m.name} is ${m.kind}; transaction branches must be unary methods`);
      return m;
    },
    close() {
      client?.$close();
      client = undefined;
    },
  };
}

// ---- Types derived from a generated client interface ----

type Fn = (request: never, options?: CallOptions) => Promise<unknown>;
/** Local names of the unary methods of `C`. */
export type UnaryName<C> = { [K in keyof C & string]: C[K] extends Fn ? K : never }[keyof C & string];
/** The request type a method of `C` takes. */
export type RequestOf<C, K extends PropertyKey> = K extends keyof C ? (C[K] extends (request: infer R, options?: CallOptions) => unknown ? R : never) : never;
/** The response type a method of `C` resolves to. */
export type ResponseOf<C, K extends PropertyKey> = K extends keyof C ? (C[K] extends (request: never, options?: CallOptions) => Promise<infer R> ? R : never) : never;

/**
 * The TCC operations of `C`: `debit` when `C` has `tryDebit`, `confirmDebit` and `cancelDebit`
 * taking the same request type.
 */
export type TccName<C> = {
  [K in keyof C & string]: K extends `try${infer N}`
    ? `confirm${N}` extends keyof C
      ? `cancel${N}` extends keyof C
        ? RequestOf<C, K> extends RequestOf<C, `confirm${N}`>
          ? RequestOf<C, K> extends RequestOf<C, `cancel${N}`>
            ? Uncapitalize<N>
            : never
          : never
        : never
      : never
    : never;
}[keyof C & string];

/** Methods of `C` that take the same request as `K` (candidates for its compensation). */
export type SameRequest<C, K extends keyof C> = { [M in UnaryName<C>]: RequestOf<C, K> extends RequestOf<C, M> ? M : never }[UnaryName<C>];

export function tccMethods(name: string): { try: string; confirm: string; cancel: string } {
  const cap = name.charAt(0).toUpperCase() + name.slice(1);
  return { try: `try${cap}`, confirm: `confirm${cap}`, cancel: `cancel${cap}` };
}
