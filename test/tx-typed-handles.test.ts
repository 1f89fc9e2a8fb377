/**
 * Typed transaction handles: what the compiler refuses (the `@ts-expect-error` lines below are
 * checked by `npx tsc --noEmit -p tsconfig.json`, `npm run typecheck`: a line that compiles
 * makes the typecheck fail) and what `participant.method`, `saga().step` and `tcc`'s `call`
 * refuse at run time, where two request messages have the same fields and only their proto
 * type names tell them apart.
 */
import { expect } from "chai";
import type { CallOptions, DeepPartial, MethodDefinition, ServiceDefinition } from "../index";
import { createTxClient, participant, type TccName, type SameRequest } from "../transaction";
import { AccountDefinition, type AccountClient } from "../gen/examples/transfer/v1/transfer_protomesh";
import type { BalanceRequest, Leg, LegReply } from "../gen/examples/transfer/v1/transfer";

/** `Hold` has exactly `Leg`'s fields but is another message (`test.v1.Hold`). */
interface Hold {
  account: string;
  amount: number;
}

/** A ledger whose Cancel and undo take `Hold` (same fields, another type), and one whose Cancel takes `BalanceRequest`. */
interface LedgerClient {
  tryHold(request: DeepPartial<Leg>, options?: CallOptions): Promise<LegReply>;
  confirmHold(request: DeepPartial<Leg>, options?: CallOptions): Promise<LegReply>;
  cancelHold(request: DeepPartial<Hold>, options?: CallOptions): Promise<LegReply>;
  tryPeek(request: DeepPartial<Leg>, options?: CallOptions): Promise<LegReply>;
  confirmPeek(request: DeepPartial<Leg>, options?: CallOptions): Promise<LegReply>;
  cancelPeek(request: DeepPartial<BalanceRequest>, options?: CallOptions): Promise<LegReply>;
  move(request: DeepPartial<Leg>, options?: CallOptions): Promise<LegReply>;
  unmove(request: DeepPartial<Hold>, options?: CallOptions): Promise<LegReply>;
}

/** `AccountDefinition.methods.debit` renamed, taking `requestType`. */
function like(name: string, requestType: string): MethodDefinition {
  const base = AccountDefinition.methods.debit!;
  return { ...base, name, localName: name.charAt(0).toLowerCase() + name.slice(1), path: `/test.v1.Ledger/${name}`, requestType };
}

const LedgerDefinition: ServiceDefinition<unknown, LedgerClient> = {
  typeName: "test.v1.Ledger",
  file: "test/v1/ledger.proto",
  descriptors: [],
  methods: Object.fromEntries(
    (
      [
        ["TryHold", "examples.transfer.v1.Leg"],
        ["ConfirmHold", "examples.transfer.v1.Leg"],
        ["CancelHold", "test.v1.Hold"],
        ["TryPeek", "examples.transfer.v1.Leg"],
        ["ConfirmPeek", "examples.transfer.v1.Leg"],
        ["CancelPeek", "examples.transfer.v1.BalanceRequest"],
        ["Move", "examples.transfer.v1.Leg"],
        ["Unmove", "test.v1.Hold"],
      ] as const
    ).map(([name, type]) => {
      const m = like(name, type);
      return [m.localName, m];
    }),
  ),
};

const leg = { account: "alice", amount: 10 };

/** Compiled, never run: each `@ts-expect-error` must meet an error. */
export function refusedAtCompileTime(): void {
  const tx = createTxClient({ coordinator: "127.0.0.1:1" });
  const a = participant(AccountDefinition, "127.0.0.1:1");
  const ledger = participant(LedgerDefinition, "127.0.0.1:1");

  // Accepted: the generated pairs take one request type.
  tx.saga().step(a, "debit", "undoDebit", leg).step(a, "credit", "undoCredit", leg);
  void tx.tcc(async (t) => {
    await t.call(a, "debit", leg);
    // A wrong op name.
    // @ts-expect-error `debitt` is not a TCC operation of Account
    await t.call(a, "debitt", leg);
    // A saga method is not a TCC operation.
    // @ts-expect-error `undoDebit` has no tryUndoDebit/confirmUndoDebit/cancelUndoDebit
    await t.call(a, "undoDebit", leg);
    // A wrong request field.
    // @ts-expect-error `amout` is not a field of Leg
    await t.call(a, "debit", { account: "alice", amout: 10 });
    // Try and Confirm take Leg, Cancel takes BalanceRequest: not a TCC operation.
    // @ts-expect-error cancelPeek takes another request type than tryPeek
    await t.call(ledger, "peek", leg);
  });

  // A wrong op name.
  // @ts-expect-error `debitt` is not a method of Account
  tx.saga().step(a, "debitt", "undoDebit", leg);
  // @ts-expect-error `undoDebitt` is not a method of Account
  tx.saga().step(a, "debit", "undoDebitt", leg);
  // A wrong request field.
  // @ts-expect-error `amout` is not a field of Leg
  tx.saga().step(a, "debit", "undoDebit", { account: "alice", amout: 10 });
  // A compensation with another request type: Balance takes BalanceRequest ({ account }), which
  // every Leg is assignable to — the serializer would drop `amount`.
  // @ts-expect-error balance takes BalanceRequest, debit takes Leg
  tx.saga().step(a, "debit", "balance", leg);
  // @ts-expect-error the same, the other way round
  tx.saga().step(a, "balance", "debit", { account: "alice" });
  // Notifications and messages are typed by their method as well.
  // @ts-expect-error `amout` is not a field of Leg
  tx.message("127.0.0.1:1").add(a, "credit", { account: "bob", amout: 1 });
}

// Type-level checks of the helpers themselves.
type Expect<T extends true> = T;
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
export type TypeChecks = [
  Expect<Equal<TccName<AccountClient>, "debit" | "credit">>,
  Expect<Equal<SameRequest<AccountClient, "balance">, "balance">>,
  Expect<Equal<Exclude<SameRequest<AccountClient, "debit">, `${"try" | "confirm" | "cancel"}${string}`>, "debit" | "undoDebit" | "credit" | "undoCredit">>,
  // Same fields, other message: the compiler cannot tell; the run-time check below does.
  Expect<Equal<TccName<LedgerClient>, "hold">>,
  Expect<Equal<SameRequest<LedgerClient, "move">, "tryHold" | "confirmHold" | "cancelHold" | "tryPeek" | "confirmPeek" | "move" | "unmove">>,
];

describe("transactions: typed handles refuse a request of another type", () => {
  const tx = createTxClient({ coordinator: "127.0.0.1:1" });
  const a = participant(AccountDefinition, "127.0.0.1:1");
  const ledger = participant(LedgerDefinition, "127.0.0.1:1");
  after(() => {
    tx.close();
    a.close();
    ledger.close();
  });

  it("participant.method compares the request type names when asked to", () => {
    const debit = a.method("debit");
    expect(a.method("undoDebit", debit).requestType).to.equal("examples.transfer.v1.Leg");
    expect(() => a.method("balance", debit)).to.throw(
      TypeError,
      "examples.transfer.v1.Account.Balance takes examples.transfer.v1.BalanceRequest but Debit takes examples.transfer.v1.Leg: both are sent the same request, so they must take the same request type",
    );
  });

  it("saga().step throws a TypeError naming both types for a compensation of another request type", () => {
    expect(() => tx.saga().step(ledger, "move", "unmove", leg)).to.throw(TypeError, /test\.v1\.Ledger\.Unmove takes test\.v1\.Hold but Move takes examples\.transfer\.v1\.Leg/);
    // What the types let through only by a cast is refused too.
    expect(() => tx.saga().step(a, "debit", "balance" as "undoDebit", leg)).to.throw(TypeError, /Account\.Balance takes examples\.transfer\.v1\.BalanceRequest but Debit takes examples\.transfer\.v1\.Leg/);
  });

  it("tcc's call throws a TypeError naming both types before registering or calling anything", async () => {
    const err = await tx.tcc(async (t) => t.call(ledger, "hold", leg)).then(() => undefined, (e: unknown) => e as Error);
    expect(err).to.be.instanceOf(TypeError);
    expect(err!.message).to.equal("test.v1.Ledger.CancelHold takes test.v1.Hold but TryHold takes examples.transfer.v1.Leg: both are sent the same request, so they must take the same request type");
  });
});
