/**
 * The operator HTTP API under `/admin/` (docs/server.md "Admin API") as a fastify plugin:
 * the pending queue (list, show, approve, reject), certificate search and lookup,
 * revocation with an immediate CRL, the audit trail and recent enrollment failures. Every action goes through src/ra/operator.ts, the same
 * code the CLI runs, against the HTTP thread's store (the main store also with `--workers N`).
 *
 * Authentication is the one admin seam (src/server/admin-auth.ts: named bearer tokens compared
 * in constant time; the admin's name lands on `req.admin`): without a configured credential
 * every `/admin/*` path answers 404 like an unknown path; a missing or wrong token gets 401. Errors
 * are JSON `{ "error": "<one line>" }` (400 bad input, 401, 404 unknown, 409 wrong state, 413
 * body too large). Each request is one log line (app.ts) with the action, the transactionID or
 * serial and the outcome — never the token or a request body.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { toPem } from '../pkix/certificate.js';
import { escapeText } from '../pkix/text.js';
import {
  AuditQueryError,
  DEFAULT_AUDIT_PAGE,
  listAuditRecords,
  MAX_AUDIT_PAGE,
  recentFailures,
  type AuditFilters,
} from '../ra/audit.js';
import {
  certificateView,
  decideRequest,
  DEFAULT_PAGE_LIMIT,
  MAX_PAGE_LIMIT,
  getCertificate,
  getRequest,
  listRequests,
  OperatorError,
  parseReason,
  parseSerial,
  parseTime,
  parseTransactionState,
  requestView,
  revokeCertificate,
  searchCertificates,
  type CertificateFilters,
  type CrlPublishers,
  type Paging,
  type RequestFilters,
} from '../ra/operator.js';
import type { Store, TransactionState } from '../store/index.js';
import '@fastify/swagger';
import { adminGuard, type AdminAuth } from './admin-auth.js';
import { adminSchema } from './admin-schemas.js';
import { HttpError, toHttpError } from './http-errors.js';
import type { ScepRequestLog } from './scep-routes.js';

export interface AdminRoutesOptions {
  /** Who may call (src/server/admin-auth.ts); disabled: every `/admin/*` path answers 404. */
  auth: AdminAuth;
  /** The main store (never a worker's proxy). */
  store: Store;
  /**
   * The server's CRL publisher, or one per CA name (several CAs): a revocation signs a new CRL
   * of the certificate's CA at once.
   */
  crls: CrlPublishers;
}

/** Largest admin request body (a JSON object with a reason). */
export const ADMIN_BODY_LIMIT = 16 * 1024;
const MAX_QUERY_VALUE_LENGTH = 256;
/** SCEP transactionIDs are printable strings (renewals: `renewal:<serial>:<id>`). */
const TRANSACTION_ID = /^[\x21-\x7e]{1,256}$/;

const JSON_TYPE = 'application/json; charset=utf-8';

function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('content-type', JSON_TYPE).send(JSON.stringify(body));
}

/** One line, bounded, escaped: error texts may quote client input. */
function oneLine(s: string): string {
  return escapeText(s).slice(0, 300);
}

const STATUS_OF: Readonly<Record<OperatorError['kind'], number>> = {
  invalid: 400,
  'not-found': 404,
  conflict: 409,
};

type Query = Record<string, string | string[] | undefined>;

/** The query parameters, each at most once, only `allowed` ones, bounded lengths. */
function queryOf(req: FastifyRequest, allowed: readonly string[]): Record<string, string> {
  const q = (req.query ?? {}) as Query;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) {
    if (!allowed.includes(k)) throw new HttpError(400, `unknown parameter ${JSON.stringify(k.slice(0, 40))}`);
    if (v === undefined) continue;
    if (Array.isArray(v)) throw new HttpError(400, `parameter ${k} given more than once`);
    if (v.length > MAX_QUERY_VALUE_LENGTH)
      throw new HttpError(400, `parameter ${k} longer than ${MAX_QUERY_VALUE_LENGTH} characters`);
    out[k] = v;
  }
  return out;
}

function intParam(q: Record<string, string>, name: string, def: number, min: number, max: number): number {
  const v = q[name];
  if (v === undefined || v === '') return def;
  const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max))
    throw new HttpError(400, `${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/**
 * `limit` (1 to MAX_PAGE_LIMIT, default DEFAULT_PAGE_LIMIT; larger is a 400, never silently
 * clamped) and `cursor` (the previous page's `nextCursor`).
 */
function paging(q: Record<string, string>): Paging {
  return {
    limit: intParam(q, 'limit', DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT),
    ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
  };
}

/** The JSON object body (empty body: `{}`), with only `allowed` keys. */
function bodyOf(req: FastifyRequest, allowed: readonly string[]): Record<string, unknown> {
  const raw = req.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8').trim() : '';
  if (text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body must be a JSON object');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new HttpError(400, 'the body must be a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) throw new HttpError(400, `unknown field ${JSON.stringify(k.slice(0, 40))}`);
  return o;
}

/** The optional string field `reason` (a number is accepted for revocation reasons). */
function reasonOf(body: Record<string, unknown>, numbers: boolean): string | undefined {
  const r = body.reason;
  if (r === undefined || r === null) return undefined;
  if (typeof r === 'string') return r;
  if (numbers && typeof r === 'number' && Number.isInteger(r)) return String(r);
  throw new HttpError(400, numbers ? 'reason must be a reason name or number' : 'reason must be a string');
}

function transactionIdOf(req: FastifyRequest): string {
  const id = (req.params as { transactionId?: string }).transactionId ?? '';
  if (!TRANSACTION_ID.test(id))
    throw new HttpError(400, 'the transactionID must be 1 to 256 printable ASCII characters');
  return id;
}

/** The authenticated admin's name (the audit trail's actor). */
function adminOf(req: FastifyRequest): string {
  if (req.admin === null) throw new Error('admin route reached without an authenticated admin');
  return req.admin;
}

function serialOf(req: FastifyRequest): string {
  return parseSerial((req.params as { serial?: string }).serial ?? '');
}

/** How the JSON admin routes refuse: 404 while disabled (like any unknown path), else a JSON 401. */
export function adminJsonDenied(
  req: FastifyRequest,
  reply: FastifyReply,
  why: 'disabled' | 'unauthorized',
): FastifyReply {
  if (why === 'disabled') {
    req.scepLog = { outcome: 'rejected', detail: 'no such route' };
    return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('not found\n');
  }
  req.scepLog = { operation: 'admin', outcome: 'rejected', detail: 'missing or wrong credential' };
  return send(reply, 401, { error: 'unauthorized' });
}

/** Runs an audit listing; a bad filter is a 400. */
async function auditQuery<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof AuditQueryError) throw new HttpError(400, e.message);
    throw e;
  }
}

/** Registers the `/admin/*` operator routes (the challenge endpoint is src/server/challenges.ts). */
export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, o) => {
  const { store, crls } = o;
  /** PEM of the issuing CA (current or retired) of a certificate of CA `caName`, when it is one of ours. */
  const chainOf = (caName: string, issuer: string): string[] => {
    const ca = (typeof crls === 'function' ? crls(caName) : crls)?.cas.byFingerprint(issuer);
    return ca ? [toPem(ca.cert.der), ...ca.chain.map((d) => toPem(d))] : [];
  };

  // The route schemas document (OpenAPI); input is checked by this file's own code, answers
  // are sent as ready JSON text.
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  // Bodies are small JSON objects; the root hook labels every POST body octet-stream.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ADMIN_BODY_LIMIT }, (_r, body, done) =>
    done(null, body),
  );

  // Before the body is read: 404 when the API is off, 401 without the right token.
  app.addHook('onRequest', adminGuard(o.auth, adminJsonDenied));

  app.setErrorHandler(async (err, req, reply) => {
    let status: number;
    let message: string;
    if (err instanceof OperatorError) {
      status = STATUS_OF[err.kind];
      message = err.message;
    } else {
      const he = toHttpError(err, { bodyLimit: ADMIN_BODY_LIMIT });
      if (he.status >= 500) req.log.error({ err }, 'internal error while serving an admin request');
      status = he.status;
      message = he.message;
    }
    message = oneLine(message);
    req.scepLog = Object.assign({}, req.scepLog, { outcome: 'rejected', detail: message });
    return send(reply, status, { error: message });
  });

  /** Sets the request's log line: action plus transactionID/serial; outcome filled in later. */
  const log = (req: FastifyRequest, action: string, ids: Partial<ScepRequestLog> = {}) => {
    req.scepLog = {
      operation: `admin.${action}`,
      outcome: 'rejected',
      ...(req.admin ? { admin: req.admin } : {}),
      ...ids,
    };
  };
  const ok = (req: FastifyRequest, detail: string) => {
    req.scepLog = Object.assign({}, req.scepLog, { outcome: 'SUCCESS', detail });
  };

  app.get('/admin/pending', adminSchema('GET /admin/pending'), async (req, reply) => {
    log(req, 'pending.list');
    const q = queryOf(req, [
      'state',
      'subject',
      'profile',
      'ca',
      'since',
      'until',
      'order',
      'limit',
      'cursor',
    ]);
    const all = q.state === 'all';
    const state: TransactionState | undefined =
      q.state === undefined || all ? undefined : parseTransactionState(q.state);
    if (q.order !== undefined && q.order !== 'newest' && q.order !== 'oldest')
      throw new HttpError(400, 'order must be newest or oldest');
    const f: RequestFilters = { all, ...(state ? { state } : {}), ...paging(q) };
    for (const k of ['subject', 'profile', 'ca', 'since', 'until'] as const)
      if (q[k] !== undefined) f[k] = q[k];
    if (q.order !== undefined) f.order = q.order;
    const page = await listRequests(store, f);
    ok(req, `${page.items.length} of ${page.total}`);
    return send(reply, 200, page);
  });

  app.get(
    '/admin/pending/:transactionId',
    adminSchema('GET /admin/pending/:transactionId'),
    async (req, reply) => {
      log(req, 'pending.show');
      queryOf(req, []);
      const id = transactionIdOf(req);
      req.scepLog = Object.assign({}, req.scepLog, { transactionId: id });
      const v = requestView(await getRequest(store, id));
      ok(req, v.state);
      return send(reply, 200, v);
    },
  );

  for (const decision of ['approve', 'reject'] as const) {
    app.post(
      `/admin/pending/:transactionId/${decision}`,
      adminSchema(`POST /admin/pending/:transactionId/${decision}`),
      async (req, reply) => {
        log(req, `pending.${decision}`);
        queryOf(req, []);
        const id = transactionIdOf(req);
        req.scepLog = Object.assign({}, req.scepLog, { transactionId: id });
        const reason = reasonOf(bodyOf(req, ['reason']), false);
        const v = await decideRequest({ store, actor: adminOf(req) }, id, decision, reason);
        ok(req, v.state);
        return send(reply, 200, v);
      },
    );
  }

  app.get('/admin/certificates', adminSchema('GET /admin/certificates'), async (req, reply) => {
    log(req, 'certificates.search');
    const q = queryOf(req, [
      'subject',
      'cn',
      'san',
      'serial',
      'status',
      'profile',
      'ca',
      'expiringDays',
      'since',
      'until',
      'limit',
      'cursor',
    ]);
    const f: CertificateFilters = paging(q);
    for (const k of ['subject', 'cn', 'san', 'serial', 'status', 'profile', 'ca', 'since', 'until'] as const)
      if (q[k] !== undefined) f[k] = q[k];
    if (q.expiringDays !== undefined) f.expiringDays = intParam(q, 'expiringDays', 0, 0, 36_500);
    const page = await searchCertificates(store, f);
    ok(req, `${page.items.length} of ${page.total}`);
    return send(reply, 200, page);
  });

  app.get(
    '/admin/certificates/:serial',
    adminSchema('GET /admin/certificates/:serial'),
    async (req, reply) => {
      log(req, 'certificates.show');
      const { ca } = queryOf(req, ['ca']);
      const serial = serialOf(req);
      req.scepLog = Object.assign({}, req.scepLog, { serial });
      const c = await getCertificate(store, serial, ca);
      ok(req, c.status);
      return send(
        reply,
        200,
        Object.assign({}, certificateView(c), { pem: toPem(c.der), chain: chainOf(c.ca, c.issuer) }),
      );
    },
  );

  // The certificate and its chain as one PEM file (the console's download link).
  app.get(
    '/admin/certificates/:serial/pem',
    adminSchema('GET /admin/certificates/:serial/pem'),
    async (req, reply) => {
      log(req, 'certificates.pem');
      const { ca } = queryOf(req, ['ca']);
      const serial = serialOf(req);
      req.scepLog = Object.assign({}, req.scepLog, { serial });
      const c = await getCertificate(store, serial, ca);
      ok(req, c.status);
      return reply
        .code(200)
        .header('content-type', 'application/x-pem-file')
        .header('content-disposition', `attachment; filename="${c.serial}.pem"`)
        .send([toPem(c.der), ...chainOf(c.ca, c.issuer)].join(''));
    },
  );

  app.post(
    '/admin/certificates/:serial/revoke',
    adminSchema('POST /admin/certificates/:serial/revoke'),
    async (req, reply) => {
      log(req, 'certificates.revoke');
      const { ca } = queryOf(req, ['ca']);
      const serial = serialOf(req);
      req.scepLog = Object.assign({}, req.scepLog, { serial });
      const reason = parseReason(reasonOf(bodyOf(req, ['reason']), true));
      const r = await revokeCertificate({ store, crls, actor: adminOf(req) }, serial, reason, new Date(), ca);
      if (!r.changed) throw new OperatorError('conflict', `${serial} is already revoked`);
      ok(req, `revoked (${certificateView(r.cert).revocationReason ?? 'unspecified'})`);
      return send(
        reply,
        200,
        Object.assign({}, certificateView(r.cert), {
          crl: {
            crlNumber: r.crl.crlNumber.toString(),
            thisUpdate: r.crl.thisUpdate.toISOString(),
            nextUpdate: r.crl.nextUpdate.toISOString(),
          },
        }),
      );
    },
  );

  app.get('/admin/audit', adminSchema('GET /admin/audit'), async (req, reply) => {
    log(req, 'audit.list');
    const q = queryOf(req, ['action', 'since', 'before', 'limit']);
    const f: AuditFilters = { limit: intParam(q, 'limit', DEFAULT_AUDIT_PAGE, 1, MAX_AUDIT_PAGE) };
    if (q.action !== undefined) f.action = q.action;
    if (q.since !== undefined) f.since = parseTime('since', q.since);
    if (q.before !== undefined) f.before = intParam(q, 'before', 1, 1, 999_999_999);
    const page = await auditQuery(() => listAuditRecords(store, f));
    ok(req, `${page.items.length} records`);
    return send(reply, 200, page);
  });

  app.get('/admin/failures', adminSchema('GET /admin/failures'), async (req, reply) => {
    log(req, 'failures.list');
    const q = queryOf(req, ['limit']);
    const items = await recentFailures(store, intParam(q, 'limit', DEFAULT_AUDIT_PAGE, 1, MAX_AUDIT_PAGE));
    ok(req, `${items.length} failures`);
    return send(reply, 200, { items });
  });

  // The OpenAPI description of these routes (src/server/admin-schemas.ts), behind the same
  // authentication: without an admin credential there is no admin API to describe.
  app.get('/admin/openapi.json', async (req, reply) => {
    log(req, 'openapi');
    queryOf(req, []);
    ok(req, 'openapi');
    return send(reply, 200, app.swagger());
  });

  // Anything else under /admin/ (after authentication): a JSON 404, never the SCEP route.
  app.all('/admin/*', async (req, reply) => {
    log(req, 'unknown');
    return send(reply, 404, { error: 'no such admin endpoint' });
  });
};
