/**
 * The scaffolded project's package.json, built from protomesh's own: the generator, compiler and
 * types are pinned to the ranges this protomesh is tested with, so a new project installs a set
 * that is known to work together.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../cli/package-root";
import type { ProjectNames } from "./names";

interface Manifest {
  version: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  engines?: Record<string, string>;
}

/** What the project needs at run time besides protomesh, and what it builds and tests with. */
const RUNTIME = ["@grpc/grpc-js"];
const GENERATOR = ["@bufbuild/buf", "@bufbuild/protoplugin", "ts-proto"];
const TOOLS = ["typescript", "@types/node"];

/** The package.json text of a new project called `names.name`. */
export function projectPackageJson(names: ProjectNames, manifest: Manifest = readOwnManifest()): string {
  const range = (name: string): string => {
    const found = manifest.peerDependencies?.[name] ?? manifest.dependencies?.[name] ?? manifest.devDependencies?.[name];
    if (found === undefined) throw new Error(`protomesh's package.json names no version of ${name}`);
    return found;
  };
  // Sorted, as npm writes them back.
  const pick = (list: readonly string[]) => Object.fromEntries([...list].sort().map((n) => [n, range(n)]));
  const project = {
    name: names.name,
    version: "0.1.0",
    private: true,
    description: `The ${names.name} gRPC service (protomesh).`,
    type: "module",
    engines: manifest.engines ?? { node: ">=20.19" },
    scripts: {
      gen: "protomesh gen",
      build: "protomesh gen && tsc -p tsconfig.build.json",
      typecheck: "protomesh gen && tsc --noEmit",
      test: "protomesh gen && tsc && node --test dist/test/*.test.js",
      start: "node dist/src/main.js",
      client: "node dist/src/client.js",
    },
    dependencies: { ...pick(RUNTIME), protomesh: `^${manifest.version}` },
    devDependencies: pick([...GENERATOR, ...TOOLS]),
  };
  return `${JSON.stringify(project, null, 2)}\n`;
}

function readOwnManifest(): Manifest {
  return JSON.parse(fs.readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as Manifest;
}
