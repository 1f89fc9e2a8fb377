#!/usr/bin/env node
"use strict";
// Runs the compiled CLI when the package is built, the TypeScript source otherwise.
require("./load")("cli/main").main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`protomesh: ${err && err.message ? err.message : err}`); process.exitCode = 1; },
);
