import { expect } from "chai";
import { create, toBinary } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label as Label, FieldDescriptorProto_Type as Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { DescriptorPool } from "./descriptor-pool";
import { buildFile } from "./proto-builder";

const base = buildFile({
  name: "a/base.proto",
  package: "a",
  enums: [{ name: "Color", values: ["COLOR_UNSPECIFIED", "COLOR_RED"] }],
  messages: [
    {
      name: "Thing",
      oneofs: ["kind"],
      fields: [
        { name: "id", number: 1, type: "string" },
        { name: "text", number: 2, type: "string", oneof: 0 },
      ],
      messages: [{ name: "Inner", fields: [] }],
      enums: [{ name: "Mood", values: ["MOOD_UNSPECIFIED", "MOOD_OK"] }],
    },
  ],
});
const mid = create(FileDescriptorProtoSchema, {
  name: "a/mid.proto",
  package: "a",
  syntax: "proto2",
  dependency: ["a/base.proto"],
  messageType: [{ name: "Ext", extensionRange: [{ start: 10, end: 20 }] }],
  extension: [
    { name: "late", number: 12, label: Label.OPTIONAL, type: Type.INT32, extendee: ".a.Ext" },
    { name: "early", number: 11, label: Label.OPTIONAL, type: Type.INT32, extendee: ".a.Ext" },
  ],
});
const top = buildFile({
  name: "a/top.proto",
  package: "a",
  services: [{ name: "Svc", methods: [{ name: "Get", input: ".a.Thing", output: ".a.Thing" }] }],
});
top.dependency.push("a/mid.proto", "a/missing.proto");

describe("DescriptorPool", () => {
  const pool = new DescriptorPool();
  for (const f of [top, mid, base]) pool.add(toBinary(FileDescriptorProtoSchema, f));

  it("keeps the first file of a name and its exact bytes", () => {
    const bytes = toBinary(FileDescriptorProtoSchema, base);
    expect(pool.add(bytes)).to.equal(false);
    expect(pool.add(buildFile({ name: "a/base.proto", package: "other" }))).to.equal(false);
    expect(Buffer.compare(Buffer.from(pool.bytes("a/base.proto")!), Buffer.from(bytes))).to.equal(0);
    expect(pool.fileNames()).to.deep.equal(["a/top.proto", "a/mid.proto", "a/base.proto"]);
  });

  it("orders files after their imports, and lists a file's imports after it, skipping what is excluded or missing", () => {
    expect(pool.protos().map((f) => f.name)).to.deep.equal(["a/base.proto", "a/mid.proto", "a/top.proto"]);
    expect(pool.withDependencies("a/top.proto")).to.deep.equal(["a/top.proto", "a/mid.proto", "a/base.proto"]);
    expect(pool.withDependencies("a/top.proto", new Set(["a/base.proto", "a/top.proto"]))).to.deep.equal(["a/top.proto", "a/mid.proto"]);
  });

  it("finds the file of every kind of symbol", () => {
    const expected: Record<string, string | undefined> = {
      "a.Thing": "a/base.proto",
      ".a.Thing": "a/base.proto",
      "a.Thing.id": "a/base.proto",
      "a.Thing.kind": "a/base.proto",
      "a.Thing.Inner": "a/base.proto",
      "a.Thing.Mood": "a/base.proto",
      "a.Thing.MOOD_OK": "a/base.proto",
      "a.COLOR_RED": "a/base.proto",
      "a.Svc": "a/top.proto",
      "a.Svc.Get": "a/top.proto",
      "a.late": "a/mid.proto",
      "a.Color.COLOR_RED": undefined,
      "a.Nope": undefined,
    };
    for (const [symbol, file] of Object.entries(expected)) expect(pool.fileContainingSymbol(symbol), symbol).to.equal(file);
    expect(pool.isService("a.Svc")).to.equal(true);
    expect(pool.isService("a.Thing")).to.equal(false);
  });

  it("reports extension numbers sorted, and none for an unknown type", () => {
    expect(pool.extensionNumbers("a.Ext")).to.deep.equal([11, 12]);
    expect(pool.extensionNumbers("a.Thing")).to.deep.equal([]);
    expect(pool.extensionNumbers("a.Nope")).to.equal(undefined);
    expect(pool.fileContainingExtension(".a.Ext", 12)).to.equal("a/mid.proto");
    expect(pool.fileContainingExtension("a.Ext", 13)).to.equal(undefined);
  });
});
