import { expect } from "chai";
import { isSafeBinding, methodLocalName } from "./names";

describe("codegen names", () => {
  it("spells method names as ts-proto's grpc-js output does", () => {
    const cases: Record<string, string> = {
      SayHello: "sayHello",
      GetAPIKey: "getApiKey",
      get_user_by_id: "getUserById",
      HTTPStatus2FA: "httpStatus2Fa",
      ListV2Items: "listV2Items",
      X509Cert: "x509Cert",
      IPv6Address: "iPv6Address",
      UPPER_SNAKE: "upperSnake",
      Foo__Bar: "fooBar",
      lowercase: "lowercase",
    };
    for (const [proto, ts] of Object.entries(cases)) expect(methodLocalName(proto), proto).to.equal(ts);
  });

  it("rejects bindings a strict-mode module cannot declare", () => {
    for (const bad of ["delete", "await", "arguments", "my-api", "2x", "undefined"]) expect(isSafeBinding(bad), bad).to.equal(false);
    for (const good of ["greeter", "google_protobuf_empty", "$x", "FooClient2"]) expect(isSafeBinding(good), good).to.equal(true);
  });
});
