import { Metadata } from "@grpc/grpc-js";
import { expect } from "chai";
import { Registry } from "prom-client";
import { CallAbort, ServerCallContext, ServerCallRequest } from "./call-abort";
import type { MethodDefinition } from "./definition";
import type { CallRequest } from "./interceptor";
import { metricsInterceptor } from "./metrics";

describe("metricsInterceptor on a client-streaming served call", () => {
  it("hands the next interceptor a request that still has its lazy signal, and counts each message", async () => {
    const method = { path: "/t.v1.S/Upload", name: "Upload", kind: "client_streaming", requestStream: true, responseStream: false } as unknown as MethodDefinition;
    const call = { cancelled: false, once() {}, removeListener() {} };
    const abort = new CallAbort(call, undefined, { cancelled: () => "cancelled", deadline: () => "deadline" });
    const ctx = new ServerCallContext(method, new Metadata(), "ipv4:127.0.0.1:1", undefined, abort);
    const registry = new Registry();
    let seen: CallRequest | undefined;
    const chain = metricsInterceptor({ registry })(async (req) => {
      seen = req;
      let n = 0;
      for await (const _ of req.request as AsyncIterable<unknown>) n++;
      return { response: { n } } as never;
    });
    await chain(new ServerCallRequest(ctx, (async function* () { yield 1; yield 2; })()));
    expect(seen!.signal, "signal after the metrics interceptor").to.be.instanceOf(AbortSignal);
    expect(seen).to.be.instanceOf(ServerCallRequest);
    const received = (await registry.getMetricsAsJSON()).find((m) => m.name.endsWith("msg_received_total"));
    expect(received?.values.map((v) => v.value)).to.deep.equal([2]);
  });
});
