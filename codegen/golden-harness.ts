import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DEFAULT_PROTOMESH_OPTIONS, DEFAULT_TS_PROTO_OPTIONS } from "./buf-config";
import { findBuf, runBuf, writePluginShims, type BufCommand } from "./buf-runner";

/**
 * Test support for the golden cases under `codegen/testdata/<case>/`: runs buf
 * with ts-proto and protoc-gen-protomesh on a case, the same way `protomesh gen`
 * does, into a scratch directory.
 */

export const TESTDATA = path.join(__dirname, "testdata");

/** The golden cases: every directory under testdata/, sorted. */
export function goldenCases(): string[] {
  return fs.readdirSync(TESTDATA, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
}

/** A scratch area with plugin launchers; `dispose()` removes it. */
export class GoldenRunner {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "protomesh-golden-"));
  private readonly buf: BufCommand = findBuf(process.env);
  private readonly path = [writePluginShims(path.join(this.dir, "bin")), process.env.PATH ?? ""].join(path.delimiter);
  private readonly runs = new Map<string, Promise<string>>();

  /** Generates case `name` (once) and resolves to its output directory. */
  generate(name: string): Promise<string> {
    let run = this.runs.get(name);
    if (!run) {
      run = this.run(name);
      this.runs.set(name, run);
    }
    return run;
  }

  private async run(name: string): Promise<string> {
    const out = path.join(this.dir, "out", name);
    const template = {
      version: "v2",
      plugins: [
        { local: "protoc-gen-ts_proto", out, opt: DEFAULT_TS_PROTO_OPTIONS },
        { local: "protoc-gen-protomesh", out, opt: DEFAULT_PROTOMESH_OPTIONS },
      ],
    };
    const config = { version: "v2", modules: [{ path: ".", excludes: ["expected"] }] };
    const result = await runBuf(
      this.buf,
      ["generate", "--template", JSON.stringify(template), "--config", JSON.stringify(config)],
      path.join(TESTDATA, name),
      { ...process.env, PATH: this.path },
    );
    if (result.code !== 0) throw new Error(`buf failed on golden case ${name}:\n${result.stderr}`);
    return out;
  }

  dispose(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Files under `dir` whose names end in `suffix`, as relative path → content, sorted by path. */
export function readTree(dir: string, suffix: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    if (!fs.existsSync(abs)) return;
    for (const entry of fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const child = path.posix.join(rel, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.name.endsWith(suffix)) files.set(child, fs.readFileSync(path.join(dir, child), "utf8"));
    }
  };
  walk("");
  return files;
}
