import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import { GoldenRunner, TESTDATA, goldenCases, readTree } from "./golden-harness";

// Pins protoc-gen-protomesh's output. After an intended change, rewrite the
// expected files with `UPDATE_GOLDEN=1 npx mocha codegen/golden.test.ts` and
// review the diff.
const UPDATE = process.env.UPDATE_GOLDEN === "1";
const REPO = path.resolve(__dirname, "..");

describe("protoc-gen-protomesh golden files", function () {
  this.timeout(120_000);
  let runner: GoldenRunner;

  before(() => {
    runner = new GoldenRunner();
  });
  after(() => runner?.dispose());

  for (const name of goldenCases()) {
    it(`${name}: generates exactly the files in expected/`, async () => {
      const actual = readTree(await runner.generate(name), "_protomesh.ts");
      const expectedDir = path.join(TESTDATA, name, "expected");
      if (UPDATE) {
        fs.rmSync(expectedDir, { recursive: true, force: true });
        for (const [rel, text] of actual) {
          fs.mkdirSync(path.dirname(path.join(expectedDir, rel)), { recursive: true });
          fs.writeFileSync(path.join(expectedDir, rel), text);
        }
        return;
      }
      const expected = readTree(expectedDir, "_protomesh.ts");
      expect([...actual.keys()], "generated file names").to.deep.equal([...expected.keys()]);
      for (const [rel, text] of actual) {
        // Compared as strings so a failure shows a diff; equal strings are equal bytes.
        expect(text, `${name}/expected/${rel}`).to.equal(expected.get(rel));
      }
    });
  }

  it("generates the same bytes when run again", async () => {
    const first = readTree(await runner.generate("shapes"), "_protomesh.ts");
    const again = new GoldenRunner();
    try {
      expect(readTree(await again.generate("shapes"), "_protomesh.ts")).to.deep.equal(first);
    } finally {
      again.dispose();
    }
  });

  it("output compiles under strict against ts-proto's output and protomesh's types", async () => {
    const outs = await Promise.all(goldenCases().map((name) => runner.generate(name)));
    const dir = runner.dir;
    // The runtime is written alongside; type against its contract files only.
    fs.writeFileSync(
      path.join(dir, "protomesh.ts"),
      `export type { DeepPartial, ServiceDefinition } from ${JSON.stringify(path.join(REPO, "runtime/definition"))};\n` +
        `export type { CallContext, CallOptions } from ${JSON.stringify(path.join(REPO, "runtime/context"))};\n`,
    );
    fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"), "dir");
    fs.writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022", module: "commonjs", moduleResolution: "node10", strict: true, noEmit: true,
          esModuleInterop: true, skipLibCheck: true, types: ["node"],
          paths: { protomesh: ["./protomesh.ts"] },
        },
        include: ["protomesh.ts", ...outs.map((o) => path.relative(dir, o))],
      }),
    );
    const tsc = spawnSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", dir], { encoding: "utf8" });
    expect(tsc.stdout + tsc.stderr).to.equal("");
    expect(tsc.status).to.equal(0);
  });
});
