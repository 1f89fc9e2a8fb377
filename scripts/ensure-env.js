#!/usr/bin/env node
"use strict";
// Checks what `npm test` and `npm run demo` need that npm cannot install: Node >= 20 and an
// `etcd` binary. Installs Debian's etcd-server when running as root with apt-get; otherwise
// stops with one line saying what to run.
const { execFileSync, spawnSync } = require("node:child_process");

const major = Number(process.versions.node.split(".")[0]);
if (major < 20) {
  console.error(`protomesh needs Node >= 20 (found ${process.versions.node}).`);
  process.exit(1);
}

function has(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

if (process.env.ETCD_ENDPOINTS || has("etcd")) process.exit(0);

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (isRoot && has("apt-get")) {
  console.error("etcd not found: installing Debian's etcd-server (apt-get)…");
  try {
    execFileSync("sh", ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null"], { stdio: "inherit" });
  } catch {
    console.error("Installing etcd failed. Run: sudo apt-get install -y etcd-server etcd-client");
    process.exit(1);
  }
  if (has("etcd")) process.exit(0);
}
console.error("etcd not found. Run: sudo apt-get install -y etcd-server etcd-client   (or set ETCD_ENDPOINTS to a running cluster)");
process.exit(1);
