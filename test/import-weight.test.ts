import * as path from "node:path";
import { expect } from "chai";
import { forbidden, modulesLoadedBy, NOT_AT_ROOT } from "./helpers/import-weight";

// `import "protomesh"` is what every service pays at start-up: the runtime, the etcd registry
// and grpc-js, never the code generator or another capability's heavy parts.

const REPO = path.resolve(__dirname, "..");

describe('import "protomesh"', function () {
  this.timeout(90_000);

  it("loads the runtime and the etcd registry, and nothing of the generator or other capabilities", () => {
    const loaded = modulesLoadedBy(path.join(REPO, "index.ts"), REPO, ["tsx/cjs"]).map((f) => f.split(path.sep).join("/"));
    expect(loaded.some((f) => f.endsWith("/runtime/server.ts")), "runtime/server.ts is loaded").to.equal(true);
    expect(loaded.some((f) => /registry\/etcd\/resolver\.ts$/.test(f)), "the etcd:/// resolver is registered").to.equal(true);
    for (const what of Object.keys(NOT_AT_ROOT)) expect(forbidden(loaded, what), what).to.deep.equal([]);
  });

  it("loads what it deferred once it is used: etcd3 for a registry, @bufbuild/protobuf for a server, pino for a log line", () => {
    const use = [
      `const pm = require(${JSON.stringify(path.join(REPO, "index.ts"))});`,
      `pm.etcdRegistry({ endpoints: ["127.0.0.1:1"] }).close();`,
      `pm.createServer({ port: 0, registry: false });`,
      `pm.getLogger().debug("first line");`,
    ].join("");
    const loaded = modulesLoadedBy(use, REPO, ["tsx/cjs"], true).map((f) => f.split(path.sep).join("/"));
    for (const pkg of ["etcd3", "@bufbuild/protobuf", "pino"]) expect(loaded.some((f) => f.includes(`/node_modules/${pkg}/`)), pkg).to.equal(true);
  });
});
