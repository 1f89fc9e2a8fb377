import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { forbidden, modulesLoadedBy, NOT_AT_ROOT } from "./helpers/import-weight";
import { npm, npmInstall, REPO, run, runOk, sharedTarball, startProject, tourBlocks, writeFiles } from "./helpers/packed";

// What a newcomer gets from `npm pack` / a git or tarball install: the package built on pack,
// installed offline (local npm cache + the tarball) into empty projects, used in the three
// project shapes users have, and the README's tour run exactly as written.

const manifest = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as {
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
const GENERATOR = ["@bufbuild/buf", "@bufbuild/protoplugin", "ts-proto"];
const at = (name: string) => `${name}@${manifest.devDependencies[name]}`;

// A proto no other spec uses, so nothing generated elsewhere can stand in for it.
const INVENTORY_PROTO = `syntax = "proto3";
package acme.inventory.v1;

// Inventory reserves stock and reports levels.
service Inventory {
  rpc Reserve(ReserveRequest) returns (ReserveReply);
  rpc Levels(LevelsRequest) returns (stream Level);
}

message ReserveRequest { string sku = 1; int32 quantity = 2; }
message ReserveReply { string sku = 1; int32 remaining = 2; }
message LevelsRequest { string sku = 1; uint32 count = 2; }
message Level { string sku = 1; int32 units = 2; }
`;

// The same source compiles in every shape (no top-level await: CommonJS has none).
const INVENTORY_MAIN = `import { closeClient, codeName, createClient, createServer, RpcError, Status } from "protomesh";
import { InventoryDefinition } from "./gen/acme/inventory/v1/inventory_protomesh.js";

async function main(): Promise<void> {
  const server = createServer({ name: "inventory" });
  server.add(InventoryDefinition, {
    async reserve(req) {
      if (req.quantity <= 0) throw new RpcError(Status.INVALID_ARGUMENT, "quantity must be positive");
      return { sku: req.sku, remaining: 10 - req.quantity };
    },
    async *levels(req) {
      for (let i = 0; i < req.count; i++) yield { sku: req.sku, units: i };
    },
  });
  const port = await server.listen("127.0.0.1:0");
  const client = createClient(InventoryDefinition, \`127.0.0.1:\${port}\`);
  try {
    const reply = await client.reserve({ sku: "A-1", quantity: 3 }, { deadlineMs: 10_000 });
    const units: number[] = [];
    for await (const level of client.levels({ sku: "A-1", count: 3 })) units.push(level.units);
    let error = "";
    try {
      await client.reserve({ sku: "A-1", quantity: 0 });
    } catch (err) {
      if (err instanceof RpcError) error = \`\${codeName(err.code)}: \${err.rawMessage}\`;
    }
    console.log(JSON.stringify({ remaining: reply.remaining, units, error }));
  } finally {
    closeClient(client);
    await server.shutdown({ graceMs: 1000 });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
`;

const BASE_COMPILER_OPTIONS = { target: "ES2022", strict: true, skipLibCheck: true, types: ["node"], outDir: "dist" };

const SHAPES: Record<string, { packageJson: Record<string, unknown>; compilerOptions: Record<string, unknown> }> = {
  // `npm init -y` as it comes.
  commonjs: { packageJson: { name: "shape-cjs", version: "1.0.0", type: "commonjs" }, compilerOptions: { module: "commonjs", moduleResolution: "node10", esModuleInterop: true } },
  // What TypeScript recommends for Node today.
  esm: { packageJson: { name: "shape-esm", version: "1.0.0", type: "module" }, compilerOptions: { module: "nodenext", moduleResolution: "nodenext" } },
  // What bundlers (Vite, esbuild) resolve; run here as plain ESM.
  bundler: { packageJson: { name: "shape-bundler", version: "1.0.0", type: "module" }, compilerOptions: { module: "esnext", moduleResolution: "bundler" } },
};

describe("the packed package, installed offline from its tarball", function () {
  this.timeout(30 * 60_000);
  const etcd = useEmbeddedEtcd();
  let work: string;
  let tarball: string;

  before(async function () {
    this.timeout(20 * 60_000);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-packed-"));
    tarball = await sharedTarball();
  });
  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("ships the built package and an honest file list: dist, the two commands, no sources, tests or examples", async () => {
    const listing = await runOk("tar", ["-tzf", tarball], work);
    const files = listing.stdout.trim().split("\n").map((f) => f.replace(/^package\//, ""));
    expect(files).to.include.members(["package.json", "README.md", "bin/protomesh.js", "bin/protoc-gen-protomesh.js", "bin/load.js", "dist/index.js", "dist/index.d.ts", "dist/cli/main.js", "dist/codegen/plugin-main.js", "dist/console-ui/index.html", "dist/console/index.js", "dist/gen/protomesh/transaction/v1/coordinator_protomesh.js"]);
    // Generated code of the framework's own services (dist/gen/protomesh/…, such as the
    // transaction coordinator) runs in the package; generated examples do not.
    // The templates of `protomesh new` ship as text (`*.tmpl`), and are not code that runs.
    expect(files).to.include.members(["scaffold/templates/Dockerfile.tmpl", "scaffold/templates/test/service.test.ts.tmpl", "dist/scaffold/new-command.js"]);
    const unwanted = files.filter((f) => !f.startsWith("scaffold/templates/") && (/\.ts$/.test(f) && !f.endsWith(".d.ts") || /\.test\.|\.map$|^dist\/(examples|test|bench)\/|^dist\/gen\/(?!protomesh\/)|^bin\/run\.js$|testdata/.test(f)));
    expect(unwanted, "files that a user never runs").to.deep.equal([]);
  });

  describe("a service's production install (`npm install --omit=dev`, no generator)", () => {
    let app: string;
    before(async function () {
      app = path.join(work, "runtime-only");
      startProject(app, { name: "svc", version: "1.0.0", private: true });
      await npmInstall(app, ["--omit=dev", tarball]);
    });

    it("installs none of the code generator, tsx or the OpenTelemetry SDK", () => {
      for (const name of [...GENERATOR, "typescript", "tsx", "esbuild", "dprint-node", "@opentelemetry/sdk-trace", "@opentelemetry/exporter-jaeger"]) {
        expect(fs.existsSync(path.join(app, "node_modules", name)), `node_modules/${name}`).to.equal(false);
      }
      expect(fs.existsSync(path.join(app, "node_modules", "@grpc", "grpc-js"))).to.equal(true);
    });

    it("loads with require and import, and the CLI runs", async () => {
      const cjs = await runOk(process.execPath, ["-e", 'const p = require("protomesh"); console.log(typeof p.createServer, typeof p.createClient)'], app);
      expect(cjs.stdout.trim()).to.equal("function function");
      const esm = await runOk(process.execPath, ["--input-type=module", "-e", 'import { createServer, RpcError } from "protomesh"; console.log(typeof createServer, typeof RpcError)'], app);
      expect(esm.stdout.trim()).to.equal("function function");
      const help = await runOk(path.join(app, "node_modules", ".bin", "protomesh"), ["--help"], app);
      expect(help.stdout).to.match(/^usage: protomesh <command>/);
    });

    it('`require("protomesh")` from dist loads nothing of the generator or other capabilities', () => {
      const loaded = modulesLoadedBy("protomesh", app);
      expect(loaded.some((f) => f.endsWith("/dist/runtime/server.js"))).to.equal(true);
      for (const what of Object.keys(NOT_AT_ROOT)) expect(forbidden(loaded, what), what).to.deep.equal([]);
    });

    it("`protomesh gen` asks for the generator in one line and exits 1", async () => {
      writeFiles(app, { "proto/acme/inventory/v1/inventory.proto": INVENTORY_PROTO });
      const gen = await run(path.join(app, "node_modules", ".bin", "protomesh"), ["gen"], app);
      expect(gen.code).to.equal(1);
      expect(gen.stdout).to.equal("");
      const expected = `protomesh gen: protomesh gen needs ${GENERATOR.join(", ")}, which are not installed. Run: npm install -D ${GENERATOR.map((p) => `${p}@"${manifest.devDependencies[p]}"`).join(" ")}\n`;
      expect(gen.stderr).to.equal(expected);
    });
  });

  describe("a developer's install with the generator, in each project shape", () => {
    let app: string;
    before(async function () {
      app = path.join(work, "dev");
      startProject(app, { name: "dev", version: "1.0.0", private: true });
      await npmInstall(app, [tarball]);
      await npmInstall(app, ["-D", ...GENERATOR.map(at), at("typescript"), at("@types/node")]);
    });

    for (const [shape, { packageJson, compilerOptions }] of Object.entries(SHAPES)) {
      it(`${shape}: generates an unseen proto, compiles it under strict and makes real calls`, async () => {
        const dir = path.join(app, shape);
        writeFiles(dir, {
          "package.json": JSON.stringify(packageJson, null, 2),
          "tsconfig.json": JSON.stringify({ compilerOptions: { ...BASE_COMPILER_OPTIONS, ...compilerOptions }, include: ["*.ts", "gen"] }, null, 2),
          "proto/acme/inventory/v1/inventory.proto": INVENTORY_PROTO,
          "main.ts": INVENTORY_MAIN,
        });
        const bin = path.join(app, "node_modules", ".bin");
        const gen = await runOk(path.join(bin, "protomesh"), ["gen"], dir);
        expect(gen.stdout).to.match(/^protomesh gen: \d+ files → gen\//);
        await runOk(path.join(bin, "tsc"), ["-p", "."], dir);
        const ran = await runOk(process.execPath, ["dist/main.js"], dir, { timeoutMs: 60_000 });
        expect(JSON.parse(ran.stdout)).to.deep.equal({ remaining: 7, units: [0, 1, 2], error: "INVALID_ARGUMENT: quantity must be positive" });
      });
    }
  });

  it("the README's tour, copied block by block into an empty folder, serves through etcd and the client exits", async () => {
    const blocks = tourBlocks(fs.readFileSync(path.join(REPO, "README.md"), "utf8"));
    expect([...blocks.keys()].sort()).to.deep.equal(["client.ts", "install", "package.json", "proto/greeter/v1/greeter.proto", "server.ts", "tsconfig.json"]);
    const dir = path.join(work, "tour");
    startProject(dir, JSON.parse(blocks.get("package.json")!) as Record<string, unknown>);
    writeFiles(dir, Object.fromEntries([...blocks].filter(([name]) => name !== "install")));
    // The install lines as written, with the tarball standing in for the registry's protomesh.
    for (const line of blocks.get("install")!.trim().split("\n")) {
      const words = line.trim().split(/\s+/);
      expect(words.slice(0, 2)).to.deep.equal(["npm", "install"]);
      await npmInstall(dir, words.slice(2).map((w) => (w === "protomesh" ? tarball : w)));
    }
    const { command, prefix } = npm();
    await runOk(command, [...prefix, "run", "build"], dir);

    const env = { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: uniqueNamespace(), PORT: "0" };
    const server = spawn(process.execPath, ["dist/server.js"], { cwd: dir, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let serverOut = "";
    server.stdout.on("data", (d: Buffer) => (serverOut += d.toString()));
    server.stderr.on("data", (d: Buffer) => (serverOut += d.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const check = () => (/greeter serving on /.test(serverOut) ? resolve() : undefined);
        server.stdout.on("data", check);
        server.once("exit", (code) => reject(new Error(`server exited ${code}:\n${serverOut}`)));
      });
      const client = await run(process.execPath, ["dist/client.js"], dir, { env, timeoutMs: 60_000 });
      expect(client.stderr).to.equal("");
      expect(client.code, "the client exits by itself").to.equal(0);
      expect(client.stdout).to.equal(["Hello, Ada!", "#0 Ada", "#1 Ada", "#2 Ada", "3 name is required", ""].join("\n"));
    } finally {
      server.kill("SIGTERM");
    }
    const [code] = (await once(server, "exit")) as [number | null];
    expect(code, `server output:\n${serverOut}`).to.equal(0);
  });
});
