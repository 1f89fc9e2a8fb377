import { expect } from "chai";
import { decodeInstance, encodeInstance, instanceKey, isHostPort, MAX_VALUE_BYTES, servicePrefix } from "../registry/etcd/keys";
import type { InstanceInfo } from "../runtime/balancing/instances";

const where = { prefix: servicePrefix("default", "echo"), service: "echo" };
const good: InstanceInfo = {
  id: "a",
  service: "echo",
  address: "127.0.0.1:5000",
  version: "1",
  zone: "z",
  weight: 2,
  metadata: { k: "v" },
  startedAt: 1700000000000,
};

function decode(value: unknown, id = "a") {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return decodeInstance(where, where.prefix + id, Buffer.from(text));
}

describe("registry keys and values", () => {
  it("lays keys out as /protomesh/<ns>/services/<service>/<id>", () => {
    expect(instanceKey("prod", "greeter", "g-1")).to.equal("/protomesh/prod/services/greeter/g-1");
    expect(() => instanceKey("prod", "a/b", "x")).to.throw(/invalid service/);
    expect(() => instanceKey("prod", "a", "")).to.throw(/invalid instance id/);
  });

  it("round-trips an instance", () => {
    expect(decode(JSON.parse(encodeInstance(good)))).to.deep.equal({ ok: true, instance: good });
  });

  it("refuses to encode more than 4 KiB", () => {
    expect(() => encodeInstance({ ...good, metadata: { pad: "x".repeat(MAX_VALUE_BYTES) } })).to.throw(/4096-byte limit/);
  });

  it("fills absent optional fields with defaults", () => {
    const result = decode({ id: "a", service: "echo", address: "h:1", startedAt: 0 });
    expect(result).to.deep.equal({
      ok: true,
      instance: { id: "a", service: "echo", address: "h:1", version: "", zone: "", weight: 1, metadata: {}, startedAt: 0 },
    });
  });

  const bad: [string, unknown, RegExp][] = [
    ["bad JSON", "{", /not JSON/],
    ["an array", [], /not a JSON object/],
    ["null", null, /not a JSON object/],
    ["a wrong id", { ...good, id: "b" }, /"id"/],
    ["a wrong service", { ...good, service: "other" }, /"service"/],
    ["an address without port", { ...good, address: "host" }, /host:port/],
    ["port 0", { ...good, address: "host:0" }, /host:port/],
    ["a numeric version", { ...good, version: 1 }, /"version"/],
    ["a numeric zone", { ...good, zone: 1 }, /"zone"/],
    ["a string weight", { ...good, weight: "2" }, /"weight"/],
    ["a zero weight", { ...good, weight: 0 }, /"weight"/],
    ["non-string metadata", { ...good, metadata: { n: 1 } }, /"metadata"/],
    ["array metadata", { ...good, metadata: ["x"] }, /"metadata"/],
    ["a missing startedAt", { ...good, startedAt: undefined }, /"startedAt"/],
    ["an oversized value", { ...good, pad: "x".repeat(5000) }, /4096-byte limit/],
  ];
  for (const [what, value, reason] of bad) {
    it(`reports ${what} as a reason, without throwing`, () => {
      const result = decode(value);
      expect(result.ok).to.equal(false);
      if (!result.ok) expect(result.reason).to.match(reason);
    });
  }

  it("rejects keys deeper than <service>/<id>", () => {
    const result = decodeInstance(where, where.prefix + "a/b", Buffer.from(encodeInstance(good)));
    expect(result.ok).to.equal(false);
  });

  it("accepts host:port forms grpc-js can dial", () => {
    expect(isHostPort("127.0.0.1:1")).to.equal(true);
    expect(isHostPort("[::1]:50051")).to.equal(true);
    expect(isHostPort("svc.local:65535")).to.equal(true);
    expect(isHostPort("::1:50051")).to.equal(false);
    expect(isHostPort("h:65536")).to.equal(false);
  });
});
