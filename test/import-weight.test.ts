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
    expect(loaded.some((f) => /node_modules\/etcd3\//.test(f)), "etcd3 is loaded").to.equal(true);
    for (const what of Object.keys(NOT_AT_ROOT)) expect(forbidden(loaded, what), what).to.deep.equal([]);
  });
});
