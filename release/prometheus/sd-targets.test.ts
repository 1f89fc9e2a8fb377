import { expect } from "chai";
import type { InstanceInfo } from "../../runtime/balancing/instances";
import { selectorOf } from "../analysis/metric-source";
import { labelName, metricsAddress, prometheusTargets } from "./sd-targets";

const instance = (over: Partial<InstanceInfo> & { id: string }): InstanceInfo => ({
  service: "greeter",
  address: "10.0.0.1:50051",
  version: "v1",
  zone: "z1",
  weight: 1,
  metadata: { metrics_port: "9100" },
  startedAt: 0,
  ...over,
});

describe("Prometheus targets from registry entries", () => {
  it("gives each instance its metrics address and its registry labels as plain target labels", () => {
    const { groups, skipped } = prometheusTargets("prod", [instance({ id: "g-2", version: "v2", metadata: { metrics_port: "9101", track: "canary", "team.name": "core" } }), instance({ id: "g-1" })]);
    expect(skipped).to.deep.equal([]);
    expect(groups).to.deep.equal([
      { targets: ["10.0.0.1:9100"], labels: { namespace: "prod", service: "greeter", id: "g-1", version: "v1", zone: "z1" } },
      { targets: ["10.0.0.1:9101"], labels: { track: "canary", team_name: "core", namespace: "prod", service: "greeter", id: "g-2", version: "v2", zone: "z1" } },
    ]);
  });

  it("leaves out instances without a valid metrics_port, and names them", () => {
    const { groups, skipped } = prometheusTargets("prod", [instance({ id: "a", metadata: {} }), instance({ id: "b", metadata: { metrics_port: "70000" } }), instance({ id: "c", metadata: { metrics_port: "9x" } })]);
    expect(groups).to.deep.equal([]);
    expect(skipped).to.deep.equal(["greeter/a", "greeter/b", "greeter/c"]);
  });

  it("keeps IPv6 brackets and drops empty version and zone rather than sending empty labels", () => {
    const { groups } = prometheusTargets("ns", [instance({ id: "v6", address: "[::1]:50051", version: "", zone: "" })]);
    expect(groups[0]).to.deep.equal({ targets: ["[::1]:9100"], labels: { namespace: "ns", service: "greeter", id: "v6" } });
    expect(metricsAddress(instance({ id: "x", address: "host.example:1" }))).to.equal("host.example:9100");
  });

  it("never lets metadata take a reserved or internal label, or the registry's own fields", () => {
    const metadata = { metrics_port: "9100", job: "evil", instance: "evil", version: "v9", __address__: "1.2.3.4:1", __meta_x: "y", "protomesh.draining": "true", "9lives": "yes", empty: "" };
    const { groups } = prometheusTargets("ns", [instance({ id: "r", metadata })]);
    expect(groups[0]!.labels).to.deep.equal({ _9lives: "yes", namespace: "ns", service: "greeter", id: "r", version: "v1", zone: "z1" });
  });

  it("names labels the way the release's PromQL selector asks for them", () => {
    expect(labelName("team.name")).to.equal("team_name");
    expect(selectorOf("greeter", { "team.name": "core", version: "v2" })).to.equal(`service="greeter",team_name="core",version="v2",grpc_service!~"grpc\\\\..*"`);
  });
});
