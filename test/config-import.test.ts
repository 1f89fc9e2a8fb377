import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { checkConfigText } from "../config/file-formats";
import { loadSchema } from "../config/cli/schema-source";
import { useConfigFixture } from "./helpers/config-fixture";
import { runConfigCli } from "./helpers/config-processes";
import { useEmbeddedEtcd } from "./helpers/etcd";
import { GreeterConfigDefinition } from "./helpers/greeter-config";

const GOOD_YAML = `# greeter, production
greeting: Hello
maxNameLength: 32
streamInterval: 0.5s
rateLimit:
  requestsPerSecond: 100
  burst: 20
translations:
  fr: Bonjour
  de: Hallo
blockedNames: [mallory, trudy]
logLevel: LOG_LEVEL_INFO
features:
  shout: false
`;

const GOOD_PROPERTIES = `# greeter, production
greeting = Hello
max_name_length = 32
streamInterval = 0.5s
rateLimit.requestsPerSecond = 100
rateLimit.burst : 20
translations.fr = Bonjour
translations.de = Hallo
blockedNames = mallory, trudy
logLevel = LOG_LEVEL_INFO
features.shout = false
`;

const GOOD_JSON = JSON.stringify({
  greeting: "Hello",
  maxNameLength: 32,
  streamInterval: "0.500s",
  rateLimit: { requestsPerSecond: 100, burst: 20 },
  translations: { fr: "Bonjour", de: "Hallo" },
  blockedNames: ["mallory", "trudy"],
  logLevel: "LOG_LEVEL_INFO",
  features: { shout: false },
});

const STORED = {
  greeting: "Hello",
  maxNameLength: 32,
  streamInterval: "0.500s",
  rateLimit: { requestsPerSecond: 100, burst: 20 },
  translations: { fr: "Bonjour", de: "Hallo" },
  blockedNames: ["mallory", "trudy"],
  logLevel: "LOG_LEVEL_INFO",
  features: { shout: false },
};

const BAD_YAML = `greeting: Hello
maxNameLength: -3
streamInterval: 5 minutes
rateLimit:
  requestsPerSecond: lots
  brust: 3
blockedNames:
  - mallory
  - 42
logLevel: LOUD
`;

const BAD_PROPERTIES = `greeting=Hello
rateLimit.burst=ten
features.shout=perhaps
translations.fr=Bonjour
blockedNames[0]=a
blockedNames[2]=c
logLevel=LOG_LEVEL_INFO
greeting=again
colour=blue
`;

const BAD_JSON = `{"greeting": ["Hello"], "rateLimit": {"burst": 1.5}, "features": {"shout": "yes"}, "logLevel": 9}`;

describe("config: import from YAML, properties and JSON", function () {
  // Each CLI run is a fresh process (start-up, a schema compile): about a second on an idle
  // machine, ten or more on a loaded one, and one spec runs nine of them.
  this.timeout(180_000);
  const etcd = useEmbeddedEtcd();
  const fx = useConfigFixture(etcd, { app: "greeter", env: "prod" });
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-import-spec-"));
    for (const [name, text] of Object.entries({ "good.yaml": GOOD_YAML, "good.properties": GOOD_PROPERTIES, "good.json": GOOD_JSON, "bad.yaml": BAD_YAML, "bad.properties": BAD_PROPERTIES, "bad.json": BAD_JSON })) {
      fs.writeFileSync(path.join(dir, name), text);
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) => runConfigCli([...args, "--app", "greeter", "--env", "prod"], { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: fx.namespace, PROTOMESH_USER: "spec" });
  const file = (name: string) => path.join(dir, name);

  it("reads the same config from YAML, properties and JSON", () => {
    for (const [text, format] of [[GOOD_YAML, "yaml"], [GOOD_PROPERTIES, "properties"], [GOOD_JSON, "json"]] as const) {
      const result = checkConfigText(GreeterConfigDefinition, text, format);
      expect(result, format).to.deep.equal({ ok: true, json: STORED });
    }
  });

  it("reports every bad field of a YAML file with its line and path", () => {
    const result = checkConfigText(GreeterConfigDefinition, BAD_YAML, "yaml");
    expect(result.ok).to.equal(false);
    const issues = result.ok ? [] : result.issues.map((i) => `${i.line}: ${i.path}: ${i.message}`);
    expect(issues).to.deep.equal([
      "2: maxNameLength: -3 is out of range (0 to 4294967295)",
      '3: streamInterval: expected a duration such as "1.5s" or "300s", got "5 minutes"',
      '5: rateLimit.requestsPerSecond: expected an integer, got "lots"',
      '6: rateLimit.brust: unknown field "brust" in examples.greeter.v1.RateLimit (did you mean "burst"?)',
      "9: blockedNames[1]: expected a string, got 42",
      '10: logLevel: expected one of LOG_LEVEL_UNSPECIFIED, LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR, got "LOUD"',
    ]);
  });

  it("reports every bad entry of a properties file with its line and path", () => {
    const result = checkConfigText(GreeterConfigDefinition, BAD_PROPERTIES, "properties");
    const issues = result.ok ? [] : result.issues.map((i) => `${i.line}: ${i.path}: ${i.message}`);
    expect(issues).to.have.members([
      "8: greeting: greeting is already set on line 1",
      "6: blockedNames[1]: blockedNames[1] is missing (list indices must start at 0 without gaps)",
      '2: rateLimit.burst: expected an integer, got "ten"',
      '3: features.shout: expected true or false, got "perhaps"',
      '9: colour: unknown field "colour" in examples.greeter.v1.GreeterConfig',
    ]);
  });

  it("reports bad JSON values by path, and JSON syntax errors", () => {
    const result = checkConfigText(GreeterConfigDefinition, BAD_JSON, "json");
    expect(result.ok ? [] : result.issues.map((i) => `${i.path}: ${i.message}`)).to.deep.equal([
      "greeting: expected a string, got a list",
      "rateLimit.burst: expected an integer, got 1.5",
      'features.shout: expected true or false, got "yes"',
    ]);
    const syntax = checkConfigText(GreeterConfigDefinition, '{"greeting": "x",}', "json");
    expect(syntax.ok ? "" : syntax.issues[0].message).to.match(/^not valid JSON/);
  });

  it("finds the schema in a directory of .proto files without buf.yaml", async () => {
    const protos = path.join(dir, "protos");
    fs.mkdirSync(path.join(protos, "examples", "greeter", "v1"), { recursive: true });
    fs.copyFileSync(path.resolve(__dirname, "..", "proto", "examples", "greeter", "v1", "greeter_config.proto"), path.join(protos, "examples", "greeter", "v1", "greeter_config.proto"));
    const schema = await loadSchema("examples.greeter.v1.GreeterConfig", { protos }, dir, process.env);
    expect(schema.desc.fields.map((f) => f.jsonName)).to.include("rateLimit");
  });

  it("CLI run from an app folder finds the schema in proto/, as gen does, and never compiles node_modules", async () => {
    const app = path.join(dir, "app");
    const schemaProto = path.join(app, "proto", "examples", "greeter", "v1", "greeter_config.proto");
    fs.mkdirSync(path.dirname(schemaProto), { recursive: true });
    fs.copyFileSync(path.resolve(__dirname, "..", "proto", "examples", "greeter", "v1", "greeter_config.proto"), schemaProto);
    // Packages ship protos that do not compile together (duplicate names, other import roots).
    for (const pkg of ["vendor-a", "vendor-b"]) {
      const file = path.join(app, "node_modules", pkg, "protos", "google", "protobuf", "duration.proto");
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, `syntax = "proto3";\npackage google.protobuf;\nimport "missing/thing.proto";\nmessage Duration { int64 seconds = 1; Thing t = 2; }\n`);
    }
    const env = { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: fx.namespace, PROTOMESH_USER: "spec" };
    const run = await runConfigCli(["import", file("good.yaml"), "--schema", "examples.greeter.v1.GreeterConfig", "--app", "from-app-folder", "--env", "dev"], env, app);
    expect(run.stderr).to.equal("");
    expect(run.code).to.equal(0);
    const set = await runConfigCli(["set", "greeting=Hi", "--app", "from-app-folder", "--env", "dev"], env, app);
    expect(set.stderr).to.equal("");
    expect(set.code).to.equal(0);
  });

  it("CLI import refuses a bad file, listing every problem, and writes nothing", async () => {
    const run = await cli("import", file("bad.yaml"), "--schema", "examples.greeter.v1.GreeterConfig");
    expect(run.code).to.equal(1);
    const lines = run.stderr.trim().split("\n");
    expect(lines[0]).to.equal(`protomesh config import: ${file("bad.yaml")}:2: maxNameLength: -3 is out of range (0 to 4294967295)`);
    expect(lines).to.include(`${file("bad.yaml")}:9: blockedNames[1]: expected a string, got 42`);
    expect(lines.at(-1)).to.equal("6 problems against examples.greeter.v1.GreeterConfig; nothing written");
    expect(await fx.store().current()).to.equal(undefined);

    const props = await cli("import", file("bad.properties"), "--schema", "examples.greeter.v1.GreeterConfig");
    expect(props.code).to.equal(1);
    expect(props.stderr).to.include(`${file("bad.properties")}:2: rateLimit.burst: expected an integer, got "ten"`);
    expect(props.stderr).to.include("5 problems against");
  });

  it("CLI import writes a good file as a version; later commands find the schema from the recorded type", async () => {
    const first = await cli("import", file("good.properties"), "--schema", "examples.greeter.v1.GreeterConfig", "--comment", "from properties");
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.match(/^greeter@prod: wrote version 1 \(import by spec, .*\): from properties/);
    expect((await fx.store().current())?.value).to.deep.equal(STORED);

    const second = await cli("import", file("good.json"), "--expect", "1", "--comment", "from json");
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.include("(value unchanged)");

    const conflict = await cli("import", file("good.yaml"), "--expect", "1");
    expect(conflict.code).to.equal(1);
    expect(conflict.stderr).to.include("current version is 2, not the expected 1");

    const set = await cli("set", "rate_limit.burst=25", "greeting=Hi", "--comment", "tune");
    expect(set.code, set.stderr).to.equal(0);
    expect(set.stdout).to.include('~ greeting: "Hello" → "Hi"');
    expect(set.stdout).to.include("~ rateLimit.burst: 20 → 25");

    const diff = await cli("diff", "2", file("good.yaml"));
    expect(diff.code, diff.stderr).to.equal(0);
    expect(diff.stdout.trim()).to.equal("no differences");

    const history = await cli("history");
    expect(history.stdout).to.match(/\* 3 +\S+ \S+ +spec +set +tune/);
    expect(history.stdout).to.match(/ {2}1 +\S+ \S+ +spec +import +from properties/);

    const rollback = await cli("rollback", "1", "--comment", "undo tune");
    expect(rollback.code, rollback.stderr).to.equal(0);
    const get = await cli("get");
    expect(get.code).to.equal(0);
    expect(JSON.parse(get.stdout)).to.deep.equal(STORED);
    expect(get.stderr).to.include("version 4 (rollback of 1 by spec");
    const missing = await cli("get", "--version", "40");
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.equal("protomesh config get: greeter@prod has no version 40\n");
    const nothing = await runConfigCli(["get", "--app", "nobody", "--env", "prod"], { ETCD_ENDPOINTS: etcd.endpoints.join(","), PROTOMESH_NAMESPACE: fx.namespace });
    expect(nothing.code).to.equal(1);
    expect(nothing.stderr).to.equal("protomesh config get: nobody@prod has no config yet (protomesh config import FILE writes the first version)\n");
  });

  it("CLI explains its usage", async () => {
    const help = await runConfigCli(["--help"], {});
    expect(help.code).to.equal(0);
    expect(help.stdout).to.include("gray start FILE|PATH=VALUE… --match k=v,…");
    const wrong = await cli("history", "--match", "zone=a");
    expect(wrong.code).to.equal(2);
    expect(wrong.stderr).to.include("--match does not apply to history");
  });
});
