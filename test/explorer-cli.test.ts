import { spawn } from "node:child_process";
import * as path from "node:path";
import { expect } from "chai";
import { createServer, type Server } from "protomesh";
import { main } from "../cli/main";
import type { ExplorerIo } from "../explorer/command-support";
import { addReflection } from "../runtime/reflection";
import { etcdRegistry, type EtcdRegistry } from "../registry/etcd/registry";
import { GreeterDefinition } from "./helpers/greeter";
import { greeterHandlers } from "../examples/greeter/service";
import { KitchenSinkDefinition, kitchenSinkHandlers, startBoth } from "./helpers/kitchen-sink";
import { uniqueNamespace, useEmbeddedEtcd } from "./helpers/etcd";
import { waitFor } from "./helpers/wait";

const REPO = path.resolve(__dirname, "..");

interface Run {
  code: number;
  out: string;
  err: string;
  lines: () => unknown[];
}

/** Runs `protomesh …` in this process; `stdin` (when given) is what is piped in. */
async function protomesh(args: string[], options: { stdin?: AsyncIterable<string>; env?: NodeJS.ProcessEnv; onOut?: (text: string) => void } = {}): Promise<Run> {
  let out = "";
  let err = "";
  const io: ExplorerIo = {
    cwd: REPO,
    env: { ...process.env, ...options.env },
    out: (t) => {
      out += t;
      options.onOut?.(out);
    },
    err: (t) => void (err += t),
    stdin: options.stdin ?? (async function* () {})(),
    stdinIsTTY: options.stdin === undefined,
  };
  const code = await main(args, io);
  return { code, out, err, lines: () => out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as unknown) };
}

async function* lines(...items: string[]): AsyncGenerator<string> {
  for (const item of items) yield `${item}\n`;
}

describe("explorer CLI (protomesh ls | describe | call)", () => {
  let server: Server;
  let target: string;

  before(async () => {
    ({ server, address: target } = await startBoth());
  });
  after(() => server.shutdown());

  describe("ls", () => {
    it("lists every service of a server", async () => {
      const r = await protomesh(["ls", target]);
      expect(r.code, r.err).to.equal(0);
      expect(r.out.trim().split("\n")).to.deep.equal([
        "examples.greeter.v1.Greeter",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "protomesh.test.v1.KitchenSink",
      ]);
    });

    it("lists a service's methods, with signatures and call kinds in --long form", async () => {
      const short = await protomesh(["ls", target, "examples.greeter.v1.Greeter"]);
      expect(short.out).to.equal(
        ["SayHello", "StreamHellos", "CollectHellos", "Chat"].map((m) => `examples.greeter.v1.Greeter.${m}\n`).join(""),
      );
      const long = await protomesh(["ls", target, "examples.greeter.v1.Greeter", "-l"]);
      expect(long.out).to.include("rpc Chat(stream examples.greeter.v1.HelloRequest) returns (stream examples.greeter.v1.HelloReply);  // bidirectional streaming");
    });

    it("exits 1 with NOT_FOUND for an unknown service", async () => {
      const r = await protomesh(["ls", target, "no.such.Service"]);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(/^protomesh ls: NOT_FOUND: symbol not found: no.such.Service/);
    });
  });

  describe("describe", () => {
    it("prints a service as .proto source with its comments and options", async () => {
      const r = await protomesh(["describe", target, "protomesh.test.v1.KitchenSink"]);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.include("protomesh.test.v1.KitchenSink is a service:\n// KitchenSink echoes items back in every way gRPC can.\nservice KitchenSink {");
      expect(r.out).to.include("  rpc Exchange(stream protomesh.test.v1.Item) returns (stream protomesh.test.v1.Item);");
      expect(r.out).to.include("  rpc OldEcho(protomesh.test.v1.Item) returns (protomesh.test.v1.Item) {\n    option deprecated = true;\n  }");
    });

    it("prints a message with nested types, oneof, map, optional and imported types", async () => {
      const r = await protomesh(["describe", target, "protomesh.test.v1.Item"]);
      expect(r.code, r.err).to.equal(0);
      for (const line of [
        "  message Node {",
        "    enum Kind {",
        "      KIND_LEAF = 1;",
        "    repeated protomesh.test.v1.Item.Node children = 3;",
        "  // The first oneof of the message: its fields carry oneof_index 0.\n  oneof payload {\n    string text = 2;\n    bytes blob = 3;\n    protomesh.test.v1.Money price = 4;\n  }",
        "  map<string, int64> counters = 7;",
        "  optional int32 priority = 8;",
        "  google.protobuf.Timestamp created_at = 9;",
      ]) {
        expect(r.out).to.include(line);
      }
      expect(r.out).not.to.include("CountersEntry");
    });

    it("prints a method with a JSON template of its request", async () => {
      const r = await protomesh(["describe", target, "examples.greeter.v1.Greeter.StreamHellos", "--template"]);
      expect(r.out).to.include("// StreamHellos answers one request with `count` replies (server streaming).");
      expect(r.out).to.include(`JSON template for examples.greeter.v1.StreamHellosRequest:\n${JSON.stringify({ name: "", count: 0, intervalMs: 0 }, null, 2)}`);
    });

    it("describes fields and enum values, and every service when no symbol is given", async () => {
      expect((await protomesh(["describe", target, "protomesh.test.v1.Money.currency"])).out).to.equal(
        'protomesh.test.v1.Money.currency is a field:\n// ISO 4217 code, e.g. "EUR".\nstring currency = 1;\n',
      );
      expect((await protomesh(["describe", target, "protomesh.test.v1.COLOR_RED"])).out).to.include("is an enum value of protomesh.test.v1.Color");
      const all = await protomesh(["describe", target]);
      expect(all.out.match(/ is a service:/g)).to.have.length(5);
    });
  });

  describe("call", () => {
    it("makes a unary call from -d, with metadata from -H", async () => {
      const r = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Echo", "-d", '{"id":"a","price":{"currency":"EUR","units":"7"},"counters":{"x":"2"},"color":"COLOR_RED"}']);
      expect(r.code, r.err).to.equal(0);
      expect(r.lines()).to.deep.equal([{ id: "a", price: { currency: "EUR", units: "7" }, counters: { x: "2" }, color: "COLOR_RED" }]);
    });

    it("sends -H metadata and can print default values", async () => {
      const seen: string[] = [];
      const s = createServer();
      s.add(GreeterDefinition, {
        ...greeterHandlers("md"),
        async sayHello(_req, ctx) {
          seen.push(String(ctx.metadata.get("x-user")[0]), String(ctx.metadata.get("x-trace")[0]));
          return { message: "" };
        },
      });
      const port = await s.listen("127.0.0.1:0");
      try {
        const r = await protomesh(["call", `127.0.0.1:${port}`, "examples.greeter.v1.Greeter/SayHello", "-H", "x-user: ada", "-H", "x-trace:1", "--emit-defaults"]);
        expect(r.code, r.err).to.equal(0);
        expect(seen).to.deep.equal(["ada", "1"]);
        expect(r.lines()).to.deep.equal([{ message: "", servedBy: "" }]);
      } finally {
        await s.shutdown();
      }
    });

    it("prints a server stream as newline-delimited JSON", async () => {
      const r = await protomesh(["call", target, "protomesh.test.v1.KitchenSink.List", "-d", '{"count":3,"prefix":"p"}']);
      expect(r.code, r.err).to.equal(0);
      expect(r.lines()).to.deep.equal([{ id: "p-1" }, { id: "p-2" }, { id: "p-3" }]);
    });

    it("sends a client stream read from stdin", async () => {
      const r = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Collect"], { stdin: lines('{"id":"a"}', '{"id":"b"}{"id":"c"}') });
      expect(r.code, r.err).to.equal(0);
      expect(r.lines()).to.deep.equal([{ count: 3, ids: ["a", "b", "c"], nothing: {} }]);
    });

    it("streams both ways: each request is sent as soon as it is read", async () => {
      let printed = "";
      // The second request is only produced after the answer to the first was printed.
      const stdin = (async function* () {
        yield '{"id":"one"}\n';
        await waitFor(() => printed.includes("echo:one"), { what: "the first answer" });
        yield '{"id":"two"}\n';
      })();
      const r = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Exchange"], { stdin, onOut: (all) => (printed = all) });
      expect(r.code, r.err).to.equal(0);
      expect(r.lines()).to.deep.equal([{ id: "echo:one" }, { id: "echo:two" }]);
    });

    it("reads the request from a file with -d @file, and well-known types map to their JSON forms", async () => {
      const r = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Now", "-d", "@test/fixtures/empty-request.json"]);
      expect(r.code, r.err).to.equal(0);
      expect(r.lines()).to.deep.equal(["2023-11-14T22:13:20.000000005Z"]);
      const d = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Describe", "-d", '{"values":{"a":"x"}}']);
      expect(d.lines()).to.deep.equal([{ a: "x", count: 1 }]);
    });

    it("exits 1 and prints the status code name, message and details when the call fails", async () => {
      const r = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Echo", "-d", '{"id":"fail"}']);
      expect(r.code).to.equal(1);
      expect(r.out).to.equal("");
      expect(r.err).to.equal('protomesh call: NOT_FOUND: no item fail\ndetails: {"id":"fail"}\n');
    });

    it("fails with DEADLINE_EXCEEDED after --deadline", async () => {
      const r = await protomesh(["call", target, "examples.greeter.v1.Greeter/StreamHellos", "-d", '{"name":"x","count":50,"intervalMs":50}', "--deadline", "300"]);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(/^protomesh call: DEADLINE_EXCEEDED: /);
      expect(r.lines().length).to.be.within(1, 10);
    });

    it("rejects bad JSON, unknown fields and unknown methods before calling", async () => {
      const bad = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Echo", "-d", '{"id": }']);
      expect(bad.code).to.equal(1);
      expect(bad.err).to.match(/INVALID_ARGUMENT: request #1 is not valid JSON/);
      const unknown = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Echo", "-d", '{"nope":1}']);
      expect(unknown.err).to.match(/INVALID_ARGUMENT: request is not a valid protomesh.test.v1.Item: .*"nope" is unknown/);
      const method = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Fly"]);
      expect(method.err).to.include("NOT_FOUND: service protomesh.test.v1.KitchenSink has no method Fly (it has Echo, List,");
      const two = await protomesh(["call", target, "protomesh.test.v1.KitchenSink/Echo", "-d", "{}{}"]);
      expect(two.err).to.include("INVALID_ARGUMENT: protomesh.test.v1.KitchenSink/Echo takes one request message, got more");
    });

    it("exits 1 with UNAVAILABLE when nothing listens at the target", async () => {
      const r = await protomesh(["call", "127.0.0.1:1", "examples.greeter.v1.Greeter/SayHello", "-d", "{}"]);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(/^protomesh call: UNAVAILABLE: /);
    });
  });

  it("falls back to v1alpha reflection for servers that only speak it", async () => {
    const s = createServer({ reflection: false });
    s.add(GreeterDefinition, greeterHandlers("legacy"));
    // The protomesh server's grpc-js server, with only the old reflection version added.
    addReflection(s.grpc, { definitions: () => [GreeterDefinition] }, ["v1alpha"]);
    const port = await s.listen("127.0.0.1:0");
    try {
      const r = await protomesh(["call", `127.0.0.1:${port}`, "examples.greeter.v1.Greeter/SayHello", "-d", '{"name":"old"}']);
      expect(r.code, r.err).to.equal(0);
      expect((r.lines()[0] as { message: string }).message).to.equal("Hello, old!");
    } finally {
      await s.shutdown();
    }
  });

  it("prints help for each command and exits 2 on usage mistakes", async () => {
    for (const command of ["ls", "describe", "call"]) {
      const help = await protomesh([command, "--help"]);
      expect(help.code).to.equal(0);
      expect(help.out).to.match(new RegExp(`^usage: protomesh ${command} <target>`));
      const missing = await protomesh([command]);
      expect(missing.code).to.equal(2);
      expect(missing.err).to.include(`protomesh ${command}: missing <target>`);
    }
    const flag = await protomesh(["call", target, "a.B/C", "--deadline", "soon"]);
    expect(flag.code).to.equal(2);
    expect(flag.err).to.include("--deadline must be a positive number");
  });

  describe("through the registry (etcd:///service)", function () {
    this.timeout(30_000);
    const fixture = useEmbeddedEtcd();
    // Nested, so the server is shut down (lease revoked) before the fixture stops etcd.
    describe("with a greeter registered", () => {
      let registry: EtcdRegistry;
      let registered: Server;
      let env: NodeJS.ProcessEnv;

      before(async () => {
        const namespace = uniqueNamespace();
        env = { ETCD_ENDPOINTS: fixture.endpoints.join(","), PROTOMESH_NAMESPACE: namespace };
        registry = etcdRegistry({ endpoints: fixture.endpoints, namespace });
        registered = createServer({ name: "greeter", registry });
        registered.add(GreeterDefinition, greeterHandlers("from-etcd"));
        registered.add(KitchenSinkDefinition, kitchenSinkHandlers());
        await registered.listen("127.0.0.1:0");
      });
      after(async () => {
        await registered.shutdown();
        await registry.close();
      });

      it("lists and calls a service found by name, in every call kind", async () => {
        const ls = await protomesh(["ls", "etcd:///greeter"], { env });
        expect(ls.code, ls.err).to.equal(0);
        expect(ls.out).to.include("examples.greeter.v1.Greeter\n");
        const unary = await protomesh(["call", "etcd:///greeter", "examples.greeter.v1.Greeter/SayHello", "-d", '{"name":"etcd"}'], { env });
        expect(unary.code, unary.err).to.equal(0);
        expect(unary.lines()[0]).to.deep.include({ message: "Hello, etcd!", servedBy: "from-etcd" });
        const stream = await protomesh(["call", "etcd:///greeter", "protomesh.test.v1.KitchenSink/List", "-d", '{"count":2,"prefix":"e"}'], { env });
        expect(stream.lines()).to.deep.equal([{ id: "e-1" }, { id: "e-2" }]);
        const collect = await protomesh(["call", "etcd:///greeter", "protomesh.test.v1.KitchenSink/Collect"], { env, stdin: lines('{"id":"x"}', '{"id":"y"}') });
        expect(collect.lines()).to.deep.equal([{ count: 2, ids: ["x", "y"], nothing: {} }]);
        const bidi = await protomesh(["call", "etcd:///greeter", "protomesh.test.v1.KitchenSink/Exchange"], { env, stdin: lines('{"id":"x"}') });
        expect(bidi.lines()).to.deep.equal([{ id: "echo:x" }]);
      });

      it("fails with UNAVAILABLE for a service nobody registered", async () => {
        const r = await protomesh(["call", "etcd:///nobody", "examples.greeter.v1.Greeter/SayHello", "--deadline", "2000"], { env });
        expect(r.code).to.equal(1);
        expect(r.err).to.match(/^protomesh call: (UNAVAILABLE|DEADLINE_EXCEEDED): /);
      });

      it("works as a real process that exits when done (stdin piped, etcd connection closed)", async () => {
        const child = spawn(process.execPath, [path.join(REPO, "bin", "protomesh.js"), "call", "etcd:///greeter", "examples.greeter.v1.Greeter/Chat"], {
          cwd: REPO,
          env: { ...process.env, ...env },
          stdio: ["pipe", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString()));
        child.stderr.on("data", (c: Buffer) => (err += c.toString()));
        child.stdin.end('{"name":"a"}\n{"name":"b"}\n');
        const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
        expect(code, err).to.equal(0);
        expect(out.trim().split("\n").map((l) => (JSON.parse(l) as { message: string }).message)).to.deep.equal(["Hello, a!", "Hello, b!"]);
      });
    });
  });
});
