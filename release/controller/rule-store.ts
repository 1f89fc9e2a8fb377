/**
 * Reading and writing a service's traffic rule with a version check: all a release needs from
 * the rule store. {@link EtcdRuleStore} writes the key clients watch,
 * `/protomesh/<ns>/traffic/<service>`, as a version record `{version, value, author, at,
 * comment, kind, base}` (the config center's record shape).
 */
import type { Etcd3 } from "etcd3";
import type { TrafficRule } from "../../runtime/balancing/traffic-rule";
import { validateTrafficRule } from "../../runtime/balancing/rule-compile";
import { checkSegment } from "../../registry/etcd/keys";

export interface RuleVersion {
  readonly version: number;
  readonly rule: TrafficRule;
}

export interface RuleStore {
  /** The rule in force, or undefined when the service has none. */
  current(): Promise<RuleVersion | undefined>;
  /**
   * Writes `rule` as the next version if the version in force is still `expectVersion` (0: no
   * rule yet); otherwise throws {@link RuleConflictError}.
   */
  write(rule: TrafficRule, options: { expectVersion: number; comment: string }): Promise<RuleVersion>;
}

export class RuleConflictError extends Error {
  override readonly name = "RuleConflictError";
}

/** The key a service's rule lives under. */
export function trafficRuleKey(namespace: string, service: string): string {
  return `/protomesh/${namespace}/traffic/${checkSegment(service, "service")}`;
}

/** {@link RuleStore} on an etcd key, conditional on the key's mod revision. */
export class EtcdRuleStore implements RuleStore {
  private readonly key: string;

  constructor(private readonly client: Etcd3, namespace: string, service: string, private readonly author = "protomesh release") {
    this.key = trafficRuleKey(namespace, service);
  }

  async current(): Promise<RuleVersion | undefined> {
    return (await this.read())?.rule;
  }

  async write(rule: TrafficRule, options: { expectVersion: number; comment: string }): Promise<RuleVersion> {
    const problems = validateTrafficRule(rule);
    if (problems.length > 0) throw new Error(`the release built an invalid rule: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`);
    const found = await this.read();
    const version = found?.rule.version ?? 0;
    if (version !== options.expectVersion) throw new RuleConflictError(`the traffic rule of ${this.key} is at version ${version}, not ${options.expectVersion}`);
    const record = { version: version + 1, value: rule, author: this.author, at: new Date().toISOString(), comment: options.comment, kind: "set", base: version };
    const txn = this.client.if(this.key, "Mod", "==", found?.modRevision ?? "0").then(this.client.put(this.key).value(JSON.stringify(record)));
    const res = await txn.commit();
    if (!res.succeeded) throw new RuleConflictError(`the traffic rule of ${this.key} changed while writing`);
    return { version: version + 1, rule };
  }

  private async read(): Promise<{ rule: RuleVersion; modRevision: string } | undefined> {
    const res = await this.client.get(this.key).exec();
    const kv = res.kvs[0];
    if (!kv) return undefined;
    let parsed: { version?: unknown; value?: unknown };
    try {
      parsed = JSON.parse(kv.value.toString("utf8")) as typeof parsed;
    } catch {
      throw new Error(`${this.key} does not hold JSON; fix or delete it before releasing`);
    }
    if (typeof parsed.version !== "number" || typeof parsed.value !== "object" || parsed.value === null) throw new Error(`${this.key} is not a traffic rule record {version, value}`);
    return { rule: { version: parsed.version, rule: parsed.value as TrafficRule }, modRevision: kv.mod_revision };
  }
}
