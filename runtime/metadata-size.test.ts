import { expect } from "chai";
import { Metadata } from "@grpc/grpc-js";
import { clearMetadata, metadataBytes } from "./metadata-size";

describe("metadata size", () => {
  it("counts name + value + 32 bytes per field, as HTTP/2 does", () => {
    const md = new Metadata();
    expect(metadataBytes(md)).to.equal(0);
    md.set("x-user", "ada");
    expect(metadataBytes(md)).to.equal(6 + 3 + 32);
    md.add("x-user", "bob");
    expect(metadataBytes(md)).to.equal(2 * (6 + 3 + 32));
  });

  it("counts binary values as the base64 that goes on the wire", () => {
    const md = new Metadata();
    md.set("x-blob-bin", Buffer.alloc(30));
    expect(metadataBytes(md)).to.equal(10 + 40 + 32);
  });

  it("clears every field", () => {
    const md = new Metadata();
    md.set("a", "1");
    md.set("b-bin", Buffer.from("x"));
    clearMetadata(md);
    expect(metadataBytes(md)).to.equal(0);
    expect(md.getMap()).to.deep.equal({});
  });
});
