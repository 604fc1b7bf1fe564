/**
 * The console's one way to the server: same-origin fetches of the `/admin/*` API and the
 * session endpoints. State changes carry the session's CSRF token (X-CSRF-Token).
 *
 * The answer types the server builds in src/ra are imported from there (type-only: the bundle
 * takes no code from src/); the rest are the admin API's own shapes (src/server/admin-schemas.ts).
 */
import type { FailureView } from '../src/ra/audit.js';
import type { CertificateView, ListPage, RequestView } from '../src/ra/operator.js';

/** An error answer of the server, with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken = '';
let onLoggedOut: () => void = () => undefined;

export function setCsrfToken(t: string): void {
  csrfToken = t;
}

/** Called when the server answers 401 (the session expired or was ended). */
export function whenLoggedOut(f: () => void): void {
  onLoggedOut = f;
}

export async function api<T>(
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
  if (method !== 'GET') {
    headers['x-csrf-token'] = csrfToken;
    headers['content-type'] = 'application/json';
  }
  const r = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let data: unknown = undefined;
  try {
    data = text === '' ? undefined : JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (!r.ok) {
    if (r.status === 401 && !path.startsWith('/ui/api/login')) onLoggedOut();
    const msg =
      data && typeof data === 'object' && typeof (data as { error?: unknown }).error === 'string'
        ? (data as { error: string }).error
        : `HTTP ${r.status}`;
    throw new ApiError(r.status, msg);
  }
  return data as T;
}

/** A query string of the non-empty values. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export interface SessionInfo {
  csrfToken: string;
  expiresAt: string;
  /** The admin's name (of the token used to log in). */
  admin: string;
}

/** Logs in with an admin token, sent like every admin API client sends it (bearer). */
export function login(token: string): Promise<SessionInfo> {
  return api<SessionInfo>('POST', '/ui/api/login', undefined, { authorization: `Bearer ${token}` });
}

export type { CertificateView, FailureView, ListPage, RequestView };

export interface CertificateDetail extends CertificateView {
  pem: string;
  chain: string[];
}

export interface CaStatus {
  /** The CA's name (`default`, or a named CA of DIR/cas/NAME/). */
  ca: string;
  subject: string;
  fingerprint: string;
  current: boolean;
  notBefore: string;
  notAfter: string;
  crl: { crlNumber: string; thisUpdate: string; nextUpdate: string } | null;
}

export interface Dashboard {
  generatedAt: string;
  issuedPerDay: Array<{ day: string; count: number }>;
  pending: number;
  issuedPerSecond: number;
  cas: CaStatus[];
  rollover: { staged: boolean; next?: { subject: string; notBefore: string; notAfter: string } };
}

export interface FailureList {
  items: FailureView[];
}
