import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { CliError } from "../cli/command";

/**
 * Reading a project's `buf.yaml` / `buf.gen.yaml`, or standing in for them when
 * the project has none.
 */

/**
 * The options ts-proto runs with when a project brings no `buf.gen.yaml`. Relative imports
 * end in `.js` (`importSuffix`), which ESM under `moduleResolution: "nodenext"` requires and
 * CommonJS, bundlers and tsx all resolve to the `.ts` source as well.
 */
export const DEFAULT_TS_PROTO_OPTIONS = ["outputServices=grpc-js", "esModuleInterop=true", "env=node", "importSuffix=.js"];

/** protoc-gen-protomesh's options to match: its imports of ts-proto's modules end in `.js` too. */
export const DEFAULT_PROTOMESH_OPTIONS = ["import_extension=js"];

/** The template used without a `buf.gen.yaml`: ts-proto and protomesh into `gen/`. */
export function defaultTemplate(): Record<string, unknown> {
  return {
    version: "v2",
    clean: true,
    plugins: [
      { local: "protoc-gen-ts_proto", out: "gen", opt: [...DEFAULT_TS_PROTO_OPTIONS] },
      { local: "protoc-gen-protomesh", out: "gen", opt: [...DEFAULT_PROTOMESH_OPTIONS] },
    ],
  };
}

/** A generation template, checked enough to find where each plugin writes. */
export interface GenTemplate {
  /** The parsed template, handed to buf after its `out`s are redirected. */
  readonly data: Record<string, unknown>;
  /** Where it came from, for messages: a path, or "default template". */
  readonly origin: string;
  /** `clean: true`: output directories are replaced, not merged into. */
  readonly clean: boolean;
  /** Each plugin's `out`, as written (relative to the project root unless absolute). */
  readonly outs: readonly string[];
}

/**
 * Loads `file` (or `<root>/buf.gen.yaml`, or the default template when that
 * does not exist). Throws `CliError` with the reason when the file cannot be
 * read or is not a usable template.
 */
export function loadTemplate(root: string, file: string | undefined): GenTemplate {
  const target = file ?? path.join(root, "buf.gen.yaml");
  if (file === undefined && !fs.existsSync(target)) return checkTemplate(defaultTemplate(), "default template");
  let text: string;
  try {
    text = fs.readFileSync(target, "utf8");
  } catch (err) {
    throw new CliError(`cannot read template ${target}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new CliError(`cannot parse template ${target}: ${firstLine(err)}`);
  }
  return checkTemplate(data, target);
}

function checkTemplate(data: unknown, origin: string): GenTemplate {
  const fail = (why: string): never => {
    throw new CliError(`template ${origin} ${why}`);
  };
  if (!isRecord(data)) return fail("is not a YAML mapping");
  const plugins = data.plugins;
  if (!Array.isArray(plugins) || plugins.length === 0) return fail('has no "plugins" list');
  const outs = plugins.map((p: unknown, i) => {
    if (!isRecord(p) || typeof p.out !== "string" || p.out === "") return fail(`: plugin #${i + 1} has no "out" directory`);
    if (/\.(zip|jar)$/.test(p.out)) return fail(`: plugin #${i + 1} writes to an archive (${p.out}); protomesh gen writes directories only`);
    return p.out;
  });
  return { data, origin, clean: data.clean === true, outs };
}

/** A copy of `template` whose plugin outputs are rewritten by `map`. */
export function redirectOuts(template: GenTemplate, map: (out: string) => string): Record<string, unknown> {
  const plugins = (template.data.plugins as Record<string, unknown>[]).map((p) => ({ ...p, out: map(p.out as string) }));
  // buf must not clean anything itself: it only ever writes into a fresh
  // directory, and we decide what replaces what afterwards.
  return { ...template.data, ...("clean" in template.data ? { clean: false } : {}), plugins };
}

/** The proto sources buf compiles, as protomesh understands them. */
export interface Workspace {
  /** `<root>/buf.yaml`, when the project has one. */
  readonly bufYaml: string | undefined;
  /** `buf.yaml` contents to pass with `--config` when the project has none. */
  readonly configOverride: string | undefined;
  /** Module directories (absolute) with what to skip inside each: the project's own protos. */
  readonly modules: readonly { readonly dir: string; readonly excludes: readonly string[] }[];
  /**
   * Paths (relative to the root) buf compiles only to satisfy imports: never generated, never
   * documented (`--exclude-path`). googleapis' `google/` from `google-proto-files` when the
   * project imports `google/api/...` and has no `buf.yaml`.
   */
  readonly importOnly: readonly string[];
  /** Why an import may fail to resolve, when protomesh can tell (added to buf's report). */
  readonly importHint: string | undefined;
}

/** The npm package that ships googleapis' protos (`google/api/annotations.proto`, `http.proto`). */
export const GOOGLE_PROTOS_PACKAGE = "google-proto-files";

/** The flags that make buf see the workspace as `loadWorkspace` found it. */
export function workspaceArgs(workspace: Workspace): string[] {
  const args: string[] = [];
  if (workspace.configOverride !== undefined) args.push("--config", workspace.configOverride);
  for (const p of workspace.importOnly) args.push("--exclude-path", p);
  return args;
}

/**
 * Finds the modules to compile. With a `buf.yaml`, its `modules` (v2) or the root
 * itself (v1). Without, `proto/` when it exists, else the root minus
 * `node_modules`, hidden directories and the output directories.
 */
export function loadWorkspace(root: string, outDirs: readonly string[]): Workspace {
  const bufYaml = path.join(root, "buf.yaml");
  if (fs.existsSync(bufYaml)) {
    let data: unknown;
    try {
      data = parseYaml(fs.readFileSync(bufYaml, "utf8"));
    } catch (err) {
      throw new CliError(`cannot parse ${bufYaml}: ${firstLine(err)}`);
    }
    const config = isRecord(data) ? data : {};
    const listed = Array.isArray(config.modules) ? config.modules.filter(isRecord) : [];
    const modules = config.version === "v2" && listed.length > 0
      ? listed.map((m) => ({
        dir: path.resolve(root, typeof m.path === "string" ? m.path : "."),
        excludes: Array.isArray(m.excludes) ? m.excludes.filter((e): e is string => typeof e === "string").map((e) => path.resolve(root, e)) : [],
      }))
      : [{ dir: root, excludes: [] }];
    return { bufYaml, configOverride: undefined, modules, importOnly: [], importHint: undefined };
  }
  const protoDir = path.join(root, "proto");
  if (isDirectory(protoDir)) return withGoogleApis(root, [{ path: "proto" }], [{ dir: protoDir, excludes: [] }]);
  const skipped = new Set<string>(["node_modules"]);
  for (const entry of safeReaddir(root)) if (entry.name.startsWith(".") && entry.isDirectory()) skipped.add(entry.name);
  for (const out of outDirs) {
    const rel = path.relative(root, out);
    if (rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel)) skipped.add(rel.split(path.sep).join("/"));
  }
  // buf refuses an exclude nested in another one (`gen` and `gen/pm`).
  const excludes = [...skipped].sort().filter((e, _i, all) => !all.some((o) => e.startsWith(`${o}/`)));
  return withGoogleApis(root, [{ path: ".", excludes }], [{ dir: root, excludes: excludes.map((e) => path.join(root, e)) }]);
}

/**
 * The stand-in `buf.yaml` for `entries`, plus googleapis' `google/api` as a second module when the
 * project's protos import it, do not carry their own copy, and `google-proto-files` is installed
 * in the root's `node_modules`. Only the top level of `google/api` is compiled: its
 * subdirectories (apikeys, servicecontrol, ...) import protos the package does not ship.
 */
function withGoogleApis(root: string, entries: Record<string, unknown>[], modules: Workspace["modules"]): Workspace {
  const plain = (hint?: string): Workspace => ({
    bufYaml: undefined,
    configOverride: JSON.stringify({ version: "v2", modules: entries }),
    modules,
    importOnly: [],
    importHint: hint,
  });
  // A project that vendors google/api itself keeps its copy (two copies would clash in buf).
  if (modules.some((m) => isDirectory(path.join(m.dir, "google", "api")))) return plain();
  if (!listProtos(modules).some(importsGoogleApi)) return plain();
  const pkg = `node_modules/${GOOGLE_PROTOS_PACKAGE}`;
  const api = path.join(root, pkg, "google", "api");
  if (!fs.existsSync(path.join(api, "annotations.proto"))) {
    return plain(
      `google/api/*.proto (google.api.http annotations) comes from the npm package ${GOOGLE_PROTOS_PACKAGE}: ` +
      `run \`npm install -D ${GOOGLE_PROTOS_PACKAGE}\` in ${root} and generate again`,
    );
  }
  const nested = safeReaddir(api).filter((e) => e.isDirectory()).map((e) => `${pkg}/google/api/${e.name}`);
  return {
    bufYaml: undefined,
    configOverride: JSON.stringify({
      version: "v2",
      modules: [...entries, { path: pkg, includes: [`${pkg}/google/api`], ...(nested.length > 0 ? { excludes: nested } : {}) }],
    }),
    modules,
    importOnly: [`${pkg}/google`],
    importHint: undefined,
  };
}

function importsGoogleApi(file: string): boolean {
  try {
    return /^\s*import\s+(?:public\s+|weak\s+)?"google\/api\//m.test(fs.readFileSync(file, "utf8"));
  } catch {
    return false;
  }
}

/** Counts `.proto` files in the workspace's modules (stopping early past `limit`). */
export function countProtos(workspace: Workspace, limit = Infinity): number {
  return listProtos(workspace.modules, limit).length;
}

/** The `.proto` files (absolute paths) of `modules`, at most `limit` of them. */
function listProtos(modules: Workspace["modules"], limit = Infinity): string[] {
  const found: string[] = [];
  const walk = (dir: string, excludes: ReadonlySet<string>) => {
    for (const entry of safeReaddir(dir)) {
      if (found.length >= limit) return;
      const full = path.join(dir, entry.name);
      if (excludes.has(full)) continue;
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules") walk(full, excludes);
      } else if (entry.name.endsWith(".proto")) {
        found.push(full);
      }
    }
  };
  for (const m of modules) walk(m.dir, new Set(m.excludes));
  return found;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0].replace(/:$/, "");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function safeReaddir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch {
    return [];
  }
}
