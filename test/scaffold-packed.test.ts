import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { parse } from "yaml";
import { createProject } from "../scaffold";
import { useEmbeddedEtcd, uniqueNamespace } from "./helpers/etcd";
import { npm, npmInstall, OFFLINE_NPM_ENV, run, runOk, sharedTarball, startProject, treeBytes } from "./helpers/packed";
import { exportedMetricNames, promqlMetricNames, type Dashboard } from "./helpers/scaffold-checks";

// A project made by `protomesh new`, on a machine with nothing but the packed protomesh: it
// installs offline, typechecks and passes its own `npm test` (real etcd); its production install
// (the Dockerfile's `deps` stage, run here without Docker) holds no build tools and runs the
// built service, which answers, reports SERVING to the HEALTHCHECK command, exports every metric
// the dashboard and the alerts read, and leaves etcd on SIGTERM.

const NAME = "order-service";
const BUILD_TOOLS = ["typescript", "@bufbuild/buf", "@bufbuild/protoplugin", "ts-proto", "esbuild", "tsx", "dprint-node"];

describe("a project made by `protomesh new`, with the packed protomesh", function () {
  this.timeout(15 * 60_000);
  const etcd = useEmbeddedEtcd();
  const timings: Record<string, number> = {};
  let work: string;
  let project: string;
  let tarball: string;

  /** Runs `step` and records its wall time under `label`. */
  async function timed<T>(label: string, step: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await step();
    } finally {
      timings[label] = Date.now() - t0;
    }
  }
  const npmRun = (script: string, cwd: string) => {
    const { command, prefix } = npm();
    return runOk(command, [...prefix, "run", script], cwd, { timeoutMs: 600_000 });
  };

  before(async function () {
    this.timeout(25 * 60_000);
    tarball = await timed("pack (shared with the packed-install spec)", () => sharedTarball());
    work = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-scaffold-"));
    project = path.join(work, NAME);
    await timed("protomesh new and a seeded lockfile", async () => {
      createProject({ name: NAME, dir: project, protomeshVersion: "0.1.0" });
      // The project's own package.json, with a lockfile seeded from this repository's (the
      // versions in the local npm cache), as a project's committed lockfile would pin them.
      startProject(project, JSON.parse(fs.readFileSync(path.join(project, "package.json"), "utf8")) as Record<string, unknown>);
    });
    await timed("npm install (offline)", () => npmInstall(project, [tarball]));
  });
  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
    const total = Object.values(timings).reduce((a, b) => a + b, 0);
    console.log(`      scaffold timings: ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(", ")}; total ${(total / 1000).toFixed(1)} s`);
  });

  it("the packed `protomesh new` writes the same project as the sources do", async () => {
    const t0 = Date.now();
    const again = path.join(work, "again");
    const made = await runOk(path.join(project, "node_modules", ".bin", "protomesh"), ["new", NAME, "--dir", again], work);
    expect(made.stdout).to.match(/Next steps:/);
    const listing = (dir: string) => (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[]).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
    const written = listing(again);
    expect(written.length).to.be.greaterThan(20);
    for (const rel of written) {
      if (rel === "package.json") continue; // the install replaced protomesh's range with the tarball
      expect(fs.readFileSync(path.join(again, rel), "utf8"), rel).to.equal(fs.readFileSync(path.join(project, rel), "utf8"));
    }
    timings["packed protomesh new"] = Date.now() - t0;
  });

  it("typechecks, and passes its own `npm test` against a real etcd", async () => {
    await timed("npm run typecheck", () => npmRun("typecheck", project));
    const tested = await timed("npm test", () => npmRun("test", project));
    // node --test's summary: TAP (`# pass 7`, Node 20 without a terminal) or spec (`ℹ pass 7`, Node 23+).
    expect(tested.stdout).to.match(/^[#ℹ] pass 7$/m);
    expect(tested.stdout).to.match(/^[#ℹ] fail 0$/m);
  });

  describe("its production install (the Dockerfile's deps and runtime stages, replayed without Docker)", () => {
    let image: string;
    before(async function () {
      this.timeout(10 * 60_000);
      // The deps stage's `npm ci` omits what the Dockerfile says; `npm prune` with the same flags
      // leaves the same tree in the installed project, without unpacking everything again.
      const dockerfile = fs.readFileSync(path.join(project, "Dockerfile"), "utf8");
      const stage = dockerfile.slice(dockerfile.search(/^FROM \S+ AS deps$/m));
      const omit = /^RUN npm ci ([^&\n]*)/m.exec(stage)![1]!.trim().split(/\s+/).filter((a) => a.startsWith("--omit"));
      expect(omit).to.include("--omit=dev");
      const { command, prefix } = npm();
      await timed(`npm prune ${omit.join(" ")}`, () => runOk(command, [...prefix, "prune", ...omit, "--offline"], project, { env: OFFLINE_NPM_ENV, timeoutMs: 600_000 }));
      // The runtime stage: node_modules, dist/ and package.json, nothing else.
      image = path.join(work, "image");
      await timed("copy to the runtime layout", async () => {
        fs.mkdirSync(image);
        fs.cpSync(path.join(project, "node_modules"), path.join(image, "node_modules"), { recursive: true, verbatimSymlinks: true });
        // The build stage's `tsc -p tsconfig.build.json` emits src/ and gen/ with the options `npm
        // test` compiled them with (it extends tsconfig.json and only narrows `include`).
        const build = JSON.parse(fs.readFileSync(path.join(project, "tsconfig.build.json"), "utf8")) as { extends: string; include: string[]; compilerOptions?: unknown };
        expect(build).to.deep.equal({ extends: "./tsconfig.json", include: ["src", "gen"] });
        for (const part of build.include) fs.cpSync(path.join(project, "dist", part), path.join(image, "dist", part), { recursive: true });
        fs.copyFileSync(path.join(project, "package.json"), path.join(image, "package.json"));
      });
    });

    it("holds no code generator, compiler, esbuild or tsx", () => {
      for (const tool of BUILD_TOOLS) expect(fs.existsSync(path.join(image, "node_modules", tool)), `node_modules/${tool}`).to.equal(false);
      expect(fs.existsSync(path.join(image, "node_modules", "protomesh", "dist", "index.js"))).to.equal(true);
      const mb = treeBytes(path.join(image, "node_modules")) / 1e6;
      console.log(`      production node_modules: ${mb.toFixed(1)} MB of files`);
      expect(mb).to.be.below(60);
    });

    it("serves through etcd, passes the HEALTHCHECK, exports every metric the dashboard and alerts read, and leaves etcd on SIGTERM", async () => {
      const t0 = Date.now();
      const env = { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: uniqueNamespace(), HOST: "127.0.0.1", PORT: "0", METRICS_PORT: "0", SERVICE_VERSION: "v7" };
      const server = spawn(process.execPath, ["dist/src/main.js"], { cwd: image, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      server.stdout.on("data", (d: Buffer) => (out += d.toString()));
      server.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const exited = once(server, "exit") as Promise<[number | null]>;
      try {
        const [, address, metricsPort] = await new Promise<RegExpExecArray>((resolve, reject) => {
          const ready = /order-service v7 serving on (\S+), metrics on :(\d+)\/metrics, registered in etcd as order-service/;
          const check = () => {
            const m = ready.exec(out);
            if (m) resolve(m);
          };
          server.stdout.on("data", check);
          void exited.then(([code]) => reject(new Error(`server exited ${code}:\n${out}`)));
        });

        const client = await run(process.execPath, ["dist/src/client.js", "Ada"], image, { env, timeoutMs: 60_000 });
        expect(client.stderr).to.equal("");
        expect(client.code).to.equal(0);
        expect(client.stdout.trim().split("\n")).to.have.length(4);
        expect(client.stdout).to.match(/^Hello, Ada! \(from order-service@v7\/\d+\)\nHello, Ada! \(#0 from/);

        // The Dockerfile's HEALTHCHECK command, as it runs in the image.
        const dockerfile = fs.readFileSync(path.join(project, "Dockerfile"), "utf8").replace(/\\\n\s*/g, " ");
        const healthcheck = /^HEALTHCHECK .* CMD (.+)$/m.exec(dockerfile)![1]!.replace("${PORT}", address!.split(":")[1]!);
        const health = await run("sh", ["-c", healthcheck], image, { timeoutMs: 60_000 });
        expect(health.code, health.stderr).to.equal(0);
        expect(health.stdout.trim()).to.equal("status: SERVING");

        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        const exported = exportedMetricNames(text);
        const dashboard = JSON.parse(fs.readFileSync(path.join(project, "monitoring", "grafana-dashboard.json"), "utf8")) as Dashboard;
        const inDashboard = new Set((dashboard.panels ?? []).flatMap((p) => (p.targets ?? []).flatMap((t) => promqlMetricNames(String(t.expr)))));
        expect([...inDashboard].filter((m) => !exported.has(m)), "dashboard metrics the server does not export").to.deep.equal([]);
        const alerts = parse(fs.readFileSync(path.join(project, "monitoring", "alerts.yml"), "utf8")) as { groups: Array<{ rules: Array<{ expr: string }> }> };
        const inAlerts = new Set(alerts.groups.flatMap((g) => g.rules.flatMap((r) => promqlMetricNames(r.expr))));
        // `up` is Prometheus's own series about each target, never on the page.
        expect([...inAlerts].filter((m) => m !== "up" && !exported.has(m)), "alert metrics the server does not export").to.deep.equal([]);
        expect(inDashboard.size).to.be.greaterThan(8);

        server.kill("SIGTERM");
        const [code] = await exited;
        expect(code, out).to.equal(0);
        expect(out).to.include("SIGTERM: deregistering and draining");
        const after = await run(path.join(image, "node_modules", ".bin", "protomesh"), ["health", "etcd:///order-service"], image, { env, timeoutMs: 60_000 });
        expect(after.stderr).to.match(/no instances of "order-service" are registered/);
        timings["run the built service"] = Date.now() - t0;
      } finally {
        if (server.exitCode === null) server.kill("SIGKILL");
      }
    });
  });
});
