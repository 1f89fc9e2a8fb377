/**
 * @bufbuild/protobuf, loaded on first use. Its root module pulls in its whole reflection and
 * JSON machinery (60-odd modules); the runtime needs it only once a server builds its health
 * and reflection services or a dynamic call is made, so `import "protomesh"` does not load it.
 * Files import its types with `import type` and reach its values through these accessors.
 */
type Protobuf = typeof import("@bufbuild/protobuf");
type Wkt = typeof import("@bufbuild/protobuf/wkt");
type Reflect = typeof import("@bufbuild/protobuf/reflect");

let root: Protobuf | undefined;
let wkt: Wkt | undefined;
let reflect: Reflect | undefined;

/** `@bufbuild/protobuf` (create, fromBinary, toBinary, fromJson, toJson, createFileRegistry…). */
export function protobuf(): Protobuf {
  return (root ??= require("@bufbuild/protobuf") as Protobuf);
}

/** `@bufbuild/protobuf/wkt` (descriptor schemas and enums). */
export function protobufWkt(): Wkt {
  return (wkt ??= require("@bufbuild/protobuf/wkt") as Wkt);
}

/** `@bufbuild/protobuf/reflect`. */
export function protobufReflect(): Reflect {
  return (reflect ??= require("@bufbuild/protobuf/reflect") as Reflect);
}
