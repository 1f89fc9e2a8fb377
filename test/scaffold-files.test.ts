import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { parse, parseAllDocuments } from "yaml";
import { createProject } from "../scaffold";
import { dashboardProblems, promqlMetricNames, type Dashboard } from "./helpers/scaffold-checks";

// What `protomesh new` writes for running and watching a service, checked with the real tools
// where this machine has them (promtool from Debian's prometheus) and by reading the files where
// it has not (no Docker daemon, no Kubernetes, no Grafana here). The project's code is compiled
// and its own tests run by test/scaffold-packed.test.ts.

const run = promisify(execFile);
const NAME = "order-service";

interface Container {
  name: string;
  image: string;
  ports: Array<{ name: string; containerPort: number }>;
  env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  readinessProbe?: { exec?: { command: string[] }; timeoutSeconds?: number };
  livenessProbe?: { exec?: { command: string[] }; timeoutSeconds?: number };
  startupProbe?: { exec?: { command: string[] } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean };
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown> & {
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    template?: { metadata: { labels: Record<string, string> }; spec: { containers: Container[]; terminationGracePeriodSeconds?: number; securityContext?: { runAsNonRoot?: boolean; runAsUser?: number } } };
  };
}

describe("protomesh new: the files for running and watching a service", () => {
  let dir: string;
  const read = (rel: string) => fs.readFileSync(path.join(dir, rel), "utf8");
  const manifests = (rel: string) =>
    parseAllDocuments(read(rel)).map((doc) => {
      expect(doc.errors, rel).to.deep.equal([]);
      return doc.toJS() as K8sObject;
    });

  before(() => {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-scaffold-files-")), NAME);
    createProject({ name: NAME, dir, protomeshVersion: "0.0.0-test" });
  });
  after(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));

  describe("Prometheus", () => {
    it("the local scrape config and its alert rules pass `promtool check config`", async () => {
      const { stdout } = await run("promtool", ["check", "config", "monitoring/prometheus-local.yml"], { cwd: dir });
      expect(stdout).to.match(/SUCCESS: 1 rule files found/);
      expect(stdout).to.match(/SUCCESS: monitoring\/prometheus-local.yml is valid prometheus config file syntax/);
    });

    it("the Kubernetes scrape config passes `promtool check config` apart from pod discovery, which Debian's build lacks; that part is read", async () => {
      const config = parse(read("monitoring/prometheus.yml")) as { scrape_configs: Array<Record<string, unknown> & { kubernetes_sd_configs?: Array<{ role: string }>; relabel_configs: Array<Record<string, unknown>> }> };
      const [job] = config.scrape_configs;
      expect(job!.job_name).to.equal(NAME);
      expect(job!.kubernetes_sd_configs).to.deep.equal([{ role: "pod" }]);
      const relabel = job!.relabel_configs;
      expect(relabel).to.deep.include({ source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], regex: NAME, action: "keep" });
      expect(relabel).to.deep.include({ source_labels: ["__meta_kubernetes_pod_container_port_name"], regex: "metrics", action: "keep" });
      // The labels the alerts, the dashboard and release analysis select by.
      expect(relabel).to.deep.include({ source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], target_label: "service" });
      expect(relabel).to.deep.include({ source_labels: ["__meta_kubernetes_pod_label_version"], target_label: "version" });
      // Everything else (relabel rules, rule files) through promtool, with a static target instead.
      const { kubernetes_sd_configs: _, ...rest } = job!;
      fs.writeFileSync(path.join(dir, "monitoring", "prometheus-k8s-check.yml"), JSON.stringify({ ...config, scrape_configs: [{ ...rest, static_configs: [{ targets: ["127.0.0.1:9464"] }] }] }));
      try {
        const { stdout } = await run("promtool", ["check", "config", "monitoring/prometheus-k8s-check.yml"], { cwd: dir });
        expect(stdout).to.match(/is valid prometheus config file syntax/);
      } finally {
        fs.rmSync(path.join(dir, "monitoring", "prometheus-k8s-check.yml"));
      }
    });

    it("the alert rules pass `promtool check rules` and their own `promtool test rules`", async () => {
      const checked = await run("promtool", ["check", "rules", "monitoring/alerts.yml"], { cwd: dir });
      expect(checked.stdout).to.match(/SUCCESS: 5 rules found/);
      const tested = await run("promtool", ["test", "rules", "monitoring/alerts.test.yml"], { cwd: dir });
      expect(tested.stdout).to.match(/SUCCESS/);
    });

    it("alert on error rate, p99 latency and instance count, from protomesh's metrics and `up`", () => {
      const rules = (parse(read("monitoring/alerts.yml")) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap((g) => g.rules);
      const byName = Object.fromEntries(rules.map((r) => [r.alert, promqlMetricNames(r.expr)]));
      expect(byName).to.deep.equal({
        OrderServiceHighErrorRate: ["grpc_server_handled_total"],
        OrderServiceHighLatencyP99: ["grpc_server_handling_seconds_bucket"],
        OrderServiceNoInstances: ["up"],
        OrderServiceTooFewInstances: ["up"],
        OrderServiceRegistrationLost: ["protomesh_registry_lease_held"],
      });
      for (const r of rules) expect(r.expr, r.alert).to.include(`service="${NAME}"`);
    });

    it("a promtool unit test can fail: a rule that never fires is caught", async () => {
      const broken = read("monitoring/alerts.yml").replace("> 0.05", "> 0.5");
      fs.writeFileSync(path.join(dir, "monitoring", "alerts.yml"), broken);
      try {
        const failed = await run("promtool", ["test", "rules", "monitoring/alerts.test.yml"], { cwd: dir }).then(
          () => undefined,
          (err: { code: number; stdout: string; stderr: string }) => err,
        );
        expect(failed, "promtool test rules passed a rule that cannot fire").to.not.equal(undefined);
        expect(`${failed!.stdout}${failed!.stderr}`).to.match(/OrderServiceHighErrorRate/);
      } finally {
        createProject({ name: NAME, dir, force: true, protomeshVersion: "0.0.0-test" });
      }
    });
  });

  describe("Grafana", () => {
    it("the dashboard has what Grafana needs to import and draw it", () => {
      const dashboard = JSON.parse(read("monitoring/grafana-dashboard.json")) as Dashboard;
      expect(dashboardProblems(dashboard)).to.deep.equal([]);
      expect(dashboard.uid).to.equal(NAME);
      const exprs = (dashboard.panels ?? []).flatMap((p) => (p.targets ?? []).map((t) => String(t.expr)));
      expect(exprs.length).to.be.greaterThan(10);
      for (const e of exprs) expect(promqlMetricNames(e), e).to.not.deep.equal([]);
    });

    it("the dashboard check finds a broken dashboard", () => {
      const dashboard = JSON.parse(read("monitoring/grafana-dashboard.json")) as Dashboard;
      dashboard.panels![1]!.gridPos!.w = 30;
      dashboard.panels![2]!.targets![0]!.expr = 'rate(x{version=~"$nope"}[5m])';
      delete dashboard.schemaVersion;
      expect(dashboardProblems(dashboard)).to.have.length(3);
    });
  });

  describe("Kubernetes", () => {
    it("a Deployment whose pods are probed by `protomesh health`, shut down gracefully and bounded in resources", () => {
      const [deployment] = manifests("k8s/deployment.yaml");
      expect(deployment!.kind).to.equal("Deployment");
      expect(deployment!.apiVersion).to.equal("apps/v1");
      const template = deployment!.spec.template!;
      expect(template.metadata.labels).to.include(deployment!.spec.selector!.matchLabels);
      expect(template.metadata.labels.version).to.equal("v1");
      expect(template.spec.securityContext).to.include({ runAsNonRoot: true, runAsUser: 1000 });
      const [c] = template.spec.containers;
      const grpcPort = c!.ports.find((p) => p.name === "grpc")!.containerPort;
      expect(c!.ports.find((p) => p.name === "metrics")!.containerPort).to.equal(9464);
      for (const probe of [c!.readinessProbe, c!.livenessProbe, c!.startupProbe]) {
        const command = probe!.exec!.command;
        expect(command.slice(0, 3)).to.deep.equal(["node_modules/.bin/protomesh", "health", `127.0.0.1:${grpcPort}`]);
      }
      // A probe starts Node (measured 2.4-3.5 s on a loaded 2-core machine): Kubernetes' default
      // 1 s timeout would fail healthy pods.
      expect(c!.readinessProbe!.timeoutSeconds).to.be.at.least(5);
      expect(c!.livenessProbe!.timeoutSeconds).to.be.at.least(5);
      expect(c!.resources!.requests).to.have.keys("cpu", "memory");
      expect(c!.resources!.limits).to.have.property("memory");
      expect(c!.securityContext!.allowPrivilegeEscalation).to.equal(false);

      // Grace period ≥ preStop sleep + the server's drain + the deregistration delay.
      const preStop = c!.lifecycle!.preStop!.exec!.command;
      expect(preStop[0]).to.equal("sleep");
      const env = Object.fromEntries(c!.env.map((e) => [e.name, e]));
      const drainSeconds = Number(env.SHUTDOWN_GRACE_MS!.value) / 1000;
      expect(drainSeconds).to.be.greaterThan(0);
      expect(template.spec.terminationGracePeriodSeconds).to.be.at.least(Number(preStop[1]) + drainSeconds + 1);
      expect(env.ETCD_ENDPOINTS!.value).to.equal("http://etcd-0.etcd:2379");
      expect(env.SERVICE_VERSION!.valueFrom!.fieldRef!.fieldPath).to.equal("metadata.labels['version']");
      expect(env.ADVERTISE_ADDRESS!.value).to.equal(`$(POD_IP):${grpcPort}`);
    });

    it("a Service that selects the Deployment's pods and names their ports", () => {
      const [deployment] = manifests("k8s/deployment.yaml");
      const [service] = manifests("k8s/service.yaml");
      expect(service!.kind).to.equal("Service");
      expect(service!.metadata.name).to.equal(NAME);
      expect(deployment!.spec.template!.metadata.labels).to.include(service!.spec.selector as Record<string, string>);
      const containerPorts = deployment!.spec.template!.spec.containers[0]!.ports.map((p) => p.name);
      for (const p of service!.spec.ports as Array<{ targetPort: string }>) expect(containerPorts).to.include(p.targetPort);
    });

    it("an etcd StatefulSet with its headless Service, at the address the Deployment dials", () => {
      const objects = manifests("k8s/etcd.yaml");
      const headless = objects.find((o) => o.kind === "Service")!;
      const set = objects.find((o) => o.kind === "StatefulSet")!;
      expect(headless.spec.clusterIP).to.equal("None");
      expect(set.spec.serviceName).to.equal(headless.metadata.name);
      expect(set.spec.template!.metadata.labels).to.include(headless.spec.selector as Record<string, string>);
      expect(set.spec.volumeClaimTemplates).to.have.length(1);
      const args = (set.spec.template!.spec.containers[0] as unknown as { command: string[] }).command.join(" ");
      // Pod 0 of the StatefulSet, by its name behind the headless Service, is what the service dials.
      const [deployment] = manifests("k8s/deployment.yaml");
      const dialed = deployment!.spec.template!.spec.containers[0]!.env.find((e) => e.name === "ETCD_ENDPOINTS")!.value;
      expect(dialed).to.equal(`http://${set.metadata.name}-0.${headless.metadata.name}:2379`);
      expect(args).to.include("--listen-client-urls=http://0.0.0.0:2379");
      expect(args).to.include(`--advertise-client-urls=http://$(POD_NAME).${headless.metadata.name}:2379`);
    });

    it("a kustomization that names every manifest", () => {
      const k = parse(read("k8s/kustomization.yaml")) as { resources: string[] };
      expect([...k.resources].sort()).to.deep.equal(fs.readdirSync(path.join(dir, "k8s")).filter((f) => f !== "kustomization.yaml").sort());
    });
  });

  describe("container", () => {
    it("the Dockerfile builds in stages and runs as a non-root user with a `protomesh health` HEALTHCHECK (read: no Docker daemon here)", () => {
      const lines = read("Dockerfile").split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
      const stages = lines.filter((l) => /^FROM /i.test(l));
      expect(stages.length).to.be.at.least(2);
      expect(stages.every((l) => /\bAS \w+$/i.test(l))).to.equal(true);
      const last = lines.slice(lines.lastIndexOf(stages.at(-1)!));
      const user = last.find((l) => /^USER /.test(l));
      expect(user, "USER in the final stage").to.not.equal(undefined);
      expect(user!.split(/\s+/)[1]).to.not.match(/^(root|0)(:|$)/);
      const joined = last.join("\n").replace(/\\\n\s*/g, " ");
      expect(joined).to.match(/^HEALTHCHECK .*CMD node_modules\/\.bin\/protomesh health "127\.0\.0\.1:\$\{PORT\}"/m);
      expect(joined).to.match(/^COPY --from=deps \/app\/node_modules/m);
      expect(joined).to.match(/^COPY --from=build \/app\/dist/m);
      expect(joined).to.match(/^CMD \["node", "dist\/src\/main\.js"\]$/m);
      // The runtime dependencies come from a stage that installs with --omit=dev.
      expect(read("Dockerfile")).to.match(/FROM \S+ AS deps\n(?:.*\n)*?RUN npm ci --omit=dev/);
      expect(read(".dockerignore").split("\n")).to.include.members(["node_modules", "dist", "gen", ".git"]);
    });
  });

  describe("CI", () => {
    it("the workflow typechecks, tests with etcd installed and builds the image", () => {
      const workflow = parse(read(".github/workflows/ci.yml")) as { on: Record<string, unknown>; jobs: Record<string, { "runs-on": string; needs?: string[]; steps: Array<{ run?: string; uses?: string }> }> };
      expect(workflow.on).to.have.keys("push", "pull_request");
      const runs = (job: string) => workflow.jobs[job]!.steps.map((s) => s.run ?? "").join("\n");
      expect(runs("check")).to.match(/^npm ci$/m).and.match(/^npm run typecheck$/m);
      expect(runs("test")).to.match(/apt-get install .*etcd-server/).and.match(/^npm test$/m);
      expect(runs("image")).to.match(/docker build /);
      expect(workflow.jobs.image!.needs).to.deep.equal(["check", "test"]);
      const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
      expect(scripts.typecheck).to.match(/tsc --noEmit/);
    });
  });
});
