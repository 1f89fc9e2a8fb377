#!/usr/bin/env node
"use strict";
// Runs the compiled CLI when the package is built, the TypeScript source otherwise.
const cli = require("./load")("cli/main");
cli.main(cli.setUpCliLogging(process.argv.slice(2), process.env)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`protomesh: ${err && err.message ? err.message : err}`); process.exitCode = 1; },
);
