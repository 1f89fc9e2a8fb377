/** `protomesh traffic` against a real etcd: verbs, errors that name the field, exit codes. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { main } from "../cli/main";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";

describe("protomesh traffic", function () {
  this.timeout(60_000);
  const fixture = useEmbeddedEtcd();
  const namespace = uniqueNamespace();
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-traffic-cli-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = "";
    let err = "";
    const withEtcd = ["get", "apply", "set", "history", "rollback", "diff", "watch", "remove"].includes(args[0]) && !args.includes("--help")
      ? [...args, "--endpoints", fixture.endpoints.join(","), "--namespace", namespace]
      : args;
    const code = await main(["traffic", ...withEtcd], { cwd: dir, env: { ...process.env, PROTOMESH_USER: "cli-spec" }, out: (t) => void (out += t), err: (t) => void (err += t) });
    return { code, out, err };
  }
  const file = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, name), text);
    return name;
  };

  it("prints help with exit 0, and a usage error with exit 2", async () => {
    const help = await run("--help");
    expect(help.code).to.equal(0);
    expect(help.out).to.match(/apply SERVICE -f FILE/);
    expect((await run("apply", "--help")).code).to.equal(0);
    const bad = await run("frobnicate");
    expect(bad.code).to.equal(2);
    expect(bad.err).to.match(/unknown command "frobnicate"/);
    expect((await run("apply", "greeter")).code, "apply without -f").to.equal(2);
    expect((await run("history", "greeter", "--weight", "5")).code, "a flag of another verb").to.equal(2);
  });

  it("applies a YAML rule, shows it, lists history, diffs, rolls back and removes it", async () => {
    const v1 = file(
      "v1.yaml",
      `subsets:\n  stable: { labels: { version: v1 } }\n  canary: { labels: { version: v2 } }\nsticky: { header: x-user }\nroutes:\n  - to: [{ subset: stable, weight: 95 }, { subset: canary, weight: 5 }]\n`,
    );
    const applied = await run("apply", "greeter", "-f", v1, "--comment", "canary 5 %");
    expect(applied.code, applied.err).to.equal(0);
    expect(applied.out).to.match(/greeter: version 1 \(set by cli-spec, .*\): canary 5 %/);

    const set = await run("set", "greeter", "--stable", "version=v1", "--canary", "version=v2", "--weight", "25", "--sticky-header", "x-user", "--expect", "1");
    expect(set.code, set.err).to.equal(0);
    expect(set.out).to.match(/version 2/);

    const get = await run("get", "greeter");
    expect(get.code).to.equal(0);
    expect(get.err).to.match(/# version 2 \(set by cli-spec/);
    expect(get.out).to.match(/weight: 25/);
    const json = JSON.parse((await run("get", "greeter", "--json")).out) as { version: number; value: { routes: { to: { weight: number }[] }[] } };
    expect(json.version).to.equal(2);

    const diff = await run("diff", "greeter", "1", "2");
    expect(diff.code).to.equal(0);
    expect(diff.out).to.match(/~ routes\[0\]\.to\[1\]\.weight: 5 → 25/);

    const history = await run("history", "greeter");
    expect(history.out.trim().split("\n").map((l) => l.split(" ")[1])).to.deep.equal(["2", "1"]);

    const conflict = await run("set", "greeter", "--stable", "version=v1", "--canary", "version=v2", "--weight", "50", "--expect", "1");
    expect(conflict.code).to.equal(1);
    expect(conflict.err).to.match(/expected 1|version 2|moved|conflict/i);

    const back = await run("rollback", "greeter", "1", "--comment", "abort");
    expect(back.code, back.err).to.equal(0);
    expect(back.out).to.match(/version 3 \(rollback of 1 by cli-spec/);
    expect((await run("get", "greeter")).out).to.match(/weight: 5\b/);

    const removed = await run("remove", "greeter");
    expect(removed.code).to.equal(0);
    const none = await run("get", "greeter");
    expect(none.code).to.equal(1);
    expect(none.err).to.match(/no traffic rule in force/);
  });

  it("refuses an invalid rule with exit 1, naming every bad field, and writes nothing", async () => {
    const bad = file("bad.yaml", `subsets:\n  v2: { labels: { version: v2 } }\nroutes:\n  - to: [{ subset: v2 }]\n  - match: { headers: { x-user: { regex: "(" } } }\n    to: [{ subset: v3, weight: 5 }]\n`);
    const r = await run("apply", "orders", "-f", bad);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/routes\[1\]\.match\.headers\.x-user\.regex: invalid regular expression/);
    expect(r.err).to.match(/routes\[1\]\.to\[0\]\.subset: no subset "v3" is defined \(defined: v2\)/);
    expect((await run("history", "orders")).out).to.match(/no traffic rule versions/);
    const check = await run("check", "-f", bad);
    expect(check.code).to.equal(1);
    const syntax = await run("check", "-f", file("broken.yaml", "subsets: [unclosed\n"));
    expect(syntax.code).to.equal(1);
    expect(syntax.err).to.match(/not valid YAML or JSON/);
    expect((await run("check", "-f", "missing.yaml")).err).to.match(/cannot read missing\.yaml: ENOENT/);
  });

  it("watch prints the rule in force, then the change", async () => {
    await run("set", "search", "--stable", "version=v1", "--canary", "version=v2", "--weight", "10");
    const watching = run("watch", "search", "--count", "2");
    setTimeout(() => void run("set", "search", "--stable", "version=v1", "--canary", "version=v2", "--weight", "20"), 500);
    const r = await watching;
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/# version 1[\s\S]*weight: 10[\s\S]*# version 2[\s\S]*~ routes\[0\]\.to\[1\]\.weight: 10 → 20/);
  });
});
