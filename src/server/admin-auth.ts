/**
 * Who is calling the admin API (docs/server.md "Admin tokens"). Several named bearer tokens
 * (`--admin-tokens FILE`, one `name secret` per line; the older single `--admin-token-file`
 * is the token named `admin`). The ONE seam every `/admin/*` route goes through is
 * `AdminAuth.authenticate(req)`: the admin's name, or null. `adminGuard` turns it into the
 * onRequest hook (404 while no credential is configured, 401 without a valid one) and puts the
 * name on `req.admin`, where handlers and the audit trail (actor) read it. Another credential
 * (a console session cookie) plugs in by composing another `AdminAuth` in front of this one.
 *
 * Tokens are compared in constant time (`SecretMatcher`: every token is compared whatever
 * matches). Secrets are never logged; names are checked to a safe character set, so a name
 * may go into a log line or the audit trail as it is.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SecretMatcher } from '../crypto/secret-match.js';

/** A named admin credential. */
export interface AdminToken {
  /** Shown in logs and the audit trail: 1 to 64 of `A-Z a-z 0-9 . _ @ -`. */
  name: string;
  /** The bearer token: at least MIN_ADMIN_TOKEN_LENGTH printable characters without spaces. */
  secret: string;
}

/** Shortest admin token accepted. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;
/** Most tokens one file may hold. */
export const MAX_ADMIN_TOKENS = 256;
/** The name the single `--admin-token-file` / SCEPTER_ADMIN_TOKEN token gets. */
export const DEFAULT_ADMIN_NAME = 'admin';

const NAME = /^[A-Za-z0-9._@-]{1,64}$/;
const SECRET = /^[\x21-\x7e]+$/;

/** A bad tokens file or token list; the message never contains a secret. */
export class AdminTokenError extends Error {
  override name = 'AdminTokenError';
}

/** Checks names and secrets (length, characters, unique names and secrets); returns a copy. */
export function checkAdminTokens(tokens: readonly AdminToken[]): AdminToken[] {
  if (tokens.length > MAX_ADMIN_TOKENS)
    throw new AdminTokenError(`more than ${MAX_ADMIN_TOKENS} admin tokens`);
  const names = new Set<string>();
  const secrets = new Set<string>();
  for (const t of tokens) {
    if (!NAME.test(t.name))
      throw new AdminTokenError(
        `admin token name ${JSON.stringify(t.name.slice(0, 64))}: 1 to 64 letters, digits, '.', '_', '@' or '-'`,
      );
    if (!SECRET.test(t.secret) || t.secret.length < MIN_ADMIN_TOKEN_LENGTH)
      throw new AdminTokenError(
        `the admin token named ${t.name} must be at least ${MIN_ADMIN_TOKEN_LENGTH} printable characters without spaces`,
      );
    if (names.has(t.name)) throw new AdminTokenError(`admin token name ${t.name} is given twice`);
    if (secrets.has(t.secret))
      throw new AdminTokenError(`the admin token named ${t.name} repeats another token`);
    names.add(t.name);
    secrets.add(t.secret);
  }
  return tokens.map((t) => ({ name: t.name, secret: t.secret }));
}

/**
 * Parses a tokens file: one `name secret` per line (separated by spaces or tabs); blank lines
 * and lines starting with `#` are ignored. Errors name the line number, never its content.
 */
export function parseAdminTokens(text: string): AdminToken[] {
  const out: AdminToken[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const parts = line.split(/[ \t]+/);
    if (parts.length !== 2) throw new AdminTokenError(`line ${i + 1}: expected "name secret"`);
    out.push({ name: parts[0]!, secret: parts[1]! });
  });
  return checkAdminTokens(out);
}

/** The authentication seam of the admin API. */
export interface AdminAuth {
  /** False when no admin credential is configured: every `/admin/*` path answers 404. */
  readonly enabled: boolean;
  /** The name of the admin `req` authenticates as, or null. */
  authenticate(req: FastifyRequest): string | null;
}

/** `Authorization: Bearer <token>` against named tokens (none: disabled). */
export function bearerTokenAuth(tokens: readonly AdminToken[]): AdminAuth {
  const list = checkAdminTokens(tokens);
  const matcher = new SecretMatcher(list.map((t) => t.secret));
  return {
    enabled: list.length > 0,
    authenticate(req) {
      if (list.length === 0) return null;
      const auth = req.headers.authorization;
      const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
      if (!m) return null;
      const i = matcher.indexOf(m[1]!);
      return i >= 0 ? list[i]!.name : null;
    },
  };
}

/** The `WWW-Authenticate` value of an admin 401. */
export const ADMIN_AUTH_CHALLENGE = 'Bearer realm="scepter admin"';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated admin's name (set by `adminGuard`), else null. */
    admin: string | null;
  }
}

/**
 * The onRequest hook of admin routes: runs before the body is read. `denied` answers the
 * request in the route's own format (404 while disabled, 401 for a missing or wrong credential).
 */
export function adminGuard(
  auth: AdminAuth,
  denied: (req: FastifyRequest, reply: FastifyReply, why: 'disabled' | 'unauthorized') => FastifyReply,
): (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  return async (req, reply) => {
    if (!auth.enabled) return denied(req, reply, 'disabled');
    const name = auth.authenticate(req);
    if (name === null) {
      reply.header('www-authenticate', ADMIN_AUTH_CHALLENGE);
      return denied(req, reply, 'unauthorized');
    }
    req.admin = name;
    return undefined;
  };
}
