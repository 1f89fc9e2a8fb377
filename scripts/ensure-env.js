#!/usr/bin/env node
"use strict";
// Checks what `npm test` and `npm run demo` need that npm cannot install: Node >= 20, an
// `etcd` binary and, for the tests, the other real servers they start on loopback: Chromium
// (the docs page and the console), PostgreSQL (transactions), Redis (cluster rate limits) and
// Prometheus (release analysis). Installs the Debian packages when running as root with
// apt-get; otherwise stops with one line saying what to run.
// Usage: node scripts/ensure-env.js [--browser] [--postgres] [--redis] [--prometheus] [--all]
const { execFileSync, spawnSync } = require("node:child_process");

const major = Number(process.versions.node.split(".")[0]);
if (major < 20) {
  console.error(`protomesh needs Node >= 20 (found ${process.versions.node}).`);
  process.exit(1);
}

function has(cmd) {
  if (cmd === "initdb") return postgresBin() !== undefined;
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** Debian keeps PostgreSQL's server programs off PATH, under /usr/lib/postgresql/<major>/bin. */
function postgresBin() {
  const fs = require("node:fs");
  const root = "/usr/lib/postgresql";
  if (!fs.existsSync(root)) return undefined;
  const majors = fs.readdirSync(root).filter((d) => fs.existsSync(`${root}/${d}/bin/initdb`));
  return majors.length ? `${root}/${majors.sort((a, b) => Number(b) - Number(a))[0]}/bin` : undefined;
}

const wanted = [];
if (!process.env.ETCD_ENDPOINTS && !has("etcd")) wanted.push({ cmd: "etcd", packages: ["etcd-server", "etcd-client"] });
const all = process.argv.includes("--all");
const flag = (name) => all || process.argv.includes(name);
if (flag("--browser") && !has("chromium")) wanted.push({ cmd: "chromium", packages: ["chromium"] });
if (flag("--postgres") && !has("initdb")) wanted.push({ cmd: "initdb", packages: ["postgresql"] });
if (flag("--redis") && !has("redis-server")) wanted.push({ cmd: "redis-server", packages: ["redis-server"] });
if (flag("--prometheus") && !has("prometheus")) wanted.push({ cmd: "prometheus", packages: ["prometheus"] });
if (wanted.length === 0) process.exit(0);

const packages = wanted.flatMap((w) => w.packages);
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (isRoot && has("apt-get")) {
  console.error(`installing Debian packages: ${packages.join(" ")} (apt-get)…`);
  try {
    execFileSync("sh", ["-c", `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages.join(" ")} >/dev/null`], { stdio: "inherit" });
  } catch {
    console.error(`Installing failed. Run: sudo apt-get install -y ${packages.join(" ")}`);
    process.exit(1);
  }
  if (wanted.every((w) => has(w.cmd))) process.exit(0);
}
console.error(`Missing ${wanted.map((w) => w.cmd).join(" and ")}. Run: sudo apt-get install -y ${packages.join(" ")}${wanted.some((w) => w.cmd === "etcd") ? "   (or set ETCD_ENDPOINTS to a running etcd)" : ""}`);
process.exit(1);
