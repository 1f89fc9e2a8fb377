import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..");

function loadedBy(entry: string): string[] {
  const script = `require("tsx/cjs"); require(${JSON.stringify(entry)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  return JSON.parse(execFileSync(process.execPath, ["-e", script], { cwd: ROOT, encoding: "utf8", timeout: 60_000 })) as string[];
}

describe("transaction import boundary", function () {
  this.timeout(90_000);

  it("keeps `import \"protomesh\"` free of transaction code and its database drivers", () => {
    const files = loadedBy(path.join(ROOT, "index.ts"));
    expect(files.filter((f) => f.includes(`${path.sep}transaction${path.sep}`))).to.deep.equal([]);
    expect(files.filter((f) => /node_modules[\\/](pg|pg-pool|@electric-sql|better-sqlite3)[\\/]/.test(f))).to.deep.equal([]);
  });

  it("loads no database driver until a store or barrier is opened", () => {
    const files = loadedBy(path.join(ROOT, "transaction", "index.ts"));
    expect(files.some((f) => f.includes(`${path.sep}transaction${path.sep}index.ts`))).to.equal(true);
    expect(files.filter((f) => /node_modules[\\/](pg|pg-pool|@electric-sql|better-sqlite3)[\\/]/.test(f))).to.deep.equal([]);
  });
});
