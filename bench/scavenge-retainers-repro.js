#!/usr/bin/env node
"use strict";
/**
 * Standalone reproduction (plain Node, no dependencies except the optional `otel` case): objects
 * that are garbage right after their operation still survive every scavenge until the next
 * mark-compact, because each operation allocates an object directly in the old generation that
 * points at the operation's young objects. The scavenger treats every old-to-young pointer as a
 * root, dead or not, so the whole graph behind it is copied (and then promoted) by each scavenge.
 *
 *   node bench/scavenge-retainers-repro.js [case…] [--ops 800]
 *
 * Cases (all by default):
 *   writable      `new Writable()` per operation. WritableState's constructor does
 *                 `this.onwrite = (er) => onwrite(stream, er)`; V8 allocates a function literal
 *                 assigned straight to a property in the old generation, and its context holds
 *                 the stream.
 *   readable      `new Readable()` per operation (no such closure): the control.
 *   bind          `new AsyncResource(…).bind(fn)` per operation. bind() defines an
 *                 `asyncResource` accessor with fresh getter/setter closures; V8 allocates the
 *                 AccessorPair in the old generation, and the closures' context holds `fn`.
 *   http2         sequential requests of a bare `http2.connect()` client to a bare
 *                 `http2.createServer()` in another process (both mechanisms: each request runs
 *                 `reqAsync.bind(requestOnConnect.bind(stream, …))`, and the stream is a Duplex).
 *   http2-nobind  the same with AsyncResource.prototype.bind replaced by one without the accessor,
 *                 which leaves the Writable mechanism alone.
 *   otel          `ROOT_CONTEXT.setValue(key, value)` of @opentelemetry/api per operation (what
 *                 `propagation.extract` does): BaseContext's constructor assigns three arrow
 *                 functions to properties of the new context, so three old-generation closures
 *                 hold each context. Skipped if the package is not installed.
 *
 * Each case runs in its own process (`--expose-gc`, a 64 MB young generation so no scavenge runs
 * by itself during the measured operations): warm-up, full GC, N operations, one forced scavenge.
 * It prints the bytes that survived that scavenge per operation, the bytes per operation
 * allocated in the old generation, and whether the suspect object is in the young generation.
 * At the time the operations are measured every one of them has finished, so the right figure for
 * the survivors is close to 0 (as in `readable`).
 */
const { fork } = require("node:child_process");
const v8 = require("node:v8");

const CASES = ["readable", "writable", "bind", "http2", "http2-nobind", "otel"];
const FLAGS = ["--expose-gc", "--allow-natives-syntax", "--min-semi-space-size=64", "--max-semi-space-size=64"];

function space(name) {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === name).space_used_size;
}

/** `%InYoungGeneration(o)` without making this file a syntax error when natives are off. */
const young = (() => {
  try {
    return new Function("o", "return %InYoungGeneration(o)");
  } catch {
    return () => undefined;
  }
})();

function payload(i) {
  // About 1 KB of young objects that belong to one operation.
  return { id: i, parts: Array.from({ length: 16 }, (_, j) => ({ j, text: `part ${i}/${j}` })) };
}

async function setUp(name) {
  if (name === "readable" || name === "writable") {
    const { Readable, Writable } = require("node:stream");
    const make = name === "writable" ? () => new Writable({ write: (c, e, cb) => cb() }) : () => new Readable({ read() {} });
    return {
      one: async (i) => {
        const s = make();
        s.payload = payload(i);
      },
      probe: () => {
        const s = make();
        return name === "writable" ? { "stream._writableState.onwrite": young(s._writableState.onwrite) } : { "stream._readableState": young(s._readableState) };
      },
    };
  }
  if (name === "bind") {
    const { AsyncResource } = require("node:async_hooks");
    return {
      one: async (i) => {
        const data = payload(i);
        new AsyncResource("repro").bind(() => data);
      },
      // The old object here is the AccessorPair, which JavaScript cannot reach.
      probe: () => ({}),
    };
  }
  if (name === "otel") {
    let api;
    try {
      api = require("@opentelemetry/api");
    } catch {
      return undefined;
    }
    const key = api.createContextKey("repro");
    return {
      one: async (i) => {
        api.ROOT_CONTEXT.setValue(key, payload(i));
      },
      probe: () => {
        const c = api.ROOT_CONTEXT.setValue(key, 1);
        return { context: young(c), "context.getValue": young(c.getValue) };
      },
    };
  }
  // http2, http2-nobind
  const http2 = require("node:http2");
  if (name === "http2-nobind") {
    const { AsyncResource } = require("node:async_hooks");
    AsyncResource.prototype.bind = function bind(fn, thisArg) {
      if (thisArg !== undefined) return Function.prototype.bind.call(this.runInAsyncScope, this, fn, thisArg);
      const resource = this;
      return function (...args) {
        return Reflect.apply(resource.runInAsyncScope, resource, [fn, this, ...args]);
      };
    };
  }
  const server = fork(__filename, ["--serve"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise((resolve) => server.once("message", resolve));
  const session = http2.connect(`http://127.0.0.1:${port}`);
  let last;
  const one = () =>
    new Promise((resolve, reject) => {
      const req = session.request({ ":path": "/" });
      last = req;
      req.on("data", () => {});
      req.on("end", resolve);
      req.on("error", reject);
      req.end();
    });
  return {
    one,
    probe: () => ({ "ClientHttp2Stream._writableState.onwrite": young(last._writableState.onwrite) }),
    close: () => {
      session.close();
      server.kill();
    },
  };
}

async function measure(name, ops) {
  const c = await setUp(name);
  if (!c) return { name, skipped: true };
  for (let i = 0; i < 3000; i++) await c.one(i);
  gc();
  gc();
  const old0 = space("old_space");
  for (let i = 0; i < ops; i++) await c.one(i);
  await new Promise((r) => setImmediate(r));
  const old1 = space("old_space");
  gc({ type: "minor" });
  const survived = space("new_space");
  const probe = c.probe();
  c.close?.();
  return { name, survivedPerOp: survived / ops, oldPerOp: (old1 - old0) / ops, probe };
}

if (process.argv[2] === "--serve") {
  const http2 = require("node:http2");
  const server = http2.createServer();
  server.on("stream", (stream) => {
    stream.respond({ ":status": 200 });
    stream.end("hello");
  });
  server.listen(0, "127.0.0.1", () => process.send(server.address().port));
} else if (process.argv[2] === "--case") {
  measure(process.argv[3], Number(process.argv[4])).then((r) => {
    process.send(r);
    process.exit(0);
  });
} else {
  const args = process.argv.slice(2);
  let ops = 800;
  const i = args.indexOf("--ops");
  if (i >= 0) {
    ops = Number(args[i + 1]);
    args.splice(i, 2);
  }
  const chosen = args.length ? args : CASES;
  for (const name of chosen) if (!CASES.includes(name)) throw new Error(`unknown case ${name}: ${CASES.join(", ")}`);
  (async () => {
    console.log(`Node ${process.version}, V8 ${process.versions.v8}, ${ops} operations per case, all finished before one forced scavenge`);
    for (const name of chosen) {
      const child = fork(__filename, ["--case", name, String(ops)], { execArgv: FLAGS, stdio: ["ignore", "inherit", "inherit", "ipc"] });
      const r = await new Promise((resolve, reject) => {
        child.once("message", resolve);
        child.once("exit", (code) => reject(new Error(`${name} exited (${code})`)));
      });
      if (r.skipped) {
        console.log(`${name.padEnd(13)} skipped (package not installed)`);
        continue;
      }
      const where = Object.entries(r.probe ?? {}).map(([k, v]) => `${k} ${v === undefined ? "?" : v ? "young" : "OLD"}`).join(", ");
      console.log(`${name.padEnd(13)} survived the scavenge ${String(Math.round(r.survivedPerOp)).padStart(6)} B/op, old generation +${String(Math.round(r.oldPerOp)).padStart(4)} B/op; ${where}`);
    }
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
