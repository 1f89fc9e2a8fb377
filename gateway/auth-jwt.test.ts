import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { JwtVerifier } from "./auth-jwt";
import type { JwtSettings } from "./policy";

const SECRET = "a-secret-of-at-least-sixteen";

function hs(claims: Record<string, unknown>, expSeconds?: number, alg = "HS256"): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg });
  if (expSeconds !== undefined) jwt.setExpirationTime(expSeconds);
  return jwt.sign(new TextEncoder().encode(SECRET));
}

async function status(verifier: JwtVerifier, token: string): Promise<number> {
  try {
    await verifier.verify(token);
    return 200;
  } catch (err) {
    return (err as { httpStatus?: number }).httpStatus ?? 500;
  }
}

describe("gateway JWT verifier", () => {
  const now = () => Math.floor(Date.now() / 1000);

  it("checks a token's signature once and answers the same token from the cache after that", async () => {
    const v = new JwtVerifier({ secret: SECRET });
    const token = await hs({ sub: "ada", scope: "echo" }, now() + 600);
    expect((await v.verify(token)).sub).to.equal("ada");
    expect((await v.verify(token)).sub).to.equal("ada");
    expect(v.cacheStats()).to.deep.equal({ hits: 1, checks: 1, entries: 1 });
    // Another token (a signature character changed, away from the last one whose low bits are
    // padding) is a miss, and a failed check is not cached.
    const at = token.length - 10;
    const forged = token.slice(0, at) + (token[at] === "A" ? "B" : "A") + token.slice(at + 1);
    expect(await status(v, forged)).to.equal(401);
    expect(await status(v, forged)).to.equal(401);
    expect(v.cacheStats()).to.deep.equal({ hits: 1, checks: 3, entries: 1 });
  });

  it("verifies HS256, HS384 and HS512 with one secret, with the cache off", async () => {
    const v = new JwtVerifier({ secret: SECRET, cacheSeconds: 0 });
    for (const alg of ["HS256", "HS384", "HS512"]) {
      for (let i = 0; i < 2; i++) expect((await v.verify(await hs({ sub: alg, i }, now() + 60, alg))).sub).to.equal(alg);
    }
    expect(v.cacheStats()).to.deep.equal({ hits: 0, checks: 6, entries: 0 });
  });

  it("never answers from the cache past the token's exp (plus leeway)", async () => {
    const v = new JwtVerifier({ secret: SECRET, leewaySeconds: 0 });
    const token = await hs({ sub: "brief" }, now() + 2);
    expect(await status(v, token)).to.equal(200);
    expect(await status(v, token)).to.equal(200);
    const deadline = Date.now() + 10_000;
    while ((await status(v, token)) === 200) {
      if (Date.now() > deadline) expect.fail("an expired token was still accepted");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(v.cacheStats().entries).to.equal(0);
  });

  it("keeps at most cacheEntries tokens, the oldest leaving first, and none with cacheSeconds 0", async () => {
    const settings: JwtSettings = { secret: SECRET, cacheEntries: 2 };
    const v = new JwtVerifier(settings);
    const tokens = await Promise.all(["a", "b", "c"].map((sub) => hs({ sub }, now() + 600)));
    for (const t of tokens) await v.verify(t);
    expect(v.cacheStats().entries).to.equal(2);
    await v.verify(tokens[2]);
    await v.verify(tokens[0]); // evicted: checked again
    expect(v.cacheStats()).to.deep.equal({ hits: 1, checks: 4, entries: 2 });

    const off = new JwtVerifier({ secret: SECRET, cacheSeconds: 0 });
    await off.verify(tokens[0]);
    await off.verify(tokens[0]);
    expect(off.cacheStats()).to.deep.equal({ hits: 0, checks: 2, entries: 0 });
  });

  it("forgets cached tokens when the JWKS file changes, so a key taken out stops its tokens", async function () {
    this.timeout(20_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-jwt-cache-"));
    try {
      const file = path.join(dir, "jwks.json");
      const k1 = await generateKeyPair("ES256");
      const k2 = await generateKeyPair("ES256");
      const jwk = async (k: Awaited<ReturnType<typeof generateKeyPair>>["publicKey"], kid: string) => ({ ...(await exportJWK(k)), kid, alg: "ES256", use: "sig" });
      fs.writeFileSync(file, JSON.stringify({ keys: [await jwk(k1.publicKey, "k1")] }));
      const v = new JwtVerifier({ jwksFile: file });
      const t1 = await new SignJWT({ sub: "es" }).setProtectedHeader({ alg: "ES256", kid: "k1" }).setExpirationTime("5m").sign(k1.privateKey);
      expect(await status(v, t1)).to.equal(200);
      expect(await status(v, t1)).to.equal(200);
      expect(v.cacheStats().hits).to.equal(1);
      fs.writeFileSync(file, JSON.stringify({ keys: [await jwk(k2.publicKey, "k2")] }));
      fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
      const deadline = Date.now() + 10_000;
      while ((await status(v, t1)) === 200) {
        if (Date.now() > deadline) expect.fail("a token of a removed key was still accepted");
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(v.cacheStats().entries).to.equal(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
