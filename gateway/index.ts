/**
 * protomesh/gateway: an HTTP/JSON front door for protomesh services. Routes
 * come from the `google.api.http` annotations in the services' own protos;
 * policies (auth, rate limits, CORS, timeouts) live in etcd and change without
 * a restart.
 *
 * ```ts
 * import { createGateway } from "protomesh/gateway";
 * const gw = await createGateway({ etcd: {}, discover: true });
 * await gw.listen(8080);
 * ```
 */
export { createGateway, type Gateway, type GatewayOptions, type StaticUpstream } from "./gateway";
export type { GatewayPolicy, RoutePolicy, AuthMode, LimitKey, LocalLimit, ClusterLimit, RateLimitPolicy, CorsPolicy, JwtSettings, ApiKeySettings, PolicyIssue, RetryPolicy } from "./policy";
export { PolicyValidationError, routePolicy } from "./policy";
export { checkPolicy, validatePolicy } from "./policy-validate";
export { PolicyStore, policyApp, type PolicyStoreOptions } from "./policy-store";
export { ApiKeyAdmin, keysPrefix, newApiKey, type ApiKeyRecord } from "./api-keys";
export { parseTemplate, canonicalTemplate, TemplateSyntaxError, type PathTemplate, type TemplateSegment, type TemplateVariable } from "./path-template";
export { compileTemplate, PathError, type CompiledTemplate } from "./path-match";
export { Router, type RouteMatch } from "./router";
export { serviceRoutes, RouteConfigError, type GatewayRoute } from "./routes";
export { RouteTable, filesFromDescriptors, filesFromDescriptorSet, type RouteSource, type BoundRoute } from "./route-table";
export { httpStatusOf, statusJson, GatewayError, type StatusJson } from "./http-errors";
export { RETRYABLE_CODES, retryableRoute, type RetryableCode } from "./retry";
export { readTlsFiles, checkTls, GatewayTlsError, type TlsMaterial } from "./tls";
