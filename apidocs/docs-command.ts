import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { CliError, ExitCode, printUsageError, UsageError, type CliIo, type Command } from "../cli/command";
import { requireDirectoryPath } from "../cli/directories";
import { buildDescriptors } from "./descriptor-set";
import { renderHtml } from "./html";
import { renderMarkdown } from "./markdown";
import { buildModel } from "./model";
import { startDocsServer } from "./try-server";

const USAGE = `usage: protomesh docs [--root DIR] [--out DIR] [--serve [--port N] [--host HOST] [--target ADDR]]

Writes API docs from the project's .proto files (found as protomesh gen finds
them: buf.yaml, else proto/, else the root): one Markdown file (api.md) and
one self-contained HTML page (index.html) with every service, method and its
streaming kind, message, field, enum and comment, deprecated marks, and links
between types.

With --serve, serves the page on a local HTTP port instead, where each method
can be tried: the page's JSON request is encoded with the protos, sent to the
target, and the answer shown as JSON.

options:
  --root DIR       project root (default: the current directory)
  --out DIR        where to write api.md and index.html (default: <root>/docs/api;
                   with --serve, files are written only when --out is given)
  --serve          serve the page and its call endpoint until interrupted
  --port N         port to serve on (default 8088; 0 picks a free one)
  --host HOST      address to serve on (default 127.0.0.1)
  --target ADDR    where calls go: host:port or etcd:///service (ETCD_ENDPOINTS);
                   the page lets the reader change it
  -h, --help       show this help
`;

const DEFAULT_OUT = path.join("docs", "api");
const DEFAULT_PORT = 8088;

/** `protomesh docs`. */
export const docsCommand: Command = {
  async run(args: string[], io: CliIo): Promise<number> {
    let values: { root?: string; out?: string; serve?: boolean; port?: string; host?: string; target?: string; help?: boolean };
    try {
      ({ values } = parseArgs({
        args,
        options: {
          root: { type: "string" },
          out: { type: "string" },
          serve: { type: "boolean" },
          port: { type: "string" },
          host: { type: "string" },
          target: { type: "string" },
          help: { type: "boolean", short: "h" },
        },
        strict: true,
        allowPositionals: false,
      }));
      if (!values.serve && (values.port !== undefined || values.host !== undefined || values.target !== undefined)) {
        throw new UsageError("--port, --host and --target go with --serve");
      }
      if (values.port !== undefined && !/^\d+$/.test(values.port)) throw new UsageError(`--port must be a number, got ${JSON.stringify(values.port)}`);
    } catch (err) {
      return printUsageError(io, "docs", err instanceof Error ? err.message : String(err));
    }
    if (values.help) {
      io.out(USAGE);
      return ExitCode.ok;
    }

    const root = path.resolve(io.cwd, values.root ?? ".");
    const write = !values.serve || values.out !== undefined;
    const out = values.out === undefined ? path.join(root, DEFAULT_OUT) : path.resolve(io.cwd, values.out);
    try {
      // Before buf runs: a file in the way is said in one line, without waiting for the build.
      if (write) requireDirectoryPath(out);
      const descriptors = await buildDescriptors(root, io.env);
      if (write) {
        const written = writeDocs(descriptors.registry, descriptors.projectFiles, out);
        io.out(`protomesh docs: ${descriptors.projectFiles.length} .proto ${descriptors.projectFiles.length === 1 ? "file" : "files"} → ${written.map((f) => path.relative(io.cwd, f) || f).join(", ")}\n`);
      }
      if (!values.serve) return ExitCode.ok;
      const server = await startDocsServer({
        descriptors,
        host: values.host,
        port: values.port === undefined ? DEFAULT_PORT : Number(values.port),
        target: values.target,
        env: io.env,
      });
      io.out(`protomesh docs: serving ${server.url}${values.target ? ` (calls go to ${values.target})` : ""}; Ctrl-C stops\n`);
      await untilInterrupted();
      await server.close();
      return ExitCode.ok;
    } catch (err) {
      if (err instanceof CliError) {
        io.err(`protomesh docs: ${err.message}\n`);
        return ExitCode.failure;
      }
      if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
        io.err(`protomesh docs: port ${values.port ?? DEFAULT_PORT} is in use; pick another with --port\n`);
        return ExitCode.failure;
      }
      throw err;
    }
  },
};

/** Writes `api.md` and `index.html` into `dir`; returns their paths. */
export function writeDocs(registry: Parameters<typeof buildModel>[0], projectFiles: readonly string[], dir: string): string[] {
  const model = buildModel(registry, projectFiles);
  fs.mkdirSync(dir, { recursive: true });
  const markdown = path.join(dir, "api.md");
  const html = path.join(dir, "index.html");
  fs.writeFileSync(markdown, renderMarkdown(model));
  fs.writeFileSync(html, renderHtml(model));
  return [markdown, html];
}

function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
