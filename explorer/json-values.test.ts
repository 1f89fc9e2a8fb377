import { expect } from "chai";
import { RpcError, Status } from "../runtime/errors";
import { jsonValues } from "./json-values";

async function all(chunks: string[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const v of jsonValues(chunks)) out.push(v);
  return out;
}

describe("jsonValues", () => {
  it("splits newline-delimited JSON and values written back to back", async () => {
    expect(await all(['{"a":1}\n{"a":2}\n'])).to.deep.equal([{ a: 1 }, { a: 2 }]);
    expect(await all(['{"a":1}{"a":2} {"a":3}'])).to.deep.equal([{ a: 1 }, { a: 2 }, { a: 3 }]);
  });

  it("is not fooled by braces and quotes inside strings, or by nesting", async () => {
    const text = '{"s":"} { \\" ]","n":{"m":[1,{"x":"}"}]}}{"b":true}';
    expect(await all([text])).to.deep.equal([{ s: '} { " ]', n: { m: [1, { x: "}" }] } }, { b: true }]);
  });

  it("reads values split across chunks at any point", async () => {
    const text = '{"name":"a\\"b"}\n["x",{"y":2}] "str" 42 true null';
    const expected = [{ name: 'a"b' }, ["x", { y: 2 }], "str", 42, true, null];
    expect(await all([...text])).to.deep.equal(expected);
    expect(await all([text])).to.deep.equal(expected);
  });

  it("yields nothing for empty or blank input", async () => {
    expect(await all([])).to.deep.equal([]);
    expect(await all(["  \n\t "])).to.deep.equal([]);
  });

  it("rejects invalid or unfinished JSON as INVALID_ARGUMENT naming the request", async () => {
    for (const bad of ['{"a":1}\n{"a": }', '{"a":1}{"a":']) {
      const err = (await all([bad]).catch((e: unknown) => e)) as RpcError;
      expect(err).to.be.instanceOf(RpcError);
      expect(err.code).to.equal(Status.INVALID_ARGUMENT);
      expect(err.rawMessage).to.match(/^request #2 is not valid JSON/);
    }
  });

  it("yields each value as soon as it is complete", async () => {
    let released!: () => void;
    const gate = new Promise<void>((r) => (released = r));
    const source = (async function* () {
      yield '{"first":1}';
      await gate;
      yield '{"second":2}';
    })();
    const it = jsonValues(source)[Symbol.asyncIterator]();
    expect((await it.next()).value).to.deep.equal({ first: 1 });
    released();
    expect((await it.next()).value).to.deep.equal({ second: 2 });
    expect((await it.next()).done).to.equal(true);
  });
});
