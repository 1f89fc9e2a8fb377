import { expect } from "chai";
import { MissingDependencyError, requireOptional } from "./optional-dependency";

describe("requireOptional", () => {
  it("returns an installed package's exports", () => {
    const yaml = requireOptional<typeof import("yaml")>("yaml", "config import", "^2.9.1");
    expect(yaml.parse("a: 1")).to.deep.equal({ a: 1 });
  });

  it("names the package, what needs it and the install command when the package is missing", () => {
    let caught: unknown;
    try {
      requireOptional("protomesh-no-such-package", "the widget store", "~1.2.0");
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(MissingDependencyError);
    const e = caught as MissingDependencyError;
    expect(e.packageName).to.equal("protomesh-no-such-package");
    expect(e.message).to.equal('the widget store needs the npm package protomesh-no-such-package, which is not installed. Run: npm install protomesh-no-such-package@"~1.2.0"');
  });

  it("lets a broken install's error through instead of calling it missing", () => {
    // A package that exists but whose entry point is missing inside it: a path into yaml that does not exist.
    expect(() => requireOptional("yaml/no-such-entry", "x", "1")).to.throw(Error).that.is.not.instanceOf(MissingDependencyError);
  });
});
