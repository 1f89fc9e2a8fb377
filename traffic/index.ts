/**
 * Traffic rules in etcd: the versioned store (write, history, rollback, conditional writes) that
 * `protomesh traffic` and a release process use. The rule model itself (compile, evaluate,
 * builders) is pure and lives in `protomesh/balancing`; clients pick rules up through their
 * `etcd:///` resolver without importing this.
 *
 * ```ts
 * import { openTrafficStore } from "protomesh/traffic";
 * import { canaryRule } from "protomesh/balancing";
 * const store = openTrafficStore({ service: "greeter" });
 * await store.write(canaryRule({ stable: { version: "v1" }, canary: { version: "v2" }, canaryWeight: 25, sticky: { header: "x-user" } }), { comment: "canary 25 %", expectVersion: 3 });
 * ```
 */
export { openTrafficStore, TrafficStore, TrafficStoreError, TRAFFIC_RULE_TYPE, type TrafficStoreOptions, type TrafficVersion, type TrafficWriteOptions } from "./store";
export { parseRuleText } from "./rule-text";
export { trafficKeys, decodeTrafficRecord, type TrafficKeys, type DecodedTrafficRule } from "../registry/etcd/traffic-keys";
