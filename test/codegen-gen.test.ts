import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";

// `protomesh gen` end to end: real processes, a throw-away project on disk.

const REPO = path.resolve(__dirname, "..");
const CLI = path.join(REPO, "bin", "protomesh.js");

function protomesh(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: "utf8", env: { ...process.env, ...env }, timeout: 180_000 }); // a loaded machine is slow, never wrong
}

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/** Every file under `dir` with its content, to compare a tree before and after. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.join(rel, e.name);
      if (e.isDirectory()) walk(child);
      else out[child] = fs.readFileSync(path.join(dir, child), "utf8");
    }
  };
  walk("");
  return out;
}

const ZOO_PROTO = `syntax = "proto3";

// The zoo keeps animals.
package acme.zoo.v1;

import "google/protobuf/timestamp.proto";
import "zoo/v1/animal.proto";

// Keeper feeds animals and reports on them.
service Keeper {
  rpc Feed(FeedRequest) returns (Animal);
  rpc Census(CensusRequest) returns (stream Animal);
  rpc Admit(stream Animal) returns (CensusRequest);
  rpc Patrol(stream Animal.Tag) returns (stream Animal.Tag);
}

message FeedRequest {
  string animal_id = 1;
  oneof food {
    string fruit = 2;
    uint32 grams_of_meat = 3;
  }
  google.protobuf.Timestamp at = 4;
}

message CensusRequest {
  map<string, uint32> counts = 1;
  optional string zone = 2;
}
`;

const ANIMAL_PROTO = `syntax = "proto3";

package acme.zoo.v1;

message Animal {
  message Tag {
    string code = 1;
  }
  enum Diet {
    DIET_UNSPECIFIED = 0;
    DIET_HERBIVORE = 1;
  }
  string id = 1;
  Diet diet = 2;
  repeated Tag tags = 3;
}
`;

const SHOP_PROTO = `syntax = "proto3";

package shop.v1;

import "google/api/annotations.proto";

message GetItemRequest {
  string id = 1;
}

message Item {
  string id = 1;
  string name = 2;
}

service ShopService {
  rpc GetItem(GetItemRequest) returns (Item) {
    option (google.api.http) = {get: "/v1/items/{id}"};
  }
}
`;

describe("protomesh gen (end to end)", function () {
  this.timeout(600_000); // gen, tsc and a server per test; minutes on a loaded machine
  let project: string;

  before(() => {
    project = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-gen-e2e-"));
    write(path.join(project, "zoo/v1/zoo.proto"), ZOO_PROTO);
    write(path.join(project, "zoo/v1/animal.proto"), ANIMAL_PROTO);
    // A .proto inside node_modules must not be compiled (it would clash).
    write(path.join(project, "node_modules/some-lib/zoo/v1/animal.proto"), ANIMAL_PROTO);
    // Just enough for tsc to resolve ts-proto's imports from gen/.
    for (const scope of ["@bufbuild", "@grpc"]) {
      fs.symlinkSync(path.join(REPO, "node_modules", scope), path.join(project, "node_modules", scope), "dir");
    }
    write(path.join(project, "gen/stale.ts"), "// left over from an earlier run\n");
  });

  after(() => {
    if (project) fs.rmSync(project, { recursive: true, force: true });
  });

  it("generates a fresh project without buf files, replacing gen/, and the output typechecks under strict", function () {
    const run = protomesh(["gen"], project);
    expect(run.stderr).to.equal("");
    expect(run.status).to.equal(0);
    expect(run.stdout).to.match(/^protomesh gen: \d+ files → gen\/ \(\d+\.\d s\)\n$/);
    expect(fs.existsSync(path.join(project, "gen/zoo/v1/zoo_protomesh.ts"))).to.equal(true);
    expect(fs.existsSync(path.join(project, "gen/zoo/v1/animal_protomesh.ts")), "no services, no file").to.equal(false);
    expect(fs.existsSync(path.join(project, "gen/zoo/v1/zoo.ts"))).to.equal(true);
    expect(fs.existsSync(path.join(project, "gen/google/protobuf/timestamp.ts"))).to.equal(true);
    expect(fs.existsSync(path.join(project, "gen/stale.ts")), "gen/ is replaced (clean: true)").to.equal(false);
    expect(fs.readdirSync(project).filter((n) => n.startsWith(".protomesh-gen-")), "staging removed").to.deep.equal([]);

    // A user's file that exercises the generated types both ways.
    write(
      path.join(project, "src/use.ts"),
      `import type { CallContext } from "protomesh";
import { KeeperDefinition, type KeeperHandlers, type KeeperClient } from "../gen/zoo/v1/zoo_protomesh";
import { Animal_Diet } from "../gen/zoo/v1/animal";

export const handlers: KeeperHandlers = {
  async feed(req, ctx: CallContext) { return { id: req.animalId, diet: Animal_Diet.DIET_HERBIVORE, tags: [{}] }; },
  async *census(req) { yield { id: req.zone ?? "all" }; },
  async admit(animals) { let n = 0; for await (const _ of animals) n++; return { counts: { all: n } }; },
  async *patrol(tags) { for await (const t of tags) yield { code: t.code.toUpperCase() }; },
};

export async function use(client: KeeperClient): Promise<string> {
  const a = await client.feed({ animalId: "z1", fruit: "fig", at: new Date() });
  for await (const b of client.patrol([{ code: "x" }])) return b.code + a.id;
  return KeeperDefinition.methods.feed.path;
}
`,
    );
    const typecheck = (protomeshTypes: string) => {
      write(
        path.join(project, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022", module: "commonjs", moduleResolution: "node10", strict: true, noEmit: true,
            esModuleInterop: true, skipLibCheck: true, types: ["node"], typeRoots: [path.join(REPO, "node_modules/@types")],
            paths: { protomesh: [protomeshTypes] },
          },
          include: ["gen", "src"],
        }),
      );
      return spawnSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "."], { cwd: project, encoding: "utf8", timeout: 180_000 });
    };
    const tsc = typecheck(path.join(REPO, "index.ts"));
    expect(tsc.stdout + tsc.stderr).to.equal("");
    expect(tsc.status).to.equal(0);

    // …and it works with the runtime: a real server and client on loopback, all four call kinds.
    write(
      path.join(project, "src/run.ts"),
      `import { createServer, createClient } from "protomesh";
import { KeeperDefinition } from "../gen/zoo/v1/zoo_protomesh";
import { handlers, use } from "./use";

(async () => {
  const server = createServer();
  server.add(KeeperDefinition, handlers);
  const port = await server.listen("127.0.0.1:0");
  const client = createClient(KeeperDefinition, "127.0.0.1:" + port);
  const out: unknown[] = [await use(client)];
  for await (const a of client.census({ zone: "north" })) out.push(a.id);
  out.push((await client.admit([{ id: "a" }, { id: "b" }, { id: "c" }])).counts);
  const fed = await client.feed({ animalId: "z9", gramsOfMeat: 250 });
  out.push(fed.diet, fed.tags.length);
  process.stdout.write(JSON.stringify(out));
  client.$close();
  await server.shutdown({ graceMs: 100 });
})().catch((e) => { console.error(e); process.exit(1); });
`,
    );
    const exec = spawnSync(process.execPath, [path.join(REPO, "bin", "run.js"), "src/run.ts"], { cwd: project, encoding: "utf8", timeout: 30_000, env: { ...process.env, PROTOMESH_LOG_LEVEL: "warn" } });
    expect(exec.stderr).to.equal("");
    expect(JSON.parse(exec.stdout)).to.deep.equal(["Xz1", "north", { all: 3 }, 1, 1]);
  });

  it("reports a syntax error with file and line, exits 1 and leaves the previous output untouched", () => {
    const before = snapshot(path.join(project, "gen"));
    expect(Object.keys(before)).to.include(path.join("zoo", "v1", "zoo_protomesh.ts"));
    write(path.join(project, "zoo/v1/broken.proto"), `syntax = "proto3";\npackage acme.zoo.v1;\n\nmessage Broken {\n  string name = ;\n}\n`);
    try {
      const run = protomesh(["gen"], project);
      expect(run.status).to.equal(1);
      expect(run.stderr).to.match(/zoo\/v1\/broken\.proto:5:\d+/);
      expect(run.stdout).to.equal("");
      expect(snapshot(path.join(project, "gen"))).to.deep.equal(before);
      expect(fs.readdirSync(project).filter((n) => n.startsWith(".protomesh-gen-")), "staging removed").to.deep.equal([]);
    } finally {
      fs.rmSync(path.join(project, "zoo/v1/broken.proto"));
    }
  });

  it("prints help with exit 0 and rejects an unknown flag or command with exit 2", () => {
    const help = protomesh(["gen", "--help"], project);
    expect(help.status).to.equal(0);
    expect(help.stdout).to.contain("usage: protomesh gen");
    const top = protomesh(["--help"], project);
    expect(top.status).to.equal(0);
    expect(top.stdout).to.match(/commands:\n\s+gen /);

    const flag = protomesh(["gen", "--frobnicate"], project);
    expect(flag.status).to.equal(2);
    expect(flag.stderr).to.equal("protomesh gen: Unknown option '--frobnicate'\nrun 'protomesh gen --help' for usage\n");
    const command = protomesh(["frobnicate"], project);
    expect(command.status).to.equal(2);
    expect(command.stderr).to.contain('unknown command "frobnicate"');
  });

  it("compiles google.api.http annotations from google-proto-files without a buf.yaml, and says what to install when it is missing", function () {
    const shop = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-gen-http-"));
    try {
      write(path.join(shop, "proto/shop/v1/shop.proto"), SHOP_PROTO);
      fs.mkdirSync(path.join(shop, "node_modules"));
      for (const scope of ["@bufbuild", "@grpc"]) fs.symlinkSync(path.join(REPO, "node_modules", scope), path.join(shop, "node_modules", scope), "dir");

      const missing = protomesh(["gen"], shop);
      expect(missing.status).to.equal(1);
      expect(missing.stderr).to.contain("imported file does not exist");
      expect(missing.stderr).to.contain("npm install -D google-proto-files");
      expect(fs.existsSync(path.join(shop, "gen")), "nothing written").to.equal(false);

      fs.symlinkSync(path.join(REPO, "node_modules", "google-proto-files"), path.join(shop, "node_modules", "google-proto-files"), "dir");
      const run = protomesh(["gen"], shop);
      expect(run.stderr).to.equal("");
      expect(run.status).to.equal(0);
      // The imports are emitted (ts-proto's emitImportedFiles); the rest of google/api is not generated.
      const generated = Object.keys(snapshot(path.join(shop, "gen"))).sort();
      expect(generated).to.deep.equal(
        ["google/api/annotations.ts", "google/api/http.ts", "google/protobuf/descriptor.ts", "shop/v1/shop.ts", "shop/v1/shop_protomesh.ts"].map((f) => path.join(...f.split("/"))),
      );
      // The embedded descriptor carries the annotation the gateway reads its route from.
      const embedded = [...fs.readFileSync(path.join(shop, "gen/shop/v1/shop_protomesh.ts"), "utf8").matchAll(/^ {2}"([A-Za-z0-9+/=]+)",$/gm)]
        .map((m) => Buffer.from(m[1], "base64").toString("latin1"))
        .join("\n");
      expect(embedded).to.contain("google/api/annotations.proto").and.to.contain("/v1/items/{id}");

      // A project that vendors google/api keeps its own copy (two would clash in buf).
      fs.mkdirSync(path.join(shop, "proto/google"), { recursive: true });
      fs.cpSync(path.join(REPO, "node_modules/google-proto-files/google/api/annotations.proto"), path.join(shop, "proto/google/api/annotations.proto"));
      fs.cpSync(path.join(REPO, "node_modules/google-proto-files/google/api/http.proto"), path.join(shop, "proto/google/api/http.proto"));
      const vendored = protomesh(["gen"], shop);
      expect(vendored.stderr).to.equal("");
      expect(vendored.status).to.equal(0);
    } finally {
      fs.rmSync(shop, { recursive: true, force: true });
    }
  });

  it("fails with one clear line when there are no protos, no template or no buf", () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-gen-empty-"));
    try {
      const none = protomesh(["gen"], empty);
      expect(none.status).to.equal(1);
      expect(none.stderr).to.match(/^protomesh gen: no \.proto files found in \./);
      expect(fs.readdirSync(empty)).to.deep.equal([]);

      const template = protomesh(["gen", "--template", "missing.gen.yaml"], project);
      expect(template.status).to.equal(1);
      expect(template.stderr).to.match(/^protomesh gen: cannot read template .*missing\.gen\.yaml: ENOENT\n$/);

      const noBuf = protomesh(["gen"], project, { PROTOMESH_BUF: path.join(empty, "no-such-buf") });
      expect(noBuf.status).to.equal(1);
      expect(noBuf.stderr).to.match(/^protomesh gen: buf not found/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
