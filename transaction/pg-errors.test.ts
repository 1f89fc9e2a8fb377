import { EventEmitter } from "node:events";
import { expect } from "chai";
import { hearErrors } from "./pg-errors";

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
