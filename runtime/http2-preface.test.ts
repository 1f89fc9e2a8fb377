import { expect } from "chai";
import { CLIENT_PREFACE, prefaceState } from "./http2-preface";

describe("http2 preface: where a connection's first bytes stand", () => {
  it("waits on any strict prefix of the preface, and is complete once all 24 bytes are in", () => {
    expect(prefaceState(Buffer.alloc(0))).to.equal("partial");
    expect(prefaceState(CLIENT_PREFACE.subarray(0, 16))).to.equal("partial");
    expect(prefaceState(CLIENT_PREFACE)).to.equal("complete");
    expect(prefaceState(Buffer.concat([CLIENT_PREFACE, Buffer.from([0, 0, 0, 4])]))).to.equal("complete");
  });

  it("knows at the first differing byte that it is something else (HTTP/1.1, TLS, garbage)", () => {
    expect(prefaceState(Buffer.from("GET / HTTP/1.1\r\n"))).to.equal("other");
    expect(prefaceState(Buffer.from([0x16, 0x03, 0x01]))).to.equal("other");
    expect(prefaceState(Buffer.from("PRX"))).to.equal("other");
  });
});
