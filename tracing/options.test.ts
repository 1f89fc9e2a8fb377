import { expect } from "chai";
import { resolveTracingOptions } from "./options";
import { otlpTracesUrl } from "./exporters";

describe("tracing: options from code and environment", () => {
  it("defaults to OTLP, everything sampled, a 5 s export delay", () => {
    const o = resolveTracingOptions({}, {});
    expect(o).to.deep.include({ exporters: ["otlp"], sampleRatio: 1, exportDelayMs: 5000, serviceName: undefined });
  });

  it("reads the standard variables and PROTOMESH_TRACING_EXPORTER", () => {
    const o = resolveTracingOptions({}, {
      OTEL_SERVICE_NAME: "checkout",
      PROTOMESH_TRACING_EXPORTER: "jaeger, otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      OTEL_BSP_SCHEDULE_DELAY: "200",
    });
    expect(o).to.deep.include({ serviceName: "checkout", exporters: ["jaeger", "otlp"], sampleRatio: 0.25, exportDelayMs: 200 });
    expect(o.endpoints).to.deep.equal({ otlp: "http://collector:4318" });
  });

  it("lets explicit options win over the environment", () => {
    const o = resolveTracingOptions({ serviceName: "a", exporter: "jaeger", endpoint: "agent:6832", sampleRatio: 0.5 }, { OTEL_SERVICE_NAME: "b", PROTOMESH_TRACING_EXPORTER: "otlp", OTEL_TRACES_SAMPLER_ARG: "0.1" });
    expect(o).to.deep.include({ serviceName: "a", exporters: ["jaeger"], sampleRatio: 0.5 });
    expect(o.endpoints.jaeger).to.equal("agent:6832");
  });

  it("falls back to OTEL_TRACES_EXPORTER and honours always_off", () => {
    expect(resolveTracingOptions({}, { OTEL_TRACES_EXPORTER: "console", OTEL_TRACES_SAMPLER: "always_off" })).to.deep.include({ exporters: ["console"], sampleRatio: 0 });
  });

  it("rejects unknown exporters, ratios outside 0–1 and an ambiguous endpoint", () => {
    expect(() => resolveTracingOptions({}, { PROTOMESH_TRACING_EXPORTER: "zipkin" })).to.throw(/unknown exporter "zipkin"/);
    expect(() => resolveTracingOptions({ sampleRatio: 2 }, {})).to.throw(RangeError);
    expect(() => resolveTracingOptions({}, { OTEL_TRACES_SAMPLER_ARG: "half" })).to.throw(/OTEL_TRACES_SAMPLER_ARG/);
    expect(() => resolveTracingOptions({ exporter: ["jaeger", "otlp"], endpoint: "x:1" }, {})).to.throw(/endpoints/);
  });

  it("adds the OTLP traces path to a base URL only once", () => {
    expect(otlpTracesUrl("http://localhost:4318")).to.equal("http://localhost:4318/v1/traces");
    expect(otlpTracesUrl("http://localhost:4318/")).to.equal("http://localhost:4318/v1/traces");
    expect(otlpTracesUrl("http://c:4318/v1/traces")).to.equal("http://c:4318/v1/traces");
  });
});
