"use strict";
const fs = require("node:fs");
const path = require("node:path");

/**
 * Loads `<module>`: from the TypeScript source through tsx inside a checkout (so edits take
 * effect without a build), from the compiled `dist/` in an installed package (which ships no
 * sources).
 */
module.exports = function load(module) {
  const root = path.join(__dirname, "..");
  const source = path.join(root, module + ".ts");
  if (fs.existsSync(source)) {
    require("tsx/cjs");
    return require(source);
  }
  return require(path.join(root, "dist", module + ".js"));
};
