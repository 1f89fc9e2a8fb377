import { protobuf, protobufWkt } from "./protobuf-runtime";
import type {
  DescriptorProto,
  EnumDescriptorProto,
  FieldDescriptorProto,
  FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import type { ServiceDefinition } from "./definition";

/**
 * A set of `.proto` files, as serialized `FileDescriptorProto`s, indexed by
 * file name, by every symbol they declare and by the extensions they define.
 * Files are kept byte for byte as they were added, so what reflection serves is
 * exactly what the compiler wrote (source comments included).
 */
export class DescriptorPool {
  private readonly files = new Map<string, { readonly bytes: Uint8Array; readonly proto: FileDescriptorProto }>();
  /** Fully-qualified symbol (no leading dot) → the file that declares it. */
  private readonly symbols = new Map<string, string>();
  /** Fully-qualified message name → extension field number → file declaring the extension. */
  private readonly extensions = new Map<string, Map<number, string>>();
  private readonly messages = new Set<string>();

  /** A pool of every file embedded in `definitions` (the first file of a name wins). */
  static fromDefinitions(definitions: readonly ServiceDefinition[]): DescriptorPool {
    const pool = new DescriptorPool();
    for (const def of definitions) for (const b64 of def.descriptors) pool.add(Buffer.from(b64, "base64"));
    return pool;
  }

  /** A pool of the files in a serialized `FileDescriptorSet` (what `buf build` writes). */
  static fromFileDescriptorSet(bytes: Uint8Array): DescriptorPool {
    const pool = new DescriptorPool();
    for (const file of protobuf().fromBinary(protobufWkt().FileDescriptorSetSchema, bytes).file) pool.add(file);
    return pool;
  }

  /**
   * Adds a file (serialized or decoded). Returns false, changing nothing, when
   * a file of that name is already in the pool.
   */
  add(file: Uint8Array | FileDescriptorProto): boolean {
    const proto = file instanceof Uint8Array ? protobuf().fromBinary(protobufWkt().FileDescriptorProtoSchema, file) : file;
    if (this.files.has(proto.name)) return false;
    const bytes = file instanceof Uint8Array ? file : protobuf().toBinary(protobufWkt().FileDescriptorProtoSchema, file);
    this.files.set(proto.name, { bytes, proto });
    this.index(proto);
    return true;
  }

  /** File names in the order they were added. */
  fileNames(): string[] {
    return [...this.files.keys()];
  }

  has(fileName: string): boolean {
    return this.files.has(fileName);
  }

  bytes(fileName: string): Uint8Array | undefined {
    return this.files.get(fileName)?.bytes;
  }

  proto(fileName: string): FileDescriptorProto | undefined {
    return this.files.get(fileName)?.proto;
  }

  /** Every file, each after the files it imports (the order registries want). */
  protos(): FileDescriptorProto[] {
    const out: FileDescriptorProto[] = [];
    const seen = new Set<string>();
    const visit = (name: string) => {
      const file = this.files.get(name);
      if (!file || seen.has(name)) return;
      seen.add(name);
      for (const dep of file.proto.dependency) visit(dep);
      out.push(file.proto);
    };
    for (const name of this.files.keys()) visit(name);
    return out;
  }

  /** The file declaring `symbol` (a message, enum, enum value, field, oneof, service, method or extension). */
  fileContainingSymbol(symbol: string): string | undefined {
    return this.symbols.get(stripDot(symbol));
  }

  /** The file declaring extension `number` of message `type`. */
  fileContainingExtension(type: string, number: number): string | undefined {
    return this.extensions.get(stripDot(type))?.get(number);
  }

  /** Extension numbers of message `type` in ascending order; undefined when the pool has no such message. */
  extensionNumbers(type: string): number[] | undefined {
    const name = stripDot(type);
    if (!this.messages.has(name)) return undefined;
    return [...(this.extensions.get(name)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** Whether `name` is a service declared in the pool. */
  isService(name: string): boolean {
    const file = this.fileContainingSymbol(name);
    const proto = file === undefined ? undefined : this.files.get(file)?.proto;
    return proto !== undefined && proto.service.some((s) => qualify(proto.package, s.name) === stripDot(name));
  }

  /**
   * `fileName` followed by every file it imports, transitively, that is in the
   * pool and not in `exclude`. Imports missing from the pool are skipped: a
   * client asking for one by name gets NOT_FOUND then.
   */
  withDependencies(fileName: string, exclude: ReadonlySet<string> = new Set()): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    const visit = (name: string, requested: boolean) => {
      if (seen.has(name) || !this.files.has(name)) return;
      seen.add(name);
      if (requested || !exclude.has(name)) out.push(name);
      for (const dep of this.files.get(name)!.proto.dependency) visit(dep, false);
    };
    visit(fileName, true);
    return out;
  }

  private index(file: FileDescriptorProto): void {
    const put = (symbol: string) => {
      if (!this.symbols.has(symbol)) this.symbols.set(symbol, file.name);
    };
    const extension = (scope: string, ext: FieldDescriptorProto) => {
      put(qualify(scope, ext.name));
      const extendee = stripDot(ext.extendee);
      let numbers = this.extensions.get(extendee);
      if (!numbers) this.extensions.set(extendee, (numbers = new Map()));
      if (!numbers.has(ext.number)) numbers.set(ext.number, file.name);
    };
    const enumType = (scope: string, e: EnumDescriptorProto) => {
      put(qualify(scope, e.name));
      // Enum values are scoped like siblings of their enum (C++ scoping rules).
      for (const v of e.value) put(qualify(scope, v.name));
    };
    const message = (scope: string, m: DescriptorProto) => {
      const name = qualify(scope, m.name);
      put(name);
      this.messages.add(name);
      for (const f of m.field) put(`${name}.${f.name}`);
      for (const o of m.oneofDecl) put(`${name}.${o.name}`);
      for (const nested of m.nestedType) message(name, nested);
      for (const e of m.enumType) enumType(name, e);
      for (const ext of m.extension) extension(name, ext);
    };
    for (const m of file.messageType) message(file.package, m);
    for (const e of file.enumType) enumType(file.package, e);
    for (const ext of file.extension) extension(file.package, ext);
    for (const s of file.service) {
      const name = qualify(file.package, s.name);
      put(name);
      for (const m of s.method) put(`${name}.${m.name}`);
    }
  }
}

function qualify(scope: string, name: string): string {
  return scope === "" ? name : `${scope}.${name}`;
}

function stripDot(name: string): string {
  return name.startsWith(".") ? name.slice(1) : name;
}
