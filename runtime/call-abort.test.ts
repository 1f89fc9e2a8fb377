import { expect } from "chai";
import { EventEmitter } from "node:events";
import { Metadata } from "@grpc/grpc-js";
import { CallAbort, ServerCallContext, ServerCallRequest, abortStateOf } from "./call-abort";
import type { MethodDefinition } from "./definition";
import type { CallRequest } from "./interceptor";

class FakeCall extends EventEmitter {
  cancelled = false;
  cancel(): void {
    this.cancelled = true;
    this.emit("cancelled");
  }
}

const reasons = { cancelled: () => "cancelled", deadline: () => "deadline" };

describe("CallAbort: a served call's lazily made signal", () => {
  it("listens to nothing until the signal is asked for", () => {
    const call = new FakeCall();
    const abort = new CallAbort(call, Date.now() + 60_000, reasons);
    expect(call.listenerCount("cancelled")).to.equal(0);
    const signal = abort.signal;
    expect(call.listenerCount("cancelled")).to.equal(1);
    expect(abort.signal).to.equal(signal);
    abort.finish();
    expect(call.listenerCount("cancelled")).to.equal(0);
  });

  it("reports a cancellation that happened before the signal existed", () => {
    const call = new FakeCall();
    const abort = new CallAbort(call, undefined, reasons);
    call.cancel();
    expect(abort.aborted).to.equal(true);
    expect(abort.reason).to.equal("cancelled");
    expect(abort.signal.aborted).to.equal(true);
    expect(abort.signal.reason).to.equal("cancelled");
  });

  it("fires an existing signal on cancel, once, with the cancel reason", () => {
    const call = new FakeCall();
    const abort = new CallAbort(call, undefined, reasons);
    let fired = 0;
    abort.signal.addEventListener("abort", () => fired++);
    call.cancel();
    abort.abort("later");
    expect(fired).to.equal(1);
    expect(abort.signal.reason).to.equal("cancelled");
  });

  it("sees a passed deadline without a timer, and fires the signal's timer when it has one", async () => {
    const past = new CallAbort(new FakeCall(), Date.now() - 1, reasons);
    expect(past.aborted).to.equal(true);
    expect(past.reason).to.equal("deadline");

    const soon = new CallAbort(new FakeCall(), Date.now() + 20, reasons);
    const fired = new Promise((resolve) => soon.signal.addEventListener("abort", () => resolve(soon.signal.reason)));
    expect(await fired).to.equal("deadline");
  });

  it("keeps the state reached when the call finished and ignores the call afterwards", () => {
    const call = new FakeCall();
    const abort = new CallAbort(call, Date.now() + 5, reasons);
    abort.finish();
    call.cancel();
    expect(abort.aborted).to.equal(false);
    expect(abort.signal.aborted).to.equal(false);
  });

  it("lets interceptors read the state of a request without making the signal", () => {
    const call = new FakeCall();
    const abort = new CallAbort(call, undefined, reasons);
    let made = false;
    const real = Object.getOwnPropertyDescriptor(CallAbort.prototype, "signal")!;
    Object.defineProperty(abort, "signal", {
      get() {
        made = true;
        return real.get!.call(abort);
      },
    });
    const ctx = new ServerCallContext({} as MethodDefinition, new Metadata(), "ipv4:127.0.0.1:1", undefined, abort);
    const req = new ServerCallRequest(ctx, {});
    expect(abortStateOf(req).aborted).to.equal(false);
    call.cancel();
    expect(abortStateOf(req)).to.deep.equal({ aborted: true, reason: "cancelled" });
    expect(made).to.equal(false);
    expect(ctx.peekHeader()).to.equal(undefined);
    // A copy of the request (an interceptor spreading it) falls back to its signal.
    const copy: CallRequest = { ...req, signal: req.signal };
    expect(made).to.equal(true);
    expect(abortStateOf(copy).aborted).to.equal(true);
  });
});
