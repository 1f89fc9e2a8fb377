import { expect } from "chai";
import { filesFromDescriptors, sourceRoutes, type BoundRoute } from "../../gateway/route-table";
import { HttpGreeterDefinition } from "../../gen/examples/gateway/v1/greeter_http_protomesh";
import { httpRequestFor } from "./http-try";

describe("console try-it over HTTP: a gRPC request as the gateway route's HTTP request", () => {
  const routes = sourceRoutes({ id: "t", target: "etcd:///greeter", files: filesFromDescriptors(HttpGreeterDefinition.descriptors) }, false);
  const route = (grpc: string, method: string, template: string): BoundRoute => {
    const r = routes.find((x) => x.grpcPath === `/examples.gateway.v1.HttpGreeter/${grpc}` && x.httpMethod === method && x.template.source === template);
    if (!r) throw new Error(`no route ${method} ${template}`);
    return r;
  };

  it("puts a path field into the path, percent-encoded, and the other fields into the query", () => {
    expect(httpRequestFor(route("SayHello", "GET", "/v1/hello/{name}"), { name: "a b/c" })).to.deep.equal({ method: "GET", path: "/v1/hello/a%20b%2Fc", body: undefined });
    expect(httpRequestFor(route("Echo", "GET", "/v1/echo/{id}/{nested.label}"), { id: "7", nested: { label: "x", count: 2 }, tags: ["a", "b"], attrs: { k: "v w" } })).to.deep.equal({
      method: "GET",
      path: "/v1/echo/7/x?nested.count=2&tags=a&tags=b&attrs%5Bk%5D=v%20w",
      body: undefined,
    });
  });

  it("keeps the slashes of a multi-segment variable and sends the body field as the body", () => {
    const r = route("UpdateGreeting", "PATCH", "/v1/{greeting.name=greetings/*}");
    const line = httpRequestFor(r, { greeting: { name: "greetings/en", text: "Hi" }, updateMask: "text" });
    expect(line.method).to.equal("PATCH");
    expect(line.path).to.equal("/v1/greetings/en?updateMask=text");
    expect(JSON.parse(line.body!)).to.deep.equal({ text: "Hi" });
  });

  it("sends the whole remaining request as the body for body: \"*\"", () => {
    const line = httpRequestFor(route("SayHello", "POST", "/v1/hello"), { name: "z" });
    expect(line).to.deep.equal({ method: "POST", path: "/v1/hello", body: '{"name":"z"}' });
  });

  it("names a path field the request lacks", () => {
    expect(() => httpRequestFor(route("SayHello", "GET", "/v1/hello/{name}"), {})).to.throw(/needs name/);
    expect(() => httpRequestFor(route("SayHello", "GET", "/v1/hello/{name}"), [] as never)).to.throw(/must be a JSON object/);
  });
});
