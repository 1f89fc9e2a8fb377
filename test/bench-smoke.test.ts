/**
 * The benchmark harness runs end to end. `--quick` measures for a fraction of a second per
 * contender, so nothing here judges speed: only that every scenario runs and reports.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { expect } from "chai";

const ROOT = path.join(__dirname, "..");

function runQuickBench(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["run", "--silent", "bench", "--", "--quick"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("npm run bench -- --quick", function () {
  // A dozen worker processes compile TypeScript at start-up; on a busy 2-core machine that alone takes minutes.
  this.timeout(900_000);

  it("runs every scenario and prints a report with a table for each", async () => {
    const { code, stdout, stderr } = await runQuickBench();
    expect(code, `bench exited with ${code}\n${stderr.slice(-3000)}`).to.equal(0);
    for (const title of ["1. Unary echo", "1b. Unary echo, large messages", "2. Cost of consistent_hash and of tracing", "3. Server streaming", "4. Discovery", "5. Consistent hash quality", "6. Scale", "9. Distributed transactions"]) {
      expect(stdout).to.contain(`### ${title}`);
    }
    expect(stdout).to.contain("- command: `npm run bench -- --quick`");
    expect(stdout).to.match(/\| goal \| measured \| verdict \|/);
    expect(stdout).not.to.contain("NaN");
  });
});
