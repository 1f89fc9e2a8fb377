import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { main } from "../cli/main";
import { nameProblem, projectFiles, projectNames } from "./index";
import { listTemplates, projectPath, substitute } from "./render";

async function protomesh(args: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { cwd, env: process.env, out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

/** Every file under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  const found: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else found.push(child);
    }
  };
  walk("");
  return found.sort();
}

describe("protomesh new: names", () => {
  it("accepts lower-case names with single dashes and derives every spelling from them", () => {
    expect(nameProblem("order-service")).to.equal(undefined);
    expect(nameProblem("a1")).to.equal(undefined);
    expect(projectNames("order-service")).to.deep.equal({ name: "order-service", pascal: "OrderService", camel: "orderService", snake: "order_service", protoPackage: "order_service.v1" });
  });

  it("refuses names that cannot be an npm package, a Kubernetes name and a proto package at once", () => {
    for (const bad of ["", "Order", "order_service", "1orders", "-orders", "orders-", "order--service", "order.service", "ordérs", "a".repeat(41), "grpc", "google", "protomesh", "say-hello-request"]) {
      expect(nameProblem(bad), JSON.stringify(bad)).to.be.a("string");
    }
  });
});

describe("protomesh new: templates", () => {
  it("maps template paths: placeholders, _dotfiles, no .tmpl", () => {
    const values = { NAME: "orders", SNAKE: "orders" };
    expect(projectPath("_github/workflows/ci.yml.tmpl", values)).to.equal(".github/workflows/ci.yml");
    expect(projectPath("proto/__SNAKE__/v1/__SNAKE__.proto.tmpl", values)).to.equal("proto/orders/v1/orders.proto");
  });

  it("refuses a template with an unknown placeholder instead of writing it out", () => {
    expect(() => substitute("x __NOPE__ y", { NAME: "a" }, "t")).to.throw(/unknown placeholder __NOPE__/);
    // Grafana's and Prometheus's own {{ }} templates are not placeholders.
    expect(substitute('{{grpc_method}} {{ $value }} __NAME__', { NAME: "a" }, "t")).to.equal("{{grpc_method}} {{ $value }} a");
  });

  it("renders every template with no placeholder left, for names of one and several words", () => {
    expect(listTemplates().length).to.be.greaterThan(20);
    for (const name of ["orders", "order-service-v2"]) {
      const files = projectFiles(name, "1.2.3");
      for (const f of files) expect(f.text, f.path).to.not.match(/__[A-Z][A-Z0-9_]*__/);
      const paths = files.map((f) => f.path);
      expect(paths).to.include.members([
        "package.json", "README.md", "Dockerfile", ".dockerignore", ".gitignore", ".github/workflows/ci.yml",
        "src/server.ts", "src/client.ts", "test/service.test.ts",
        "k8s/deployment.yaml", "k8s/service.yaml", "k8s/etcd.yaml",
        "monitoring/prometheus.yml", "monitoring/alerts.yml", "monitoring/grafana-dashboard.json",
      ]);
      const snake = name.replace(/-/g, "_");
      expect(paths).to.include(`proto/${snake}/v1/${snake}.proto`);
      expect(files.find((f) => f.path === "src/server.ts")!.text).to.include(`from "../gen/${snake}/v1/${snake}_protomesh.js"`);
    }
  });

  it("pins the generator and compiler to the ranges protomesh is tested with", () => {
    const own = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8")) as { version: string; peerDependencies: Record<string, string>; devDependencies: Record<string, string> };
    const pkg = JSON.parse(projectFiles("orders", own.version).find((f) => f.path === "package.json")!.text) as { name: string; type: string; dependencies: Record<string, string>; devDependencies: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.name).to.equal("orders");
    expect(pkg.type).to.equal("module");
    expect(pkg.dependencies.protomesh).to.equal(`^${own.version}`);
    expect(pkg.devDependencies).to.deep.equal({
      "@bufbuild/buf": own.devDependencies["@bufbuild/buf"],
      "@bufbuild/protoplugin": own.devDependencies["@bufbuild/protoplugin"],
      "@types/node": own.devDependencies["@types/node"],
      "ts-proto": own.devDependencies["ts-proto"],
      typescript: own.devDependencies.typescript,
    });
    expect(Object.keys(pkg.scripts)).to.include.members(["build", "typecheck", "test", "start"]);
  });
});

describe("protomesh new: the command", () => {
  let work: string;
  beforeEach(() => (work = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-new-"))));
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  it("--help prints the usage and exits 0", async () => {
    const r = await protomesh(["new", "--help"], work);
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^usage: protomesh new <name> \[--dir DIR\] \[--force\]/);
  });

  it("creates ./<name> with one progress line per file and prints the next steps", async () => {
    const r = await protomesh(["new", "orders"], work);
    expect(r.err).to.equal("");
    expect(r.code).to.equal(0);
    expect(r.out.split("\n")[0]).to.equal(`Creating orders in ${path.join(work, "orders")}`);
    const files = tree(path.join(work, "orders"));
    expect(files).to.deep.equal(projectFiles("orders", "0").map((f) => f.path).sort());
    for (const f of files) expect(r.out).to.include(`  create   ${f}\n`);
    expect(r.out).to.include(`Created ${files.length} files. Next steps:\n  cd orders\n  npm install`);
    expect(r.out).to.include("npm test");
  });

  it("writes into --dir", async () => {
    const r = await protomesh(["new", "orders", "--dir", "svc/orders-here"], work);
    expect(r.code).to.equal(0);
    expect(fs.existsSync(path.join(work, "svc", "orders-here", "package.json"))).to.equal(true);
    expect(r.out).to.include("  cd svc/orders-here\n");
  });

  it("a bad or missing name is a usage error (exit 2) that says what a name may be, and writes nothing", async () => {
    for (const args of [["new", "Orders"], ["new", "my_service"], ["new"], ["new", "a", "b"], ["new", "orders", "--bogus"]]) {
      const r = await protomesh(args, work);
      expect(r.code, args.join(" ")).to.equal(2);
      expect(r.out).to.equal("");
      expect(r.err).to.match(/^protomesh new: .+\nrun 'protomesh new --help' for usage\n$/);
    }
    expect((await protomesh(["new", "Orders"], work)).err).to.match(/"Orders" cannot name a project: use lower-case letters, digits and single dashes/);
    expect(fs.readdirSync(work)).to.deep.equal([]);
  });

  it("refuses a directory that is not empty (exit 1) and leaves it as it was", async () => {
    const dir = path.join(work, "orders");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "README.md"), "mine\n");
    const r = await protomesh(["new", "orders"], work);
    expect(r.code).to.equal(1);
    expect(r.out, "no progress before the refusal").to.equal("");
    expect(r.err).to.equal(`protomesh new: ${dir} is not empty (README.md). Choose another --dir, or pass --force to write into it (files with the same names are replaced, others are kept)\n`);
    expect(tree(dir)).to.deep.equal(["README.md"]);
    expect(fs.readFileSync(path.join(dir, "README.md"), "utf8")).to.equal("mine\n");
  });

  it("refuses a target that is a file", async () => {
    fs.writeFileSync(path.join(work, "orders"), "x");
    const r = await protomesh(["new", "orders"], work);
    expect(r.code).to.equal(1);
    expect(r.out).to.equal("");
    expect(r.err).to.equal(`protomesh new: ${path.join(work, "orders")} is a file, not a directory\n`);
  });

  it("--force writes into a directory that is not empty: same names replaced and reported, other files kept", async () => {
    const dir = path.join(work, "orders");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "README.md"), "mine\n");
    fs.writeFileSync(path.join(dir, "NOTES.txt"), "keep\n");
    const r = await protomesh(["new", "orders", "--force"], work);
    expect(r.code).to.equal(0);
    expect(r.out).to.include("  replace  README.md\n");
    expect(r.out).to.include("(1 replaced)");
    expect(fs.readFileSync(path.join(dir, "NOTES.txt"), "utf8")).to.equal("keep\n");
    expect(fs.readFileSync(path.join(dir, "README.md"), "utf8")).to.match(/^# orders\n/);
  });

  it("is listed in `protomesh --help`", async () => {
    const r = await protomesh(["--help"], work);
    expect(r.out).to.match(/^ {2}new +create a service project/m);
  });
});
