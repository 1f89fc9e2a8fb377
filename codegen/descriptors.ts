import { toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";

/**
 * The files a generated module embeds: every file `root` imports, transitively,
 * each after its own imports, then `root` itself. This is the order
 * `loadFileDescriptorSetFromBuffer` and reflection clients can consume without
 * a second pass.
 *
 * `files` are the `proto_file` entries of the CodeGeneratorRequest: protoc and buf
 * put every transitive import there, with `source_code_info`.
 */
export function transitiveFiles(root: string, files: ReadonlyMap<string, FileDescriptorProto>): FileDescriptorProto[] {
  const ordered: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (name: string, importer: string | undefined) => {
    if (seen.has(name)) return;
    seen.add(name);
    const file = files.get(name);
    if (!file) throw new Error(`${importer ?? name}: imported file ${name} is missing from the CodeGeneratorRequest`);
    for (const dep of file.dependency) visit(dep, name);
    ordered.push(file);
  };
  visit(root, undefined);
  return ordered;
}

/** A serialized `FileDescriptorProto`, base64-encoded for a string literal. */
export function encodeDescriptor(file: FileDescriptorProto): string {
  return Buffer.from(toBinary(FileDescriptorProtoSchema, file)).toString("base64");
}
