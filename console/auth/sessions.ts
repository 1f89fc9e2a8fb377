/**
 * Sign-in sessions, in the console process's memory: a random id in an
 * HttpOnly, SameSite=Strict cookie, and a second random token the page must
 * echo in `x-csrf-token` on every write (the page reads it from
 * `GET /api/session`; another site can neither read it nor set the header).
 * A restart signs everyone out, which is acceptable for an admin console.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Role } from "./roles";

export const SESSION_COOKIE = "protomesh_console";
export const CSRF_HEADER = "x-csrf-token";

export interface Session {
  readonly id: string;
  readonly user: string;
  readonly role: Role;
  readonly csrf: string;
  expiresAt: number;
}

export class Sessions {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly ttlMs = 8 * 3600_000,
    private readonly max = 10_000,
  ) {}

  create(user: string, role: Role): Session {
    this.sweep();
    if (this.sessions.size >= this.max) {
      // The oldest go first: a flood of sign-ins cannot grow memory without bound.
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const session: Session = { id: token(), user, role, csrf: token(), expiresAt: Date.now() + this.ttlMs };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session for a cookie header, sliding its expiry. */
  fromCookie(cookieHeader: string | undefined): Session | undefined {
    const id = readCookie(cookieHeader, SESSION_COOKIE);
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt < Date.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    s.expiresAt = Date.now() + this.ttlMs;
    return s;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  /** Ends every session of `user` (after a password or role change). */
  endUser(user: string): void {
    for (const [id, s] of this.sessions) if (s.user === user) this.sessions.delete(id);
  }

  /** The cookie header that sets (or, with `undefined`, clears) the session. */
  cookie(session: Session | undefined, secure: boolean): string {
    const attrs = `Path=/; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
    return session ? `${SESSION_COOKIE}=${session.id}; ${attrs}; Max-Age=${Math.floor(this.ttlMs / 1000)}` : `${SESSION_COOKIE}=; ${attrs}; Max-Age=0`;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (s.expiresAt < now) this.sessions.delete(id);
  }
}

/** Constant-time comparison of the CSRF header with the session's token. */
export function csrfMatches(session: Session, header: string | string[] | undefined): boolean {
  if (typeof header !== "string") return false;
  const a = Buffer.from(header);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function token(): string {
  return randomBytes(24).toString("base64url");
}
