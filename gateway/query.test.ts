import { expect } from "chai";
import fc from "fast-check";
import { create, createFileRegistry, fromBinary, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { HttpGreeterDefinition } from "../gen/examples/gateway/v1/greeter_http_protomesh";
import { RpcError, Status } from "../runtime/errors";
import { applyQuery, parseQueryString, QueryError, resolveParam } from "./query";
import { encodeRequest } from "./request-message";
import { filesFromDescriptors } from "./route-table";

const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: filesFromDescriptors(HttpGreeterDefinition.descriptors) }));
const ECHO = registry.getMessage("examples.gateway.v1.EchoRequest") as DescMessage;

/** Parse, apply onto a fresh EchoRequest JSON object, and return it. */
function apply(query: string, options: Parameters<typeof applyQuery>[3] = {}): Record<string, JsonValue> {
  const target: Record<string, JsonValue> = {};
  applyQuery(ECHO, parseQueryString(query), target, options);
  return target;
}

/** The same, carried on through the proto3 JSON parser, and back to JSON for comparison. */
function message(query: string): Record<string, unknown> {
  const json = apply(query);
  encodeRequest(ECHO, json, registry); // throws INVALID_ARGUMENT on a bad value
  return json;
}

function queryError(fn: () => unknown): QueryError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(QueryError);
    return err as QueryError;
  }
  return expect.fail("expected a QueryError") as never;
}

/** What a client's URLSearchParams-style encoder sends: spaces as `+`, everything else reserved escaped. */
const encodeForm = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");

// Field names of EchoRequest a query can reach, by proto name and json_name, with map keys.
const FIELD_KEYS = [
  "id", "big", "ubig", "flag", "ratio", "mood", "tags", "numbers", "nested.label", "nested.level", "when", "wait", "mask", "maybe",
  "blob", "attrs[k]", "attrs[]", "path", "display_name", "shownAs", "displayName", "opt_flag", "optFlag", "nested", "attrs", "nested.nope",
];

describe("gateway query parameters", () => {
  describe("parseQueryString", () => {
    it("splits pairs, decodes escapes and + as a space, and keeps a key without = as an empty value", () => {
      expect(parseQueryString("")).to.deep.equal([]);
      expect(parseQueryString("a=1&&b=x+y&c&d=%C3%A9%2B%26&=v&e=")).to.deep.equal([
        ["a", "1"],
        ["b", "x y"],
        ["c", ""],
        ["d", "é+&"],
        ["", "v"],
        ["e", ""],
      ]);
      expect(parseQueryString("a=b=c")).to.deep.equal([["a", "b=c"]]);
      expect(parseQueryString("na%6De=x")).to.deep.equal([["name", "x"]]);
    });

    it("refuses a malformed escape in a key or a value with QueryError naming it", () => {
      expect(queryError(() => parseQueryString("a=%E0%A4%A")).message).to.contain('"%E0%A4%A"');
      expect(queryError(() => parseQueryString("%zz=1")).message).to.contain('"%zz"');
      queryError(() => parseQueryString("a=%"));
      queryError(() => parseQueryString("a=%ED%A0%80")); // a lone surrogate in UTF-8
    });

    it("keeps repeated keys in their order", () => {
      expect(parseQueryString("t=b&x=1&t=a&t=c")).to.deep.equal([["t", "b"], ["x", "1"], ["t", "a"], ["t", "c"]]);
    });
  });

  describe("applying parameters to a message", () => {
    it("fills dotted paths, by proto name or json_name, and repeated fields in order", () => {
      expect(message("id=7&nested.label=L&nested.level=3&tags=b&tags=a&numbers=2&numbers=-1")).to.deep.equal({
        id: "7",
        nested: { label: "L", level: "3" },
        tags: ["b", "a"],
        numbers: ["2", "-1"],
      });
      // display_name has json_name "shownAs": both names reach it; the lowerCamel default does not.
      expect(message("display_name=a")).to.deep.equal({ shownAs: "a" });
      expect(message("shownAs=b")).to.deep.equal({ shownAs: "b" });
      expect(apply("displayName=c")).to.deep.equal({});
      expect(message("opt_flag=false&optFlag=true")).to.deep.equal({ optFlag: true });
    });

    it("takes enums by name or by number, and refuses an unknown name in the JSON parser", () => {
      expect(message("mood=MOOD_GRUMPY")).to.deep.equal({ mood: "MOOD_GRUMPY" });
      expect(message("mood=1")).to.deep.equal({ mood: 1 });
      expect(() => message("mood=MOOD_SAD")).to.throw(RpcError).with.property("code", Status.INVALID_ARGUMENT);
    });

    it("takes single-value well-known types in their JSON form", () => {
      expect(message("when=2024-01-02T03:04:05.5Z&wait=1.5s&mask=a.b,c&maybe=-9007199254740993&opt_flag=0")).to.deep.equal({
        when: "2024-01-02T03:04:05.5Z",
        wait: "1.5s",
        mask: "a.b,c",
        maybe: "-9007199254740993",
        optFlag: false,
      });
      expect(() => message("when=yesterday")).to.throw(RpcError).with.property("code", Status.INVALID_ARGUMENT);
      expect(() => message("wait=10")).to.throw(RpcError).with.property("code", Status.INVALID_ARGUMENT);
    });

    it("checks booleans and numbers: true/false/1/0 (empty is true), a number that does not fit is INVALID_ARGUMENT", () => {
      expect(message("flag")).to.deep.equal({ flag: true });
      expect(message("flag=0")).to.deep.equal({ flag: false });
      expect(queryError(() => apply("flag=yes")).message).to.contain('"flag"');
      expect(queryError(() => apply("big=")).message).to.contain("a number is expected");
      expect(message("big=-9223372036854775808&ubig=18446744073709551615&ratio=NaN")).to.deep.equal({ big: "-9223372036854775808", ubig: "18446744073709551615", ratio: "NaN" });
      expect(() => message("ubig=-1")).to.throw(RpcError).with.property("code", Status.INVALID_ARGUMENT);
      expect(() => message("big=9223372036854775808")).to.throw(RpcError).with.property("code", Status.INVALID_ARGUMENT);
    });

    it("fills maps with key[name]=value; a map or message named whole is a QueryError", () => {
      expect(message("attrs[a]=1&attrs[b+c]=2&attrs[]=empty&attrs[a]=3")).to.deep.equal({ attrs: { a: "3", "b c": "2", "": "empty" } });
      // Any key text is an entry, `__proto__` included, all the way into the message.
      const decoded = fromBinary(ECHO, encodeRequest(ECHO, apply("attrs[a]=1&attrs[__proto__]=2"), registry)) as unknown as { attrs: Record<string, string> };
      expect(Object.entries(decoded.attrs)).to.deep.equal([["a", "1"], ["__proto__", "2"]]);
      expect(queryError(() => apply("attrs=1")).message).to.contain("attrs[key]=value");
      expect(queryError(() => apply("nested=1")).message).to.contain("nested.<field>");
      expect(resolveParam(ECHO, "tags[0]")).to.equal(undefined);
      expect(resolveParam(ECHO, "nested.label.x")).to.equal(undefined);
      expect(resolveParam(ECHO, "when.seconds")).to.equal(undefined);
    });

    it("ignores or rejects unknown names, skips reserved ones, and refuses fields the path or body binds", () => {
      const target: Record<string, JsonValue> = {};
      expect(applyQuery(ECHO, parseQueryString("nope=1&id=x&nested.nope=2"), target)).to.deep.equal(["nope", "nested.nope"]);
      expect(target).to.deep.equal({ id: "x" });
      expect(queryError(() => apply("nope=1", { unknown: "reject" })).message).to.contain('unknown query parameter "nope"');
      expect(apply("access_token=t&id=y", { unknown: "reject", reserved: new Set(["access_token"]) })).to.deep.equal({ id: "y" });
      expect(queryError(() => apply("nested.label=x", { bound: new Set(["nested"]) })).message).to.contain("already binds");
    });
  });

  describe("properties (fast-check)", () => {
    const anyText = fc.string({ maxLength: 30, unit: "grapheme" });
    const queryChars = fc.string({ maxLength: 60, unit: fc.constantFrom(..."ab=&+%[].0129AFzé_-".split("")) });

    it("parseQueryString never throws anything but QueryError on arbitrary text", () => {
      fc.assert(
        fc.property(fc.oneof(queryChars, fc.string({ maxLength: 60, unit: "binary" })), (text) => {
          try {
            const pairs = parseQueryString(text);
            for (const [k, v] of pairs) expect(typeof k === "string" && typeof v === "string").to.equal(true);
          } catch (err) {
            expect(err).to.be.instanceOf(QueryError);
          }
        }),
        { numRuns: 5000 },
      );
    });

    it("round-trips any keys and values a client encodes (+ as space), repeated keys in order", () => {
      fc.assert(
        fc.property(fc.array(fc.tuple(anyText, anyText), { maxLength: 8 }), fc.boolean(), (pairs, plus) => {
          const enc = plus ? encodeForm : encodeURIComponent;
          const text = pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&");
          // An empty key with an empty value encodes to "=", which parses back as the pair ["", ""].
          expect(parseQueryString(text)).to.deep.equal(pairs);
        }),
        { numRuns: 3000 },
      );
      // And what URLSearchParams writes reads back the same.
      fc.assert(
        fc.property(fc.array(fc.tuple(anyText, anyText), { maxLength: 8 }), (pairs) => {
          expect(parseQueryString(new URLSearchParams(pairs).toString())).to.deep.equal(pairs);
        }),
        { numRuns: 2000 },
      );
    });

    it("applying arbitrary keys and values throws only QueryError, and the JSON parser only INVALID_ARGUMENT", () => {
      const key = fc.oneof(fc.constantFrom(...FIELD_KEYS), fc.string({ maxLength: 20, unit: fc.constantFrom(..."[].ab_idnestl".split("")) }), anyText);
      const value = fc.oneof(
        anyText,
        fc.constantFrom("", "0", "1", "-1", "true", "false", "NaN", "Infinity", "1e400", "18446744073709551616", "MOOD_HAPPY", "7", "1.5s", "2024-01-02T03:04:05Z", "a,b"),
        fc.bigInt().map(String),
        fc.double().map(String),
      );
      fc.assert(
        fc.property(fc.array(fc.tuple(key, value), { maxLength: 10 }), fc.constantFrom<"ignore" | "reject">("ignore", "reject"), (pairs, unknown) => {
          const target: Record<string, JsonValue> = {};
          try {
            applyQuery(ECHO, pairs, target, { unknown, bound: new Set(["path"]) });
          } catch (err) {
            expect(err, String(err)).to.be.instanceOf(QueryError);
            return;
          }
          try {
            encodeRequest(ECHO, target, registry);
          } catch (err) {
            expect(err, String(err)).to.be.instanceOf(RpcError);
            expect((err as RpcError).code).to.equal(Status.INVALID_ARGUMENT);
          }
        }),
        { numRuns: 5000 },
      );
    });

    it("a repeated field keeps every value in the order given", () => {
      fc.assert(
        fc.property(fc.array(anyText, { maxLength: 10 }), fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 10 }), (tags, numbers) => {
          const text = [...tags.map((t) => `tags=${encodeForm(t)}`), ...numbers.map((n) => `numbers=${n}`)].join("&");
          const json = message(text);
          expect(json.tags ?? []).to.deep.equal(tags);
          expect(json.numbers ?? []).to.deep.equal(numbers.map(String));
        }),
        { numRuns: 1000 },
      );
    });

    it("a map gets every key given, the last value of a repeated key winning, whatever the key's text", () => {
      const mapKey = fc.oneof(anyText, fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "a"));
      fc.assert(
        fc.property(fc.array(fc.tuple(mapKey, anyText), { maxLength: 8 }), (entries) => {
          fc.pre(entries.every(([k]) => !/[[\]]/.test(k)));
          const expected = new Map<string, string>();
          for (const [k, v] of entries) expected.set(k, v);
          const json = apply(entries.map(([k, v]) => `attrs[${encodeForm(k)}]=${encodeForm(v)}`).join("&"));
          const got = (json.attrs ?? {}) as Record<string, string>;
          expect(Object.getPrototypeOf(got) === null || Object.getPrototypeOf(got) === Object.prototype).to.equal(true);
          expect(new Map(Object.entries(got))).to.deep.equal(expected);
          encodeRequest(ECHO, json, registry);
        }),
        { numRuns: 2000, examples: [[[["a", "1"], ["__proto__", "2"]]]] },
      );
    });

    it("never hangs: long and adversarial input is handled in linear time", () => {
      const long = (unit: string, n: number) => unit.repeat(n);
      const inputs = [
        long("&", 200_000),
        long("=", 200_000),
        long("%", 100_000),
        `a=${long("%41", 100_000)}`,
        `${long("[", 100_000)}=1`,
        `${long("a.", 100_000)}a=1`,
        `attrs[${long("[", 50_000)}=1`,
        long("tags=x&", 30_000),
        long("nested.label=x&", 20_000),
      ];
      for (const text of inputs) {
        const started = process.cpuUsage();
        try {
          apply(text);
        } catch (err) {
          expect(err).to.be.instanceOf(QueryError);
        }
        const used = process.cpuUsage(started);
        expect((used.user + used.system) / 1000, `CPU ms for ${text.slice(0, 20)}…`).to.be.below(2000);
      }
    });
  });
});
