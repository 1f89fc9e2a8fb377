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
  /**
   * The method definition by local name (`tryDebit`); throws a TypeError when the service has
   * none, and when `sameRequestAs` is given and the method takes another request message (one
   * encoded request goes to both: a compensation, a Confirm or a Cancel must take its action's
   * or Try's request type).
   */
  method(localName: string, sameRequestAs?: MethodDefinition): MethodDefinition;
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
    method(localName, sameRequestAs) {
      const m = Object.hasOwn(definition.methods, localName) ? definition.methods[localName] : undefined;
      if (!m) throw new TypeError(`${definition.typeName} has no method ${localName}`);
      if (m.kind !== "unary") throw new TypeError(`${definition.typeName}.${m.name} is ${m.kind}; transaction branches must be unary methods`);
      if (sameRequestAs && sameRequestAs.requestType !== m.requestType) {
        throw new TypeError(
          `${definition.typeName}.${m.name} takes ${m.requestType} but ${sameRequestAs.name} takes ${sameRequestAs.requestType}: both are sent the same request, so they must take the same request type`,
        );
      }
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
 * Whether `A` and `B` are the same type, not merely assignable one way: every field of a
 * generated request is optional, so `{ account? }` and `{ account?, amount? }` are assignable
 * both ways yet are different messages.
 */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

/**
 * The TCC operations of `C`: `debit` when `C` has unary `tryDebit`, `confirmDebit` and
 * `cancelDebit` taking the same request type. (Two messages with the same fields are the same
 * type to TypeScript; `TccBranches.call` also compares the proto type names at run time.)
 */
export type TccName<C> = {
  [K in UnaryName<C>]: K extends `try${infer N}`
    ? `confirm${N}` extends UnaryName<C>
      ? `cancel${N}` extends UnaryName<C>
        ? Same<RequestOf<C, K>, RequestOf<C, `confirm${N}`>> extends true
          ? Same<RequestOf<C, K>, RequestOf<C, `cancel${N}`>> extends true
            ? Uncapitalize<N>
            : never
          : never
        : never
      : never
    : never;
}[UnaryName<C>];

/**
 * Methods of `C` that take exactly the request type of `K` (candidates for its compensation).
 * As with `TccName`, `Saga.step` also compares the proto type names at run time.
 */
export type SameRequest<C, K extends keyof C> = { [M in UnaryName<C>]: Same<RequestOf<C, K>, RequestOf<C, M>> extends true ? M : never }[UnaryName<C>];

export function tccMethods(name: string): { try: string; confirm: string; cancel: string } {
  const cap = name.charAt(0).toUpperCase() + name.slice(1);
  return { try: `try${cap}`, confirm: `confirm${cap}`, cancel: `cancel${cap}` };
}
