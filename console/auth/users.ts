/**
 * Console users in etcd, one key each:
 * `/protomesh/<namespace>/console/users/<name>` → `{"name","role","hash","createdAt"}`.
 * The hash is scrypt (see `password.ts`); the password itself is never stored
 * and never leaves the console process.
 */
import type { Etcd3 } from "etcd3";
import { prefixEnd } from "../../registry/etcd/watch-stream";
import { deadlineIn } from "../../registry/etcd/options";
import { hashPassword, verifyPassword } from "./password";
import { isRole, type Role } from "./roles";

export interface ConsoleUser {
  readonly name: string;
  readonly role: Role;
  readonly createdAt: string;
}

interface StoredUser extends ConsoleUser {
  readonly hash: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const MIN_PASSWORD_LENGTH = 8;

/** Throws unless `name` can be a user name. */
export function checkUserName(name: string): string {
  if (!NAME.test(name)) throw new Error(`invalid user name ${JSON.stringify(name)}: 1-64 characters from [A-Za-z0-9._@-], starting with a letter or digit`);
  return name;
}

export class UserStore {
  private readonly prefix: string;

  constructor(
    private readonly client: Etcd3,
    namespace: string,
    private readonly callTimeoutMs: number,
  ) {
    this.prefix = `/protomesh/${namespace}/console/users/`;
  }

  /** Creates or replaces a user. */
  async put(name: string, role: Role, password: string): Promise<ConsoleUser> {
    checkUserName(name);
    if (!isRole(role)) throw new Error(`invalid role ${JSON.stringify(role)}: viewer, editor or admin`);
    if (password.length < MIN_PASSWORD_LENGTH) throw new Error(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
    const user: StoredUser = { name, role, hash: await hashPassword(password), createdAt: new Date().toISOString() };
    await this.client.kv.put({ key: Buffer.from(this.prefix + name), value: Buffer.from(JSON.stringify(user)) }, deadlineIn(this.callTimeoutMs));
    return { name, role, createdAt: user.createdAt };
  }

  /** Removes a user; false when there was none. */
  async remove(name: string): Promise<boolean> {
    checkUserName(name);
    const res = await this.client.kv.deleteRange({ key: Buffer.from(this.prefix + name) }, deadlineIn(this.callTimeoutMs));
    return Number(res.deleted) > 0;
  }

  async list(): Promise<ConsoleUser[]> {
    const res = await this.client.kv.range({ key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix), limit: 10_000 }, deadlineIn(this.callTimeoutMs));
    return res.kvs.map((kv) => decode(kv.value)).filter((u): u is StoredUser => u !== undefined).map(({ name, role, createdAt }) => ({ name, role, createdAt }));
  }

  /** True when at least one user exists. */
  async any(): Promise<boolean> {
    const res = await this.client.kv.range({ key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix), limit: 1, keys_only: true }, deadlineIn(this.callTimeoutMs));
    return res.kvs.length > 0;
  }

  /** The user when name and password match; undefined otherwise (unknown user and wrong password look the same). */
  async authenticate(name: string, password: string): Promise<ConsoleUser | undefined> {
    let stored: StoredUser | undefined;
    if (NAME.test(name)) {
      const res = await this.client.kv.range({ key: Buffer.from(this.prefix + name) }, deadlineIn(this.callTimeoutMs));
      stored = res.kvs[0] ? decode(res.kvs[0].value) : undefined;
    }
    // Hash even for an unknown user, so timing does not tell which names exist.
    const ok = await verifyPassword(password, stored?.hash ?? DUMMY_HASH);
    return ok && stored ? { name: stored.name, role: stored.role, createdAt: stored.createdAt } : undefined;
  }
}

const DUMMY_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

function decode(value: Buffer): StoredUser | undefined {
  try {
    const u = JSON.parse(value.toString("utf8")) as Partial<StoredUser>;
    if (typeof u.name === "string" && isRole(u.role) && typeof u.hash === "string") {
      return { name: u.name, role: u.role, hash: u.hash, createdAt: typeof u.createdAt === "string" ? u.createdAt : "" };
    }
  } catch {
    // unreadable entries are skipped
  }
  return undefined;
}
