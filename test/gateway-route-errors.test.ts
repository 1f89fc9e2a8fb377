import { expect } from "chai";
import { create, createFileRegistry, setExtension, type DescExtension, type DescMessage, type Message } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, MethodOptionsSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { Server } from "protomesh";
import { createGateway, filesFromDescriptors, RouteConfigError } from "../gateway";
import { HttpGreeterDefinition, startHttpGreeter } from "./helpers/gateway";

/**
 * Bindings that cannot be served stop the gateway at start-up, with a
 * RouteConfigError naming the proto file and method: two methods on the same
 * HTTP method and path shape, and a `body` that names no field of the request.
 * The bad services are described in code (descriptors as `protoc` would emit
 * them), next to the real greeter's files.
 */

const greeterFiles = filesFromDescriptors(HttpGreeterDefinition.descriptors);
const known = createFileRegistry(create(FileDescriptorSetSchema, { file: greeterFiles }));
const HTTP = known.getExtension("google.api.http") as DescExtension;
const HTTP_RULE = known.getMessage("google.api.HttpRule") as DescMessage;

interface Binding {
  readonly method: string;
  readonly kind: "get" | "post";
  readonly path: string;
  readonly body?: string;
}

/** `acme/bad/v1/bad.proto`: service acme.bad.v1.BadGreeter, each method HelloRequest → HelloReply with its binding. */
function badFile(bindings: readonly Binding[]): FileDescriptorProto {
  return create(FileDescriptorProtoSchema, {
    name: "acme/bad/v1/bad.proto",
    package: "acme.bad.v1",
    syntax: "proto3",
    dependency: ["google/api/annotations.proto", "examples/gateway/v1/greeter_http.proto"],
    service: [
      {
        name: "BadGreeter",
        method: bindings.map((b) => {
          const options = create(MethodOptionsSchema);
          const rule = create(HTTP_RULE, { pattern: { case: b.kind, value: b.path }, body: b.body ?? "" }) as Message;
          setExtension(options, HTTP, rule as never);
          return { name: b.method, inputType: ".examples.gateway.v1.HelloRequest", outputType: ".examples.gateway.v1.HelloReply", options };
        }),
      },
    ],
  });
}

async function startError(files: FileDescriptorProto[]): Promise<RouteConfigError> {
  try {
    const gw = await createGateway({ upstreams: [{ target: "127.0.0.1:1", files }], accessLog: false });
    await gw.close();
  } catch (err) {
    expect(err).to.be.instanceOf(RouteConfigError);
    return err as RouteConfigError;
  }
  return expect.fail("the gateway started") as never;
}

describe("gateway start-up: bindings that cannot be served are refused, naming file and method", () => {
  it("accepts the same file set with good bindings (the descriptors built here are sound)", async () => {
    const greeter: { server: Server; address: string } = await startHttpGreeter();
    const gw = await createGateway({
      upstreams: [{ target: greeter.address, files: [...greeterFiles, badFile([{ method: "A", kind: "get", path: "/v1/a/{name}" }, { method: "B", kind: "post", path: "/v1/b", body: "*" }])] }],
      accessLog: false,
    });
    try {
      expect(gw.routes().map((r) => `${r.httpMethod} ${r.grpcPath}`)).to.include.members(["GET /acme.bad.v1.BadGreeter/A", "POST /acme.bad.v1.BadGreeter/B"]);
    } finally {
      await gw.close();
      await greeter.server.shutdown();
    }
  });

  it("two methods of one file on the same HTTP method and path shape", async () => {
    const err = await startError([...greeterFiles, badFile([{ method: "First", kind: "get", path: "/v1/same/{name}" }, { method: "Second", kind: "get", path: "/v1/same/{name=*}" }])]);
    expect(err.message).to.equal("conflicting HTTP bindings for GET /v1/same/*: acme/bad/v1/bad.proto: acme.bad.v1.BadGreeter.First and acme/bad/v1/bad.proto: acme.bad.v1.BadGreeter.Second");
  });

  it("a method clashing with another file's binding (the greeter's GET /v1/hello/{name})", async () => {
    const err = await startError([...greeterFiles, badFile([{ method: "Shadow", kind: "get", path: "/v1/hello/{name}" }])]);
    expect(err.message).to.match(/^conflicting HTTP bindings for GET \/v1\/hello\/\*: /);
    expect(err.message).to.contain("examples/gateway/v1/greeter_http.proto: examples.gateway.v1.HttpGreeter.SayHello");
    expect(err.message).to.contain("acme/bad/v1/bad.proto: acme.bad.v1.BadGreeter.Shadow");
  });

  it("a body naming no field of the request", async () => {
    const err = await startError([...greeterFiles, badFile([{ method: "Post", kind: "post", path: "/v1/post", body: "greeting" }])]);
    expect(err.message).to.equal('acme/bad/v1/bad.proto: acme.bad.v1.BadGreeter.Post: body "greeting" is not a field of examples.gateway.v1.HelloRequest');
  });
});
