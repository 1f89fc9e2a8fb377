import { expect } from "chai";
import fc from "fast-check";
import { canonicalTemplate, parseTemplate, TemplateSyntaxError } from "./path-template";
import { compileTemplate, decodeUnreserved, PathError, splitPath } from "./path-match";
import { Router } from "./router";

function route(httpMethod: string, template: string) {
  return { httpMethod, compiled: compileTemplate(parseTemplate(template)), name: `${httpMethod} ${template}` };
}

function matchPath(template: string, path: string): Record<string, string> | undefined {
  const split = splitPath(path)!;
  const t = parseTemplate(template);
  const m = compileTemplate(t).match(t.verb === undefined ? split.segments : split.segmentsWithoutVerb ?? []);
  return m && Object.fromEntries(m);
}

describe("gateway path templates", () => {
  it("parses literals, wildcards, variables with and without segments, and a verb", () => {
    const t = parseTemplate("/v1/{name=shelves/*/books/**}:publish");
    expect(t.segments.map((s) => s.kind)).to.deep.equal(["literal", "literal", "wildcard", "literal", "deep"]);
    expect(t.variables).to.deep.equal([{ fieldPath: ["name"], start: 1, end: 5, multi: true }]);
    expect(t.verb).to.equal("publish");
    expect(parseTemplate("/v1/{book.id}").variables[0]).to.deep.equal({ fieldPath: ["book", "id"], start: 1, end: 2, multi: false });
  });

  it("treats {x} as {x=*}", () => {
    expect(canonicalTemplate(parseTemplate("/a/{x}"))).to.equal(canonicalTemplate(parseTemplate("/a/{x=*}")));
    expect(canonicalTemplate(parseTemplate("/a/{x}"), false)).to.equal("/a/*");
  });

  for (const [bad, why] of [
    ["v1/x", "starts with /"],
    ["/v1/**/x", "** must be the last"],
    ["/v1/{a={b}}", "cannot nest"],
    ["/v1/{a", "unclosed"],
    ["/v1/{a.}", "bad field path"],
    ["/v1/{1a}", "bad field path"],
    ["/v1//x", "empty segment"],
    ["/v1/x/", "empty segment"],
    ["/v1/x:", "empty verb"],
    ["/v1/{a}/{a}", "appears twice"],
    ["/v1/x y", "unexpected"],
    ["/v1/%zz", "percent-escape"],
  ] as const) {
    it(`rejects ${JSON.stringify(bad)} (${why})`, () => {
      expect(() => parseTemplate(bad)).to.throw(TemplateSyntaxError, why);
    });
  }

  it("captures single-segment variables fully decoded", () => {
    expect(matchPath("/v1/users/{id}", "/v1/users/a%20b%C3%A9")).to.deep.equal({ id: "a bé" });
  });

  it("refuses %2F, . and .. where one segment is expected", () => {
    expect(() => matchPath("/v1/users/{id}", "/v1/users/a%2Fb")).to.throw(PathError, "%2F");
    expect(() => matchPath("/v1/users/{id}", "/v1/users/%2E%2E")).to.throw(PathError, '".."');
    expect(() => matchPath("/v1/{name=files/**}", "/v1/files/a/../b")).to.throw(PathError, '".."');
  });

  it("keeps reserved escapes and slashes in multi-segment variables", () => {
    expect(matchPath("/v1/{name=shelves/*/books/*}", "/v1/shelves/s%2F1/books/b%20c")).to.deep.equal({ name: "shelves/s%2F1/books/b c" });
    expect(matchPath("/v1/{path=**}", "/v1/a/b/c")).to.deep.equal({ path: "a/b/c" });
    expect(matchPath("/v1/{path=**}", "/v1")).to.deep.equal({ path: "" });
  });

  it("does not match an empty segment with *", () => {
    expect(matchPath("/v1/{id}/x", "/v1//x")).to.equal(undefined);
  });

  it("matches literals against their decoded form", () => {
    expect(matchPath("/v1/a%20b", "/v1/a%20b")).to.deep.equal({});
    expect(matchPath("/v1/a%20b", "/v1/a b")).to.deep.equal({});
  });
});

describe("gateway router", () => {
  const router = new Router([
    route("GET", "/v1/books/{id}"),
    route("GET", "/v1/books/special"),
    route("POST", "/v1/books/{id}:publish"),
    route("DELETE", "/v1/books/{id}"),
    route("GET", "/v1/{name=files/**}"),
  ]);

  it("prefers the more specific template", () => {
    const m = router.match("GET", "/v1/books/special");
    expect(m.kind === "found" && m.route.name).to.equal("GET /v1/books/special");
  });

  it("recognises a verb only when a route registered it", () => {
    const post = router.match("POST", "/v1/books/7:publish");
    expect(post.kind === "found" && Object.fromEntries(post.variables)).to.deep.equal({ id: "7" });
    const get = router.match("GET", "/v1/books/a:b");
    expect(get.kind === "found" && Object.fromEntries(get.variables)).to.deep.equal({ id: "a:b" });
    // The verb is registered, but GET has no route with it: the colon is data.
    const getPublish = router.match("GET", "/v1/books/7:publish");
    expect(getPublish.kind === "found" && Object.fromEntries(getPublish.variables)).to.deep.equal({ id: "7:publish" });
  });

  it("answers method-not-allowed with the methods that would match", () => {
    expect(router.match("PUT", "/v1/books/7")).to.deep.equal({ kind: "method-not-allowed", allow: ["DELETE", "GET"] });
    expect(router.match("GET", "/v2/x")).to.deep.equal({ kind: "not-found" });
    expect(router.match("GET", "relative")).to.deep.equal({ kind: "not-found" });
  });

  it("matches a deep wildcard with any number of segments", () => {
    const m = router.match("GET", "/v1/files/a/b%2Fc/d");
    expect(m.kind === "found" && m.variables.get("name")).to.equal("files/a/b%2Fc/d");
  });
});

describe("gateway path matching (properties)", () => {
  const segmentText = fc.string({ minLength: 1, maxLength: 8, unit: fc.constantFrom(..."aZ09-._~ /%:é?#+".split("")) });
  const encodeSegment = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

  it("round-trips any single-segment value a client encodes per the spec (except / . ..)", () => {
    const matcher = compileTemplate(parseTemplate("/v1/items/{id}"));
    fc.assert(
      fc.property(segmentText, (value) => {
        fc.pre(!value.includes("/") && value !== "." && value !== "..");
        const m = matcher.match(splitPath(`/v1/items/${encodeSegment(value)}`)!.segments);
        expect(m?.get("id")).to.equal(value);
      }),
      { numRuns: 2000 },
    );
  });

  it("round-trips multi-segment values up to reserved escapes", () => {
    const matcher = compileTemplate(parseTemplate("/v1/{name=docs/**}"));
    fc.assert(
      fc.property(fc.array(segmentText, { minLength: 1, maxLength: 4 }), (parts) => {
        fc.pre(parts.every((p) => p !== "." && p !== ".."));
        const m = matcher.match(splitPath(`/v1/docs/${parts.map(encodeSegment).join("/")}`)!.segments);
        const got = m?.get("name");
        expect(got).to.be.a("string");
        // Reserved characters stay escaped; everything else arrives as the client meant it.
        const keep = (p: string) => p.replace(/[:/?#[\]@!$&'()*+,;=]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
        expect(got).to.equal(`docs/${parts.map(keep).join("/")}`);
      }),
      { numRuns: 1000 },
    );
  });

  it("never throws anything but PathError on arbitrary paths, for any template", () => {
    const templates = ["/v1/{a}", "/v1/{a=b/*}/c:verb", "/{x=**}", "/v1/*/{y.z}"].map((t) => new Router([route("GET", t), route("POST", t)]));
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.constantFrom("GET", "POST", "PUT"), (tail, method) => {
        for (const r of templates) {
          try {
            r.match(method, `/${tail}`);
          } catch (err) {
            expect(err).to.be.instanceOf(PathError);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("parses or rejects arbitrary template text with TemplateSyntaxError, never anything else", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30, unit: fc.constantFrom(..."/{}=*.:abc%2F".split("")) }), (text) => {
        try {
          const t = parseTemplate(text);
          // Whatever parses writes back to something that parses to the same shape.
          expect(canonicalTemplate(parseTemplate(canonicalTemplate(t)))).to.equal(canonicalTemplate(t));
        } catch (err) {
          expect(err).to.be.instanceOf(TemplateSyntaxError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("decodeUnreserved keeps reserved escapes upper-cased", () => {
    expect(decodeUnreserved("a%2fb%41%3A")).to.equal("a%2FbA%3A");
  });
});
