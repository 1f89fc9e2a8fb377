"use strict";
const fs = require("node:fs");
const path = require("node:path");

/** Loads `<module>` from dist/ when built, else from the TypeScript source through tsx. */
module.exports = function load(module) {
  const root = path.join(__dirname, "..");
  const built = path.join(root, "dist", module + ".js");
  if (fs.existsSync(built)) return require(built);
  require("tsx/cjs");
  return require(path.join(root, module + ".ts"));
};
