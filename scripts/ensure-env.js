#!/usr/bin/env node
"use strict";
// Checks what `npm test` and `npm run demo` need that npm cannot install: Node >= 20, an
// `etcd` binary and (for tests, which click the API docs page) Chromium. Installs the Debian
// packages when running as root with apt-get; otherwise stops with one line saying what to run.
// Usage: node scripts/ensure-env.js [--browser]
const { execFileSync, spawnSync } = require("node:child_process");

const major = Number(process.versions.node.split(".")[0]);
if (major < 20) {
  console.error(`protomesh needs Node >= 20 (found ${process.versions.node}).`);
  process.exit(1);
}

function has(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

const wanted = [];
if (!process.env.ETCD_ENDPOINTS && !has("etcd")) wanted.push({ cmd: "etcd", packages: ["etcd-server", "etcd-client"] });
if (process.argv.includes("--browser") && !has("chromium")) wanted.push({ cmd: "chromium", packages: ["chromium"] });
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
