import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";

// TypeScript's `moduleResolution: "node10"` (what `"module": "commonjs"` picks by default) reads
// no `exports`: `typesVersions` is how `import … from "protomesh/gateway"` finds its types there.

const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, "..", "package.json"), "utf8")) as {
  exports: Record<string, string | { types?: string }>;
  typesVersions?: Record<string, Record<string, string[]>>;
};

describe("package.json types for every subpath", () => {
  it("maps each subpath export to the same declaration file in typesVersions, and nothing else", () => {
    const fromExports: Record<string, string[]> = {};
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (subpath === "." || typeof target !== "object" || target.types === undefined) continue;
      fromExports[subpath.replace(/^\.\//, "")] = [target.types.replace(/^\.\//, "")];
    }
    expect(Object.keys(fromExports)).to.include("gateway");
    expect(pkg.typesVersions?.["*"]).to.deep.equal(fromExports);
  });
});
