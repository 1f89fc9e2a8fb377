#!/usr/bin/env node
"use strict";
// Runs a TypeScript entry point of this repository (examples, benchmarks): `node bin/run.js examples/greeter/server.ts`.
require("tsx/cjs");
const path = require("node:path");
const file = process.argv[2];
if (!file) { console.error("usage: node bin/run.js <file.ts> [args…]"); process.exit(2); }
process.argv.splice(1, 1);
require(path.resolve(file));
