import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { expect } from "chai";

// `npm run demo` starts etcd, greeter processes, a coordinator (tx-server), a process with the banks
// and the HTTP greeter, and in itself a gateway (and the console under --keep); whichever way it
// ends, none may outlive it, and none of their ports may still be open.
// Every process it starts inherits its environment, so a marker variable finds them all, even
// ones re-parented to init after the demo exited.

const REPO = path.resolve(__dirname, "..");

/** Pids of live processes whose environment holds `MARK=value`. */
function marked(value: string): number[] {
  const needle = Buffer.from(`PROTOMESH_DEMO_MARK=${value}\0`);
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/environ`).includes(needle)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

/** Waits until `pattern` appears in the demo's stdout. */
function waitForOutput(child: ChildProcess, output: () => string, pattern: RegExp, errors: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (pattern.test(output())) {
        child.stdout!.off("data", check);
        resolve();
      }
    };
    child.stdout!.on("data", check);
    child.once("exit", (code) => reject(new Error(`demo exited (${code}) before printing ${pattern}:\n${output()}\n--- stderr\n${errors()}`)));
  });
}

/** The environment a user runs the demo in: a private etcd, no log level chosen. */
function demoEnv(mark: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PROTOMESH_DEMO_MARK: mark };
  delete env.ETCD_ENDPOINTS;
  delete env.PROTOMESH_LOG_LEVEL;
  return env;
}

function startDemo(args: string[], mark: string) {
  const child = spawn(process.execPath, [path.join(REPO, "bin", "run.js"), path.join(REPO, "examples", "demo", "main.ts"), "--calls", "30", ...args], {
    cwd: REPO,
    // Its own process group, like a terminal's foreground job: Ctrl-C reaches every member.
    detached: true,
    env: demoEnv(mark),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return { child, stdout: () => stdout, stderr: () => stderr };
}

/** The ports of the fleet's new members as the demo printed them: gateway, coordinator, HTTP greeter, banks, console. */
function fleetPorts(stdout: string): number[] {
  const lines = stdout.split("\n").filter((l) => /^\s+(protomesh-tx|http-greeter|bank-a|bank-b|gateway)\s|admin console:/.test(l));
  return lines.map((l) => Number(/127\.0\.0\.1:(\d+)/.exec(l)?.[1]));
}

/** True when something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Polls until no marked process is left (they were asked to stop before the demo exited). */
async function leftBehind(mark: string): Promise<number[]> {
  for (let i = 0; i < 50; i++) {
    const pids = marked(mark);
    if (pids.length === 0) return [];
    await new Promise((r) => setTimeout(r, 100));
  }
  return marked(mark);
}

describe("npm run demo", function () {
  this.timeout(400_000);

  it("leaves no process behind when it finishes, and prints tables, not log lines", async () => {
    const mark = randomBytes(6).toString("hex");
    expect(marked(mark)).to.deep.equal([]);
    const demo = startDemo([], mark);
    await waitForOutput(demo.child, demo.stdout, /round_robin: 30 calls/, demo.stderr);
    // The demo itself, etcd, three greeters, the coordinator and the fleet process are running now.
    expect(marked(mark).length).to.be.at.least(7);
    const [code] = (await once(demo.child, "exit")) as [number | null];
    expect(code, demo.stderr()).to.equal(0);
    expect(await leftBehind(mark)).to.deep.equal([]);
    // The fleet did its work: a call through the gateway, and the transfers through the coordinator.
    expect(demo.stdout()).to.match(/GET \/v1\/hello\/demo → 200 /).and.match(/TCC: alice pays bob 15\.00\s+succeed/);
    const ports = fleetPorts(demo.stdout());
    expect(ports).to.have.length(5);
    for (const port of ports) expect(await listening(port), `port ${port}`).to.equal(false);
    const logLines = [...demo.stdout().split("\n"), ...demo.stderr().split("\n")].filter((l) => l.startsWith("{"));
    expect(logLines, "JSON log lines in the demo's output").to.deep.equal([]);
    expect(demo.stderr()).to.equal("");
  });

  it("stops the processes still starting when it is stopped during start-up", async () => {
    const mark = randomBytes(6).toString("hex");
    const demo = startDemo([], mark);
    await waitForOutput(demo.child, demo.stdout, /starting the fleet/, demo.stderr);
    // etcd, the demo and at least one child of the fleet, none of them ready yet.
    for (let i = 0; i < 200 && marked(mark).length < 4; i++) await new Promise((r) => setTimeout(r, 50));
    expect(marked(mark).length, "processes of the starting demo").to.be.at.least(4);
    expect(demo.stdout(), "the fleet is still starting").not.to.match(/all up in/);
    // The demo alone, as a supervisor or `timeout` would stop it: its children must be stopped by it.
    process.kill(demo.child.pid!, "SIGTERM");
    const [code] = (await once(demo.child, "exit")) as [number | null];
    expect(code, demo.stderr()).to.equal(143);
    expect(await leftBehind(mark)).to.deep.equal([]);
  });

  it("leaves no process behind on Ctrl-C under --keep", async () => {
    const mark = randomBytes(6).toString("hex");
    const demo = startDemo(["--keep"], mark);
    await waitForOutput(demo.child, demo.stdout, /press Ctrl-C to stop/, demo.stderr);
    expect(marked(mark).length).to.be.at.least(7);
    const ports = fleetPorts(demo.stdout());
    expect(ports).to.have.length(6);
    for (const port of ports) expect(await listening(port), `port ${port} while the demo runs`).to.equal(true);
    process.kill(-demo.child.pid!, "SIGINT");
    const [code] = (await once(demo.child, "exit")) as [number | null];
    expect(code).to.equal(130);
    expect(await leftBehind(mark)).to.deep.equal([]);
    for (const port of ports) expect(await listening(port), `port ${port}`).to.equal(false);
  });
});
