import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { main } from "../cli/main";
import { deadPort } from "./helpers/etcd";
import { run } from "./helpers/packed";

// Every `protomesh` command fails in one human line; the framework's JSON log lines and stacks
// reach stderr only with --verbose or PROTOMESH_LOG_LEVEL.

const CLI = path.resolve(__dirname, "..", "bin", "protomesh.js");

function userEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  // The suite quiets logs through PROTOMESH_LOG_LEVEL; a user has nothing set.
  return { ...extra, PROTOMESH_LOG_LEVEL: undefined };
}

describe("protomesh command output", function () {
  this.timeout(120_000);
  let etcd: string;
  before(async () => {
    etcd = `http://127.0.0.1:${await deadPort()}`;
  });

  const commands: string[][] = [
    ["ls", "etcd:///greeter"],
    ["call", "etcd:///greeter", "examples.greeter.v1.Greeter/SayHello", "-d", "{}"],
    ["config", "history", "--app", "greeter", "--env", "dev"],
  ];
  for (const args of commands) {
    it(`\`protomesh ${args.slice(0, 2).join(" ")}\` against an unreachable etcd: one line, no log lines, no empty resolution note`, async () => {
      const result = await run(process.execPath, [CLI, ...args], os.tmpdir(), { env: userEnv({ ETCD_ENDPOINTS: etcd }), timeoutMs: 90_000 });
      expect(result.code).to.equal(1);
      expect(result.stdout).to.equal("");
      const lines = result.stderr.split("\n").filter(Boolean);
      expect(lines, result.stderr).to.have.length(1);
      expect(lines[0]).to.match(new RegExp(`^protomesh ${args[0]}( [a-z]+)?: `));
      expect(lines[0]).not.to.include("Resolution note");
      expect(lines[0]).not.to.match(/^\{|\n\s+at /);
    });
  }

  it("--verbose brings the framework's log lines back", async () => {
    const result = await run(process.execPath, [CLI, "ls", "etcd:///greeter", "--verbose"], os.tmpdir(), { env: userEnv({ ETCD_ENDPOINTS: etcd }), timeoutMs: 90_000 });
    expect(result.code).to.equal(1);
    const json = result.stderr.split("\n").filter((l) => l.startsWith("{"));
    expect(json.length).to.be.greaterThan(0);
    expect(result.stderr.split("\n").filter(Boolean).at(-1)).to.match(/^protomesh ls: /);
  });

  it("ends quietly when the reader of its output goes away (`protomesh … | head -1`)", async () => {
    for (const args of [["--help"], ["tx", "--help"], ["gateway", "--help"]]) {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: os.tmpdir(), env: userEnv(process.env), stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.destroy(); // the reader is gone before the command writes: every write fails with EPIPE
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      expect(stderr, args.join(" ")).to.equal("");
      expect(code, args.join(" ")).to.equal(0);
    }
  });

  it("a failure the command does not word itself still gets one line naming the command, exit 1", async () => {
    // A directory where docs writes its api.md file.
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-cli-quiet-"));
    fs.mkdirSync(path.join(out, "api.md"));
    try {
      const result = await run(process.execPath, [CLI, "docs", "--out", out], path.resolve(__dirname, ".."), { env: userEnv({}), timeoutMs: 90_000 });
      expect(result.code).to.equal(1);
      expect(result.stderr).to.match(/^protomesh docs: EISDIR: illegal operation on a directory, open '[^']+'\n$/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});

/** Runs `protomesh …` in this process with `env` as its whole environment. */
async function protomesh(args: string[], env: NodeJS.ProcessEnv = {}, cwd = os.tmpdir()): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { cwd, env, out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

describe("protomesh commands without etcd", () => {
  // A missing etcd is the surroundings, not the command line: exit 1 and one line, in every
  // command, worded for the command line (its flag, or ETCD_ENDPOINTS), not for the library.
  const byFlag = "no etcd endpoints: pass --endpoints host:port or set ETCD_ENDPOINTS";
  const byEnv = "no etcd endpoints: set ETCD_ENDPOINTS=host:port";
  const commands: Array<[string[], string]> = [
    [["tx", "list"], `protomesh tx list: ${byFlag} (or --coordinator host:port)`],
    [["config", "history", "--app", "greeter", "--env", "dev"], `protomesh config history: ${byFlag}`],
    [["traffic", "get", "greeter"], `protomesh traffic get: ${byFlag}`],
    [["release", "list"], `protomesh release: ${byFlag}`],
    [["prometheus-sd", "--print"], `protomesh prometheus-sd: ${byFlag}`],
    [["gateway", "keys", "list"], "protomesh gateway keys: no etcd endpoints: pass --etcd host:port or set ETCD_ENDPOINTS"],
    [["ls", "etcd:///greeter"], `protomesh ls: cannot resolve etcd:///greeter: ${byEnv}`],
    [["console", "user", "list"], `protomesh console: ${byEnv}`],
  ];
  for (const [args, line] of commands) {
    it(`\`protomesh ${args.slice(0, 2).join(" ")}\` with no etcd named: one line, exit 1`, async () => {
      const r = await protomesh(args);
      expect(r.out).to.equal("");
      expect(r.err).to.equal(`${line}\n`);
      expect(r.code, r.err).to.equal(1);
    });
  }

  it("`protomesh health etcd:///…` with no etcd named: one line, and grpc_health_probe's exit code for a connection failure (2)", async () => {
    const r = await protomesh(["health", "etcd:///greeter"]);
    expect(r.err).to.equal(`protomesh health: ${byEnv}\n`);
    expect(r.code).to.equal(2);
  });
});

describe("protomesh commands given a file where a directory goes", () => {
  let work: string;
  let file: string;
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-file-in-the-way-"));
    file = path.join(work, "notes");
    fs.writeFileSync(file, "mine\n");
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  const cases: Array<[string, (file: string) => string[]]> = [
    ["gen --out FILE/gen", (f) => ["gen", "--out", path.join(f, "gen")]],
    ["gen --out FILE", (f) => ["gen", "--out", f]],
    ["docs --out FILE/docs", (f) => ["docs", "--out", path.join(f, "docs")]],
    ["docs --out FILE", (f) => ["docs", "--out", f]],
    ["new orders --dir FILE/orders", (f) => ["new", "orders", "--dir", path.join(f, "orders")]],
    ["new orders --dir FILE", (f) => ["new", "orders", "--dir", f]],
  ];
  for (const [name, args] of cases) {
    it(`\`protomesh ${name}\`: says the file is not a directory, exit 1, and leaves the file alone`, async () => {
      const line = args(file);
      const r = await protomesh(line, {}, work);
      const target = line.at(-1)!;
      const says = target === file ? `${file} is a file, not a directory` : `cannot create ${target}: ${file} is a file, not a directory`;
      expect(r.err).to.equal(`protomesh ${line[0]}: ${says}\n`);
      expect(r.out).to.equal("");
      expect(r.code).to.equal(1);
      expect(fs.readFileSync(file, "utf8")).to.equal("mine\n");
      expect(fs.readdirSync(work)).to.deep.equal(["notes"]);
    });
  }
});

describe("protomesh usage errors", () => {
  // One line saying what is wrong, one pointing at --help; the whole usage only for --help itself.
  const cases: Array<[string, string[]]> = [
    ["", ["frobnicate"]],
    ["gen", ["gen", "--frobnicate"]],
    ["docs", ["docs", "--port", "80"]],
    ["new", ["new"]],
    ["etcd", ["etcd", "--port", "http"]],
    ["ls", ["ls"]],
    ["call", ["call"]],
    ["describe", ["describe"]],
    ["config", ["config", "frobnicate"]],
    ["traffic", ["traffic", "frobnicate"]],
    ["gateway", ["gateway", "--frobnicate"]],
    ["release", ["release", "frobnicate"]],
    ["prometheus-sd", ["prometheus-sd", "--print", "--listen", "127.0.0.1:1"]],
    ["tx", ["tx", "frobnicate"]],
    ["tx-server", ["tx-server", "--frobnicate"]],
    ["console", ["console", "frobnicate"]],
  ];
  for (const [command, args] of cases) {
    const name = command === "" ? "protomesh" : `protomesh ${command}`;
    it(`\`protomesh ${args.join(" ")}\`: the mistake and a pointer to \`${name} --help\`, exit 2; --help prints the usage to stdout, exit 0`, async () => {
      const r = await protomesh(args);
      expect(r.out).to.equal("");
      expect(r.err).to.match(new RegExp(`^${name}: [^\n]+\nrun '${name} --help' for usage\n$`));
      expect(r.code, r.err).to.equal(2);
      const help = await protomesh(command === "" ? ["--help"] : [command, "--help"]);
      expect(help.err).to.equal("");
      expect(help.out).to.match(new RegExp(`^usage: protomesh ${command === "" ? "<command>" : command} `));
      expect(help.code).to.equal(0);
    });
  }

  it("`protomesh health` keeps grpc_health_probe's exit code for bad flags (1)", async () => {
    const r = await protomesh(["health"]);
    expect(r.err).to.equal("protomesh health: missing <target> (host:port or etcd:///service)\nrun 'protomesh health --help' for usage\n");
    expect(r.code).to.equal(1);
  });
});
