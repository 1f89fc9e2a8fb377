import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { createServer, Status, type Server, type ServiceDefinition } from "protomesh";
import { GreeterDefinition } from "./helpers/greeter";
import { greeterHandlers } from "../examples/greeter/service";
import { KitchenSinkDefinition, kitchenSinkHandlers } from "./helpers/kitchen-sink";
import { filesOf, reflect, ReflectionStream, type Version } from "./helpers/reflection-client";

/** A service whose files carry extensions: proto2 `Base` with an extension range, extended from another file. */
function extensionFixture(): ServiceDefinition {
  const base = create(FileDescriptorProtoSchema, {
    name: "ext/v1/base.proto",
    package: "ext.v1",
    syntax: "proto2",
    messageType: [
      {
        name: "Base",
        field: [{ name: "id", number: 1, label: Label.OPTIONAL, type: Type.STRING, jsonName: "id" }],
        extensionRange: [{ start: 100, end: 200 }],
      },
    ],
  });
  const more = create(FileDescriptorProtoSchema, {
    name: "ext/v1/more.proto",
    package: "ext.v1",
    syntax: "proto2",
    dependency: ["ext/v1/base.proto"],
    extension: [
      { name: "note", number: 150, label: Label.OPTIONAL, type: Type.STRING, extendee: ".ext.v1.Base", jsonName: "note" },
      { name: "level", number: 100, label: Label.OPTIONAL, type: Type.INT32, extendee: ".ext.v1.Base", jsonName: "level" },
    ],
    messageType: [{ name: "Holder", extension: [{ name: "flag", number: 120, label: Label.OPTIONAL, type: Type.BOOL, extendee: ".ext.v1.Base", jsonName: "flag" }] }],
  });
  const things = create(FileDescriptorProtoSchema, {
    name: "ext/v1/things.proto",
    package: "ext.v1",
    syntax: "proto2",
    dependency: ["ext/v1/base.proto", "ext/v1/more.proto"],
    service: [{ name: "Things", method: [{ name: "Get", inputType: ".ext.v1.Base", outputType: ".ext.v1.Base" }] }],
  });
  const passthrough = (b: unknown) => b as Buffer;
  return {
    typeName: "ext.v1.Things",
    file: "ext/v1/things.proto",
    methods: {
      get: {
        name: "Get",
        localName: "get",
        path: "/ext.v1.Things/Get",
        kind: "unary",
        requestStream: false,
        responseStream: false,
        requestType: "ext.v1.Base",
        responseType: "ext.v1.Base",
        requestSerialize: passthrough,
        requestDeserialize: passthrough,
        responseSerialize: passthrough,
        responseDeserialize: passthrough,
      },
    },
    descriptors: [base, more, things].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f)).toString("base64")),
  };
}

/** A grpc-js package loaded from nothing but reflection's answer. */
function loadFromFiles(files: FileDescriptorProto[]): grpc.GrpcObject {
  const set = toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: files }));
  const def = protoLoader.loadFileDescriptorSetFromBuffer(Buffer.from(set), { longs: String, enums: String, oneofs: true });
  return grpc.loadPackageDefinition(def);
}

function serviceClient(pkg: grpc.GrpcObject, name: string, address: string): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const Ctor = name.split(".").reduce<unknown>((o, part) => (o as Record<string, unknown>)[part], pkg) as grpc.ServiceClientConstructor;
  return new Ctor(address, grpc.credentials.createInsecure()) as never;
}

function unary<T>(client: Record<string, (...args: unknown[]) => unknown>, method: string, request: unknown): Promise<T> {
  return new Promise((resolve, reject) => client[method](request, (err: Error | null, value: T) => (err ? reject(err) : resolve(value))));
}

const leadingComments = (file: FileDescriptorProto) => (file.sourceCodeInfo?.location ?? []).map((l) => l.leadingComments.trim()).filter(Boolean);

describe("reflection", () => {
  let server: Server;
  let address: string;

  before(async () => {
    server = createServer();
    server.add(GreeterDefinition, greeterHandlers("test"));
    server.add(KitchenSinkDefinition, kitchenSinkHandlers());
    server.add(extensionFixture(), { get: (req: unknown) => req } as never);
    address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
  });
  after(() => server.shutdown());

  for (const version of ["v1", "v1alpha"] as Version[]) {
    it(`lists every added service, health and both reflection services (${version})`, async () => {
      const res = await reflect(address, { list_services: "*" }, version);
      expect(res.list_services_response!.service.map((s) => s.name)).to.deep.equal([
        "examples.greeter.v1.Greeter",
        "ext.v1.Things",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "protomesh.test.v1.KitchenSink",
      ]);
    });
  }

  it("serves a file by name, byte for byte as embedded, followed by its imports", async () => {
    const res = await reflect(address, { file_by_filename: "protomesh/test/v1/kitchen_sink.proto" });
    const raw = res.file_descriptor_response!.file_descriptor_proto;
    const embedded = new Map(KitchenSinkDefinition.descriptors.map((b64) => {
      const bytes = Buffer.from(b64, "base64");
      return [filesOf({ message_response: "file_descriptor_response", valid_host: "", file_descriptor_response: { file_descriptor_proto: [bytes] } })[0]!.name, bytes];
    }));
    const files = filesOf(res);
    expect(files[0]!.name).to.equal("protomesh/test/v1/kitchen_sink.proto");
    expect(files.map((f) => f.name).sort()).to.deep.equal([...embedded.keys()].sort());
    files.forEach((f, i) => expect(Buffer.compare(raw[i]!, embedded.get(f.name)!)).to.equal(0, f.name));
    expect(leadingComments(files[0]!)).to.include("KitchenSink echoes items back in every way gRPC can.");
    expect(leadingComments(files.find((f) => f.name === "google/protobuf/timestamp.proto")!).join("\n")).to.match(/A Timestamp represents a point in time/);
  });

  it("finds the file declaring a service, method, nested type, nested enum, field, enum value and well-known type", async () => {
    const cases: Record<string, string> = {
      "protomesh.test.v1.KitchenSink": "protomesh/test/v1/kitchen_sink.proto",
      "protomesh.test.v1.KitchenSink.Walk": "protomesh/test/v1/kitchen_sink.proto",
      "protomesh.test.v1.Item.Node": "protomesh/test/v1/kitchen_sink.proto",
      "protomesh.test.v1.Item.Node.Kind": "protomesh/test/v1/kitchen_sink.proto",
      "protomesh.test.v1.Item.counters": "protomesh/test/v1/kitchen_sink.proto",
      "protomesh.test.v1.COLOR_RED": "protomesh/test/v1/common.proto",
      "protomesh.test.v1.Money": "protomesh/test/v1/common.proto",
      "google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
      "examples.greeter.v1.Greeter.Chat": "examples/greeter/v1/greeter.proto",
      "grpc.health.v1.Health": "grpc/health/v1/health.proto",
      "grpc.reflection.v1alpha.ServerReflectionRequest": "grpc/reflection/v1alpha/reflection.proto",
    };
    for (const [symbol, file] of Object.entries(cases)) {
      const files = filesOf(await reflect(address, { file_containing_symbol: symbol }));
      expect(files[0]!.name, symbol).to.equal(file);
    }
  });

  it("does not repeat files already sent on the same stream", async () => {
    const stream = new ReflectionStream(address);
    try {
      const first = filesOf(await stream.ask({ file_containing_symbol: "examples.greeter.v1.Greeter" })).map((f) => f.name);
      expect(first).to.deep.equal(["examples/greeter/v1/greeter.proto", "google/protobuf/timestamp.proto"]);
      const second = filesOf(await stream.ask({ file_containing_symbol: "protomesh.test.v1.Item" })).map((f) => f.name);
      expect(second).to.include("protomesh/test/v1/common.proto").and.not.include("google/protobuf/timestamp.proto");
      // Asked for by name, a file is always sent.
      const third = filesOf(await stream.ask({ file_by_filename: "google/protobuf/timestamp.proto" })).map((f) => f.name);
      expect(third).to.deep.equal(["google/protobuf/timestamp.proto"]);
    } finally {
      stream.close();
    }
  });

  it("reports all extension numbers of a type and the file declaring each extension", async () => {
    const numbers = await reflect(address, { all_extension_numbers_of_type: "ext.v1.Base" });
    expect(numbers.all_extension_numbers_response).to.deep.equal({ base_type_name: "ext.v1.Base", extension_number: [100, 120, 150] });
    const none = await reflect(address, { all_extension_numbers_of_type: "protomesh.test.v1.Item" });
    expect(none.all_extension_numbers_response!.extension_number).to.deep.equal([]);
    const file = filesOf(await reflect(address, { file_containing_extension: { containing_type: "ext.v1.Base", extension_number: 120 } }));
    expect(file[0]!.name).to.equal("ext/v1/more.proto");
    expect(filesOf(await reflect(address, { file_containing_symbol: "ext.v1.Holder.flag" }))[0]!.name).to.equal("ext/v1/more.proto");
  });

  it("answers unknown files, symbols, types and extensions with NOT_FOUND and keeps the stream usable", async () => {
    const stream = new ReflectionStream(address, "v1alpha");
    try {
      for (const request of [
        { file_by_filename: "nope.proto" },
        { file_containing_symbol: "no.such.Symbol" },
        { file_containing_symbol: "" },
        { all_extension_numbers_of_type: "no.such.Type" },
        { file_containing_extension: { containing_type: "ext.v1.Base", extension_number: 199 } },
      ]) {
        const res = await stream.ask(request);
        expect(res.error_response?.error_code, JSON.stringify(request)).to.equal(Status.NOT_FOUND);
      }
      const ok = await stream.ask({ list_services: "" });
      expect(ok.list_services_response!.service).to.have.length(6);
    } finally {
      stream.close();
    }
  });

  it("supports a dynamic call built only from the returned descriptors (nested types, oneofs, enums, maps, imports)", async () => {
    const pkg = loadFromFiles(filesOf(await reflect(address, { file_containing_symbol: "protomesh.test.v1.KitchenSink" }, "v1alpha")));
    const client = serviceClient(pkg, "protomesh.test.v1.KitchenSink", address);
    try {
      // proto-loader, loading from descriptors, sees map fields as their repeated entry messages.
      const item = {
        id: "a",
        price: { currency: "EUR", units: "12", nanos: 5 },
        color: "COLOR_BLUE",
        tags: ["x", "y"],
        counters: [{ key: "hits", value: "3" }],
        root: { kind: "KIND_BRANCH", label: "r", children: [{ kind: "KIND_LEAF", label: "c" }] },
        prices: [{ key: "p", value: { currency: "USD", units: "3" } }],
      };
      const echoed = await unary<Record<string, unknown>>(client, "Echo", item);
      expect(echoed).to.deep.include({ id: "a", payload: "price", color: "COLOR_BLUE", tags: ["x", "y"] });
      expect(echoed.counters).to.deep.equal(item.counters);
      expect(echoed.price).to.deep.equal(item.price);
      expect(echoed.root).to.deep.equal(item.root);
      expect(echoed.prices).to.deep.equal(item.prices);
      const walked = await unary<{ label: string }>(client, "Walk", { label: "n" });
      expect(walked.label).to.equal("walked:n");
    } finally {
      client.close();
    }
  });

  it("describes the health service well enough to call it", async () => {
    const pkg = loadFromFiles(filesOf(await reflect(address, { file_containing_symbol: "grpc.health.v1.Health" })));
    const client = serviceClient(pkg, "grpc.health.v1.Health", address);
    try {
      expect(await unary(client, "Check", { service: "" })).to.deep.equal({ status: "SERVING" });
    } finally {
      client.close();
    }
  });

  it("can be switched off", async () => {
    const off = createServer({ reflection: false });
    off.add(GreeterDefinition, greeterHandlers("test"));
    const port = await off.listen("127.0.0.1:0");
    try {
      const err = (await reflect(`127.0.0.1:${port}`, { list_services: "*" }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code).to.equal(Status.UNIMPLEMENTED);
    } finally {
      await off.shutdown();
    }
  });
});
