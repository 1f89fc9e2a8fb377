import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import { create, fromBinary, isFieldSet, toBinary } from "@bufbuild/protobuf";
import {
  FieldDescriptorProtoSchema,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { loadFileDescriptorSetFromBuffer } from "@grpc/proto-loader";
import { TESTDATA } from "./golden-harness";

/** The `descriptors` array of a generated file, decoded. */
function embeddedDescriptors(generated: string): FileDescriptorProto[] {
  const text = fs.readFileSync(path.join(TESTDATA, generated), "utf8");
  const block = /const descriptors: readonly string\[\] = \[\n([\s\S]*?)\n\];/.exec(text);
  if (!block) throw new Error(`${generated} has no descriptors array`);
  return block[1].split("\n").map((line) => {
    const literal = JSON.parse(line.trim().replace(/,$/, "")) as string;
    return fromBinary(FileDescriptorProtoSchema, Buffer.from(literal, "base64"));
  });
}

function leadingComments(file: FileDescriptorProto): string[] {
  return (file.sourceCodeInfo?.location ?? []).map((l) => l.leadingComments).filter((c) => c !== "");
}

describe("embedded file descriptors", () => {
  it("list every transitive import before the file that declares the service", () => {
    expect(embeddedDescriptors("shapes/expected/catalog_protomesh.ts").map((f) => f.name)).to.deep.equal([
      "google/protobuf/empty.proto",
      "google/protobuf/struct.proto",
      "google/protobuf/timestamp.proto",
      "catalog.proto",
    ]);
    expect(embeddedDescriptors("imports/expected/shop/v1/orders_protomesh.ts").map((f) => f.name)).to.deep.equal([
      "shop/common/v1/money.proto",
      "shop/v1/messages.proto",
      "shop/v1/orders.proto",
    ]);
  });

  it("keep oneof_index 0 on the fields of a message's first oneof", () => {
    const catalog = embeddedDescriptors("shapes/expected/catalog_protomesh.ts").at(-1) as FileDescriptorProto;
    const product = catalog.messageType.find((m) => m.name === "Product");
    const oneofIndex = (name: string) => {
      const field = product?.field.find((f) => f.name === name);
      return field && isFieldSet(field, FieldDescriptorProtoSchema.field.oneofIndex) ? field.oneofIndex : undefined;
    };
    expect(product?.oneofDecl.map((o) => o.name)).to.deep.equal(["price", "source", "_subtitle"]);
    expect([oneofIndex("cents"), oneofIndex("quote"), oneofIndex("url"), oneofIndex("subtitle")]).to.deep.equal([0, 0, 1, 2]);
    expect(oneofIndex("labels")).to.equal(undefined);
  });

  it("keep source comments, of the service's file and of its imports", () => {
    const [docs] = embeddedDescriptors("comments/expected/docs_protomesh.ts");
    expect(leadingComments(docs)).to.include.members([" Library lends books.\n\n It keeps a second paragraph, `code`, and   indentation:\n   - one\n   - two\n and text that would end a block comment early: */ stays inside.\n", " Borrow lends one book.\n"]);
    const timestamp = embeddedDescriptors("shapes/expected/catalog_protomesh.ts")[2];
    expect(timestamp.name).to.equal("google/protobuf/timestamp.proto");
    expect(leadingComments(timestamp).join("")).to.contain("A Timestamp represents a point in time");
  });

  it("carry the method options the runtime reads (idempotency, deprecation)", () => {
    const [kinds] = embeddedDescriptors("call-kinds/expected/kinds_protomesh.ts");
    expect(kinds.service[0].method.map((m) => m.options?.idempotencyLevel ?? 0)).to.deep.equal([1, 0, 2, 0]);
    const [docs] = embeddedDescriptors("comments/expected/docs_protomesh.ts");
    expect(docs.service.find((s) => s.name === "Archive")?.options?.deprecated).to.equal(true);
  });

  it("load as a FileDescriptorSet in @grpc/proto-loader, as reflection does", () => {
    const files = embeddedDescriptors("shapes/expected/catalog_protomesh.ts");
    const set = toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: files }));
    const pkg = loadFileDescriptorSetFromBuffer(Buffer.from(set));
    const service = pkg["acme.shop.catalog.v1.Catalog"] as Record<string, { path: string; responseStream: boolean }>;
    expect(service.GetProduct.path).to.equal("/acme.shop.catalog.v1.Catalog/GetProduct");
    expect(service.Search.responseStream).to.equal(true);
  });
});
