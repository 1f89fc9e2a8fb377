import { createEcmaScriptPlugin, type Plugin, type Schema } from "@bufbuild/protoplugin";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { packageVersion } from "../cli/package-root";
import { outputPath, renderServiceFile } from "./render";

/**
 * `protoc-gen-protomesh`: for each requested `.proto` file that declares a
 * service, writes `<dir>/<name>_protomesh.ts` beside ts-proto's `<dir>/<name>.ts`.
 * Only the `ts` target is meaningful; `plugin-main` selects it when the caller
 * names none.
 */
export const protomeshPlugin: Plugin = createEcmaScriptPlugin({
  name: "protoc-gen-protomesh",
  version: `v${packageVersion()}`,
  generateTs(schema: Schema) {
    // Embedded descriptors come from the request's `proto_file` list: it holds
    // every transitive import with `source_code_info` (comments), and without
    // source-retention options. (protoplugin's `DescFile.proto` is, for files
    // being generated, the `source_file_descriptors` copy, which keeps those.)
    const protoFiles = new Map<string, FileDescriptorProto>(schema.proto.protoFile.map((f) => [f.name, f]));
    const importExtension = schema.options.importExtension === "none" ? "" : `.${schema.options.importExtension}`;
    for (const file of schema.files) {
      if (file.services.length === 0) continue;
      schema.generateFile(outputPath(file)).print(
        renderServiceFile({ file, protoFiles, importExtension }).replace(/\n$/, ""),
      );
    }
  },
});
