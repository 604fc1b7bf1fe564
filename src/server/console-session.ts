/**
 * Sessions of the web console (docs/console.md "Security model"): after a login with the admin
 * token, the browser holds a stateless signed session cookie; the console's requests to the
 * `/admin/*` API authenticate with it instead of a bearer token.
 *
 * - The cookie `scepter_session` is `v1.<expires>.<issued>.<id>.<admin>.<mac>`: the expiry and
 *   issue times (seconds), a random id, the admin's name (base64url; the named token the login
 *   authenticated with, src/server/admin-auth.ts), and HMAC-SHA256 over the rest under the
 *   session key, read and set through `@fastify/cookie`. `consoleSessionAuth` makes it one more `AdminAuth` in front of the bearer
 *   tokens, so every admin route, log line and audit record sees the same admin name. No server
 *   state: any thread or instance holding the same key (DIR/console-session.key, created once
 *   with mode 0600) accepts it. HttpOnly, SameSite=Strict, Path=/, Secure under HTTPS.
 * - Expiry: idle timeout (renewed on every authenticated request) and an absolute lifetime.
 * - CSRF: every request other than GET/HEAD carries `X-CSRF-Token`, a synchronizer token derived
 *   from the session (HMAC of its id under the key), returned by the login. A cross-site page can
 *   neither read it nor, without CORS, send a custom header; SameSite=Strict is a second wall.
 *   Without the right token the session does not authenticate the request (401 on the admin
 *   API, 403 on logout).
 * - Logout clears the cookie and denies the session id in this process until it expires; other
 *   instances sharing the key keep accepting it until its idle timeout (documented).
 *
 * MACs and tokens are compared in constant time (`timingSafeEqual` on equal-length HMACs).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AdminAuth } from './admin-auth.js';

export const SESSION_COOKIE = 'scepter_session';
export const CSRF_HEADER = 'x-csrf-token';
/** The session key file in the data directory. */
export const SESSION_KEY_FILE = 'console-session.key';
/** Default idle timeout, seconds. */
export const DEFAULT_SESSION_IDLE_SECONDS = 30 * 60;
/** Default absolute lifetime of a session, seconds. */
export const DEFAULT_SESSION_MAX_SECONDS = 12 * 60 * 60;
/** Longest cookie value considered at all. */
const MAX_COOKIE_LENGTH = 512;

export interface ConsoleSessionOptions {
  /** HMAC key (at least 32 bytes). */
  key: Buffer;
  /** Set the cookie's Secure attribute (the server speaks HTTPS). */
  secure: boolean;
  idleSeconds?: number;
  maxSeconds?: number;
  now?: () => number;
}

/** A valid session. */
export interface Session {
  id: string;
  /** The admin's name (from the named token of the login). */
  admin: string;
  issuedAt: number;
  expiresAt: number;
}

/** What a request carries: no session, a valid one, or a valid one whose CSRF token is wrong. */
export type SessionVerdict =
  { kind: 'none' } | { kind: 'csrf'; session: Session } | { kind: 'ok'; session: Session };

const b64 = (b: Buffer) => b.toString('base64url');

/**
 * The session key in `dataDir` (created with O_EXCL on first use, so concurrent starts agree);
 * shared by every instance that shares the directory.
 */
export function loadSessionKey(dataDir: string): Buffer {
  const path = join(dataDir, SESSION_KEY_FILE);
  try {
    const fd = openSync(path, 'wx', 0o600);
    try {
      writeSync(fd, randomBytes(32).toString('hex'));
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'hex');
  if (key.length < 32)
    throw new Error(`${path} does not hold a 32-byte hex key; delete it to make a new one`);
  return key;
}

export class ConsoleSessions {
  readonly idleSeconds: number;
  readonly maxSeconds: number;
  private readonly now: () => number;
  /** Logged-out session ids → their expiry (seconds), this process only. */
  private readonly denied = new Map<string, number>();

  constructor(private readonly o: ConsoleSessionOptions) {
    if (o.key.length < 32) throw new RangeError('the session key must be at least 32 bytes');
    this.idleSeconds = o.idleSeconds ?? DEFAULT_SESSION_IDLE_SECONDS;
    this.maxSeconds = o.maxSeconds ?? DEFAULT_SESSION_MAX_SECONDS;
    this.now = o.now ?? (() => Math.floor(Date.now() / 1000));
  }

  private mac(text: string): Buffer {
    return createHmac('sha256', this.o.key).update(text).digest();
  }

  /** A new session of `admin` (after a successful login). */
  create(admin: string): Session {
    const now = this.now();
    return { id: b64(randomBytes(16)), admin, issuedAt: now, expiresAt: now + this.idleSeconds };
  }

  /** The session renewed for another idle period, capped by its absolute lifetime. */
  renew(s: Session): Session {
    return Object.assign({}, s, {
      expiresAt: Math.min(this.now() + this.idleSeconds, s.issuedAt + this.maxSeconds),
    });
  }

  /** The CSRF token of a session. */
  csrfToken(s: Session): string {
    return b64(this.mac(`csrf\0${s.id}`));
  }

  /** The cookie value carrying the session. */
  encode(s: Session): string {
    const body = `v1.${s.expiresAt}.${s.issuedAt}.${s.id}.${b64(Buffer.from(s.admin, 'utf8'))}`;
    return `${body}.${b64(this.mac(body))}`;
  }

  /** The attributes of the session cookie (`maxAge` 0: remove it). */
  cookieOptions(maxAge: number): CookieSerializeOptions {
    return { httpOnly: true, sameSite: 'strict', secure: this.o.secure, path: '/', maxAge };
  }

  /** Sets the session cookie on a reply (`@fastify/cookie` is registered on the app). */
  setCookie(reply: FastifyReply, s: Session): void {
    reply.setCookie(
      SESSION_COOKIE,
      this.encode(s),
      this.cookieOptions(Math.max(0, s.expiresAt - this.now())),
    );
  }

  /** Removes the session cookie. */
  clearCookie(reply: FastifyReply): void {
    reply.setCookie(SESSION_COOKIE, '', this.cookieOptions(0));
  }

  /** Denies the session in this process until it expires (logout). */
  revoke(s: Session): void {
    const now = this.now();
    for (const [id, exp] of this.denied) if (exp <= now) this.denied.delete(id);
    this.denied.set(s.id, s.expiresAt);
  }

  /** The valid session in a cookie value, if any. */
  decode(value: string | undefined): Session | undefined {
    if (typeof value !== 'string' || value.length > MAX_COOKIE_LENGTH) return undefined;
    const m =
      /^(v1\.(\d{1,12})\.(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{1,88}))\.([A-Za-z0-9_-]{43})$/.exec(
        value,
      );
    if (!m) return undefined;
    const given = Buffer.from(m[6]!, 'base64url');
    const want = this.mac(m[1]!);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    const s: Session = {
      expiresAt: Number(m[2]),
      issuedAt: Number(m[3]),
      id: m[4]!,
      admin: Buffer.from(m[5]!, 'base64url').toString('utf8'),
    };
    const now = this.now();
    if (s.expiresAt <= now || s.issuedAt + this.maxSeconds <= now || s.issuedAt > now + 60) return undefined;
    if (this.denied.has(s.id)) return undefined;
    return s;
  }

  /**
   * The request's session: `none`, or the session with `ok` — for a state change (any method
   * but GET/HEAD) only when `X-CSRF-Token` matches — else `csrf`.
   */
  check(req: FastifyRequest): SessionVerdict {
    const s = this.decode(req.cookies?.[SESSION_COOKIE]);
    if (!s) return { kind: 'none' };
    if (req.method === 'GET' || req.method === 'HEAD') return { kind: 'ok', session: s };
    const t = req.headers[CSRF_HEADER];
    const given = typeof t === 'string' && /^[A-Za-z0-9_-]{43}$/.test(t) ? Buffer.from(t, 'base64url') : null;
    const want = Buffer.from(this.csrfToken(s), 'base64url');
    return given && given.length === want.length && timingSafeEqual(given, want)
      ? { kind: 'ok', session: s }
      : { kind: 'csrf', session: s };
  }
}

/**
 * `inner` (the bearer tokens) with console sessions in front: a request without an
 * Authorization header authenticates as its session's admin — on a state change only with the
 * session's CSRF token. Requests with an Authorization header go to `inner` alone.
 */
export function consoleSessionAuth(sessions: ConsoleSessions, inner: AdminAuth): AdminAuth {
  return {
    get enabled() {
      return inner.enabled;
    },
    authenticate(req: FastifyRequest): string | null {
      if (req.headers.authorization !== undefined) return inner.authenticate(req);
      const v = sessions.check(req);
      return v.kind === 'ok' ? v.session.admin : null;
    },
  };
}
