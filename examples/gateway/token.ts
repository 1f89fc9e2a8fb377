/**
 * Prints an HS256 token the example policy (policy.yaml) accepts, signed with its `jwt.secret`:
 *
 *   node bin/run.js examples/gateway/token.ts [sub] [scope …]     # default: ada echo
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SignJWT } from "jose";
import { parse } from "yaml";

async function main(): Promise<void> {
  const [sub = "ada", ...scopes] = process.argv.slice(2);
  const policy = parse(fs.readFileSync(path.join(__dirname, "policy.yaml"), "utf8")) as { jwt: { secret: string; issuer: string } };
  const token = await new SignJWT({ scope: (scopes.length > 0 ? scopes : ["echo"]).join(" ") })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuer(policy.jwt.issuer)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(policy.jwt.secret));
  process.stdout.write(`${token}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
