import { EventEmitter } from "node:events";
import { expect } from "chai";
import { hearErrors, refusesWrites, storeFailureText } from "./pg-errors";

describe("hearErrors (pg connections of the store and the barrier)", () => {
  it("adds one listener per connection however often it is called, and an error event no longer throws", () => {
    const conn = new EventEmitter();
    expect(() => conn.emit("error", new Error("unheard"))).to.throw("unheard");
    hearErrors(conn);
    hearErrors(conn); // the pool's "connect" event, then a checkout by the store or the barrier
    expect(conn.listenerCount("error")).to.equal(1);
    expect(() => conn.emit("error", new Error("terminating connection due to administrator command"))).not.to.throw();
  });
});

describe("storeFailureText (how the coordinator words a store failure)", () => {
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });
  it("says the store refuses writes for a read-only transaction, a missing privilege or a full disk, and unavailable otherwise", () => {
    expect(storeFailureText(pgError("25006", "cannot execute INSERT in a read-only transaction"))).to.equal("transaction store refuses writes (SQLSTATE 25006): cannot execute INSERT in a read-only transaction");
    expect(refusesWrites(pgError("42501", "permission denied for table protomesh_tx_global"))).to.equal(true);
    expect(refusesWrites(pgError("53100", "could not extend file"))).to.equal(true);
    expect(storeFailureText(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }))).to.equal("transaction store unavailable: connect ECONNREFUSED 127.0.0.1:5432");
    expect(storeFailureText("gone")).to.equal("transaction store unavailable: gone");
    expect(refusesWrites(undefined)).to.equal(false);
  });
});
