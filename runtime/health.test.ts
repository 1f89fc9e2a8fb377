import { expect } from "chai";
import { HealthBoard } from "./health";

describe("HealthBoard", () => {
  const served = ["shop.v1.Orders", "shop.v1.Carts"];

  it("follows the lifecycle: NOT_SERVING before listen, SERVING while serving, NOT_SERVING once stopping", () => {
    const board = new HealthBoard(() => served);
    expect(board.status("")).to.equal("NOT_SERVING");
    board.serving();
    expect(board.status("")).to.equal("SERVING");
    expect(board.status("shop.v1.Orders")).to.equal("SERVING");
    board.set("shop.v1.Orders", "SERVING");
    board.stopping();
    expect(board.status("shop.v1.Orders")).to.equal("NOT_SERVING");
    board.set("shop.v1.Orders", "SERVING");
    expect(board.status("shop.v1.Orders"), "shutdown wins over a status set by hand").to.equal("NOT_SERVING");
  });

  it("reports SERVICE_UNKNOWN for names it does not serve until a status is set for them", () => {
    const board = new HealthBoard(() => served);
    board.serving();
    expect(board.status("shop.v1.Nope")).to.equal("SERVICE_UNKNOWN");
    board.set("shop.v1.Nope", "NOT_SERVING");
    expect(board.status("shop.v1.Nope")).to.equal("NOT_SERVING");
    board.reset("shop.v1.Nope");
    expect(board.status("shop.v1.Nope")).to.equal("SERVICE_UNKNOWN");
  });

  it("tells watchers the current status, then only changes, and ends them when stopping", () => {
    const board = new HealthBoard(() => served);
    board.serving();
    const seen: string[] = [];
    board.watch("shop.v1.Carts", (s) => seen.push(s), () => seen.push("END"));
    board.set("shop.v1.Orders", "NOT_SERVING");
    board.set("shop.v1.Carts", "SERVING");
    board.set("shop.v1.Carts", "NOT_SERVING");
    board.reset("shop.v1.Carts");
    board.stopping();
    board.set("shop.v1.Carts", "SERVING");
    expect(seen).to.deep.equal(["SERVING", "NOT_SERVING", "SERVING", "NOT_SERVING", "END"]);
  });

  it("answers a watch opened during shutdown once and ends it", () => {
    const board = new HealthBoard(() => served);
    board.serving();
    board.stopping();
    const seen: string[] = [];
    board.watch("", (s) => seen.push(s), () => seen.push("END"));
    expect(seen).to.deep.equal(["NOT_SERVING", "END"]);
  });

  it("stops telling a watcher that unsubscribed", () => {
    const board = new HealthBoard(() => served);
    board.serving();
    const seen: string[] = [];
    const stop = board.watch("", (s) => seen.push(s), () => seen.push("END"));
    stop();
    board.set("", "NOT_SERVING");
    board.stopping();
    expect(seen).to.deep.equal(["SERVING"]);
  });

  it("rejects statuses other than SERVING and NOT_SERVING", () => {
    const board = new HealthBoard(() => served);
    expect(() => board.set("", "SERVICE_UNKNOWN" as never)).to.throw(TypeError, /SERVING/);
  });
});
