import * as grpc from "@grpc/grpc-js";
import { DISCOVERY_OPTION } from "../runtime/balancing/instances";
import { buildLoadBalancingConfig, withOutlierDetection, type BalancerOption, type OutlierDetectionOption } from "../runtime/balancing/service-config";
import "../registry/etcd/register";

/** How every upstream channel balances, and whether it ejects failing endpoints. */
export interface UpstreamBalancing {
  /** A protomesh balancer, as a client's `balancer` option; default grpc-js `round_robin`. */
  readonly balancer?: BalancerOption;
  /** grpc-js outlier detection around the balancer (`true`: the defaults); off by default, as for clients. */
  readonly outlierDetection?: OutlierDetectionOption | boolean;
}

/**
 * One grpc-js channel per upstream target, shared by every route to it.
 * `etcd:///<name>` targets resolve through the registry and balance inside
 * grpc-js like any protomesh client; the instance sets a traffic rule picks
 * (`ipv4:a,b`) get the same balancer and outlier detection.
 */
export class Upstreams {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly serviceConfig: string;

  /** Invalid balancing options throw here, at start, naming the option. */
  constructor(
    private readonly discovery: unknown,
    balancing: UpstreamBalancing = {},
  ) {
    const lb = balancing.balancer === undefined ? { round_robin: {} } : buildLoadBalancingConfig({ balancer: balancing.balancer });
    this.serviceConfig = JSON.stringify({ loadBalancingConfig: [withOutlierDetection(lb, balancing.outlierDetection)] });
  }

  client(target: string): grpc.Client {
    let c = this.clients.get(target);
    if (!c) {
      const options: grpc.ChannelOptions = {
        "grpc.service_config": this.serviceConfig,
        "grpc.service_config_disable_resolution": 1,
        "grpc.enable_retries": 1,
      };
      if (this.discovery !== undefined) options[DISCOVERY_OPTION] = this.discovery;
      c = new grpc.Client(target, grpc.credentials.createInsecure(), options);
      this.clients.set(target, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
