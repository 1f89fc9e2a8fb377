import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import type { MethodDefinition, ServiceDefinition } from "../definition";
import { buildServiceConfig, hashHeaderOf, type BalancerOption, type RetryOption } from "./service-config";
import { setup } from "./lb-consistent-hash";
import { setupBalancers } from "./setup";

function method(name: string, idempotency?: MethodDefinition["idempotency"]): MethodDefinition {
  const identity = (b: Buffer) => b;
  return {
    name,
    localName: name[0].toLowerCase() + name.slice(1),
    path: `/shop.v1.Cart/${name}`,
    kind: "unary",
    requestStream: false,
    responseStream: false,
    requestType: "shop.v1.Req",
    responseType: "shop.v1.Res",
    idempotency,
    requestSerialize: () => Buffer.alloc(0),
    requestDeserialize: identity,
    responseSerialize: () => Buffer.alloc(0),
    responseDeserialize: identity,
  };
}

const Cart: ServiceDefinition = {
  typeName: "shop.v1.Cart",
  file: "shop/v1/cart.proto",
  methods: {
    getCart: method("GetCart", "NO_SIDE_EFFECTS"),
    setItem: method("SetItem", "IDEMPOTENT"),
    checkout: method("Checkout"),
  },
  descriptors: [],
};

/** grpc-js accepts the config: it parses the LB policy, and a channel built with it starts without throwing. */
function acceptedByGrpc(config: ReturnType<typeof buildServiceConfig>): void {
  setup();
  setupBalancers();
  for (const lb of config.loadBalancingConfig) grpc.experimental.parseLoadBalancingConfig(lb);
  const client = new grpc.Client("127.0.0.1:1", grpc.credentials.createInsecure(), { "grpc.service_config": JSON.stringify(config) });
  client.close();
}

describe("service-config: balancer", () => {
  it("maps round_robin (the default) to the rule-aware protomesh_round_robin, and pick_first to the grpc-js built-in", () => {
    expect(buildServiceConfig(Cart).loadBalancingConfig).to.deep.equal([{ protomesh_round_robin: {} }]);
    expect(buildServiceConfig(Cart, { balancer: "round_robin" }).loadBalancingConfig).to.deep.equal([{ protomesh_round_robin: {} }]);
    expect(buildServiceConfig(Cart, { balancer: "pick_first" }).loadBalancingConfig).to.deep.equal([{ pick_first: {} }]);
    acceptedByGrpc(buildServiceConfig(Cart));
  });

  it("maps p2c with its defaults, validates its options, and wraps any balancer in outlier detection on request", () => {
    expect(buildServiceConfig(Cart, { balancer: "p2c" }).loadBalancingConfig).to.deep.equal([{ p2c: {} }]);
    const tuned = buildServiceConfig(Cart, { balancer: { p2c: { decayMs: 600 } } });
    expect(tuned.loadBalancingConfig).to.deep.equal([{ p2c: { decayMs: 600, defaultRttMs: 30, failurePenaltyMs: 250, forceAfterMs: 1000 } }]);
    acceptedByGrpc(tuned);
    expect(() => buildServiceConfig(Cart, { balancer: { p2c: { decayMs: -1 } } })).to.throw(RangeError, /balancer.p2c.decayMs must be a positive number/);
    expect(() => buildServiceConfig(Cart, { balancer: { p2c: { tau: 1 } as never } })).to.throw(TypeError, /balancer.p2c: unknown option "tau"/);
    const od = buildServiceConfig(Cart, { balancer: "p2c", outlierDetection: { threshold: 60 } });
    const wrapped = od.loadBalancingConfig[0] as { outlier_detection: { child_policy: object[]; failure_percentage_ejection: { threshold: number }; interval: object } };
    expect(wrapped.outlier_detection.child_policy).to.deep.equal([{ p2c: {} }]);
    expect(wrapped.outlier_detection.failure_percentage_ejection.threshold).to.equal(60);
    expect(wrapped.outlier_detection.interval).to.deep.equal({ seconds: 1, nanos: 0 });
    acceptedByGrpc(od);
    expect(() => buildServiceConfig(Cart, { balancer: "pick_first", outlierDetection: true })).to.throw(RangeError, /pick_first/);
    expect(() => buildServiceConfig(Cart, { outlierDetection: { threshold: 120 } })).to.throw(RangeError, /outlierDetection.threshold/);
  });

  it("maps least_request with its defaults and validates its options, naming the option", () => {
    expect(buildServiceConfig(Cart, { balancer: "least_request" }).loadBalancingConfig).to.deep.equal([{ least_request: {} }]);
    const tuned = buildServiceConfig(Cart, { balancer: { leastRequest: { choiceCount: 3 } } });
    expect(tuned.loadBalancingConfig).to.deep.equal([{ least_request: { choiceCount: 3, activeRequestBias: 1 } }]);
    acceptedByGrpc(tuned);
    acceptedByGrpc(buildServiceConfig(Cart, { balancer: "least_request", outlierDetection: true }));
    expect(() => buildServiceConfig(Cart, { balancer: { leastRequest: { choiceCount: 1 } } })).to.throw(RangeError, /balancer.leastRequest.choiceCount must be an integer from 2 to 100, got 1/);
    expect(() => buildServiceConfig(Cart, { balancer: { leastRequest: { choiceCount: 2.5 } } })).to.throw(RangeError, /choiceCount/);
    expect(() => buildServiceConfig(Cart, { balancer: { leastRequest: { activeRequestBias: 0 } } })).to.throw(RangeError, /balancer.leastRequest.activeRequestBias must be a number greater than 0/);
    expect(() => buildServiceConfig(Cart, { balancer: { leastRequest: { choices: 2 } as never } })).to.throw(TypeError, /balancer.leastRequest: unknown option "choices"/);
    expect(() => buildServiceConfig(Cart, { balancer: { leastRequest: [] as never } })).to.throw(TypeError, /balancer.leastRequest: expected an object, got an array/);
  });

  it("maps consistentHash to the consistent_hash policy with defaults filled in", () => {
    expect(buildServiceConfig(Cart, { balancer: { consistentHash: {} } }).loadBalancingConfig).to.deep.equal([
      { consistent_hash: { header: "x-protomesh-hash-key", vnodes: 1000 } },
    ]);
    const config = buildServiceConfig(Cart, { balancer: { consistentHash: { header: "X-User", vnodes: 200, boundedLoad: true } } });
    expect(config.loadBalancingConfig).to.deep.equal([{ consistent_hash: { header: "x-user", vnodes: 200, boundedLoad: 1.25 } }]);
    expect(buildServiceConfig(Cart, { balancer: { consistentHash: { boundedLoad: 2 } } }).loadBalancingConfig[0]).to.deep.include({
      consistent_hash: { header: "x-protomesh-hash-key", vnodes: 1000, boundedLoad: 2 },
    });
    acceptedByGrpc(config);
  });

  it("names the header a call's hashKey must set", () => {
    expect(hashHeaderOf({ consistentHash: { header: "X-User" } })).to.equal("x-user");
    expect(hashHeaderOf({ consistentHash: {} })).to.equal("x-protomesh-hash-key");
    expect(hashHeaderOf("round_robin")).to.equal("x-protomesh-hash-key");
    expect(hashHeaderOf(undefined)).to.equal("x-protomesh-hash-key");
  });

  it("rejects unknown balancers and bad consistentHash options, naming the option", () => {
    const bad = (balancer: unknown) => () => buildServiceConfig(Cart, { balancer: balancer as BalancerOption });
    expect(bad("random")).to.throw(RangeError, /balancer must be "pick_first", "round_robin", "p2c", "least_request", \{ p2c: \{…\} \}, \{ leastRequest: \{…\} \} or \{ consistentHash/);
    expect(bad({ ringHash: {} })).to.throw(TypeError, /balancer must be/);
    expect(bad({ consistentHash: { headr: "x" } })).to.throw(TypeError, /balancer.consistentHash: unknown option "headr"/);
    expect(bad({ consistentHash: { vnodes: 0 } })).to.throw(RangeError, /balancer.consistentHash.vnodes/);
    expect(bad({ consistentHash: { boundedLoad: 0.9 } })).to.throw(RangeError, /balancer.consistentHash.boundedLoad must be a finite factor greater than 1/);
    expect(bad({ consistentHash: { header: "grpc-x" } })).to.throw(RangeError, /balancer.consistentHash.header/);
    expect(bad({ consistentHash: "x-user" })).to.throw(TypeError, /balancer.consistentHash must be an object/);
  });
});

describe("service-config: retry", () => {
  it("adds no method config without retry", () => {
    expect(buildServiceConfig(Cart).methodConfig).to.deep.equal([]);
    expect(buildServiceConfig(Cart, { retry: false }).methodConfig).to.deep.equal([]);
  });

  it("retries the idempotent methods on UNAVAILABLE by default, 3 attempts", () => {
    const config = buildServiceConfig(Cart, { retry: true });
    expect(config.methodConfig).to.deep.equal([
      {
        name: [
          { service: "shop.v1.Cart", method: "GetCart" },
          { service: "shop.v1.Cart", method: "SetItem" },
        ],
        retryPolicy: { maxAttempts: 3, initialBackoff: "0.1s", maxBackoff: "1s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] },
      },
    ]);
    expect(buildServiceConfig(Cart, { retry: {} })).to.deep.equal(config);
    acceptedByGrpc(config);
  });

  it("takes listed methods by either spelling and every tunable", () => {
    const retry: RetryOption = {
      maxAttempts: 5,
      initialBackoffMs: 25,
      maxBackoffMs: 2500,
      backoffMultiplier: 1.5,
      retryableStatusCodes: [grpc.status.UNAVAILABLE, "resource_exhausted", "ABORTED", 14],
      methods: ["checkout", "GetCart"],
    };
    const config = buildServiceConfig(Cart, { retry });
    expect(config.methodConfig).to.deep.equal([
      {
        name: [
          { service: "shop.v1.Cart", method: "Checkout" },
          { service: "shop.v1.Cart", method: "GetCart" },
        ],
        retryPolicy: {
          maxAttempts: 5,
          initialBackoff: "0.025s",
          maxBackoff: "2.5s",
          backoffMultiplier: 1.5,
          retryableStatusCodes: ["UNAVAILABLE", "RESOURCE_EXHAUSTED", "ABORTED"],
        },
      },
    ]);
    acceptedByGrpc(config);
  });

  it("leaves the method config out when no method qualifies", () => {
    const plain: ServiceDefinition = { ...Cart, methods: { checkout: method("Checkout") } };
    expect(buildServiceConfig(plain, { retry: true }).methodConfig).to.deep.equal([]);
  });

  it("raises maxBackoff to a larger initialBackoff when only the latter is given", () => {
    const config = buildServiceConfig(Cart, { retry: { initialBackoffMs: 3000 } });
    expect(config.methodConfig[0].retryPolicy).to.include({ initialBackoff: "3s", maxBackoff: "3s" });
  });

  it("rejects bad retry options, naming the option", () => {
    const bad = (retry: unknown) => () => buildServiceConfig(Cart, { retry: retry as RetryOption });
    expect(bad({ maxAttempts: 1 })).to.throw(RangeError, /retry.maxAttempts must be an integer from 2 to 5/);
    expect(bad({ maxAttempts: 6 })).to.throw(RangeError, /retry.maxAttempts/);
    expect(bad({ maxAttempts: "3" })).to.throw(TypeError, /retry.maxAttempts must be a number/);
    expect(bad({ initialBackoffMs: 0 })).to.throw(RangeError, /retry.initialBackoffMs/);
    expect(bad({ maxBackoffMs: Infinity })).to.throw(RangeError, /retry.maxBackoffMs/);
    expect(bad({ initialBackoffMs: 500, maxBackoffMs: 100 })).to.throw(RangeError, /retry.maxBackoffMs \(100\) must not be less than retry.initialBackoffMs \(500\)/);
    expect(bad({ backoffMultiplier: 0 })).to.throw(RangeError, /retry.backoffMultiplier/);
    expect(bad({ retryableStatusCodes: [] })).to.throw(RangeError, /retry.retryableStatusCodes must name at least one/);
    expect(bad({ retryableStatusCodes: ["UNAVAILBLE"] })).to.throw(RangeError, /"UNAVAILBLE" is not a gRPC status code/);
    expect(bad({ retryableStatusCodes: [99] })).to.throw(RangeError, /99 is not a gRPC status code/);
    expect(bad({ retryableStatusCodes: ["OK"] })).to.throw(RangeError, /OK is not a failure/);
    expect(bad({ retryableStatusCodes: "UNAVAILABLE" })).to.throw(TypeError, /retry.retryableStatusCodes must be an array/);
    expect(bad({ methods: ["pay"] })).to.throw(RangeError, /retry.methods: shop.v1.Cart has no method "pay" \(it has getCart, setItem, checkout\)/);
    expect(bad({ methods: "all" })).to.throw(TypeError, /retry.methods must be "idempotent" or an array/);
    expect(bad({ maxAttempt: 3 })).to.throw(TypeError, /retry: unknown option "maxAttempt"/);
    expect(bad("yes")).to.throw(TypeError, /retry must be an object or a boolean/);
  });

  it("rejects something that is not a service definition", () => {
    expect(() => buildServiceConfig({} as ServiceDefinition)).to.throw(TypeError, /definition must be a generated ServiceDefinition/);
  });
});
