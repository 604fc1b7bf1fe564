/**
 * JSON schemas of the admin API (params, query, body, every response), attached to the routes
 * in src/server/admin-routes.ts and src/server/challenges.ts. They are the source of the
 * OpenAPI 3 description at `/admin/openapi.json` (@fastify/swagger) and the contract the
 * OpenAPI test checks every response against. Input is still checked by the routes' own code
 * (stricter than a schema, with one-line error texts): fastify's validation is switched off for
 * these routes, so a schema here documents and never changes an answer.
 */

const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const strings = { type: 'array', items: str } as const;
const time = { type: 'string', format: 'date-time' } as const;
const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;

/** `{ "error": "<one line>" }` of every 4xx. */
export const errorSchema = {
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: { error: str },
} as const;

const requestView = {
  type: 'object',
  additionalProperties: false,
  required: ['transactionId', 'state', 'subject', 'sans', 'createdAt'],
  properties: {
    transactionId: str,
    state: { type: 'string', enum: ['pending', 'approved', 'issued', 'rejected', 'failed', 'expired'] },
    ca: str,
    profile: str,
    subject: nullableStr,
    sans: strings,
    key: nullableStr,
    keyType: nullableStr,
    keyBits: { type: ['integer', 'null'] },
    challenge: { type: ['string', 'null'], enum: ['valid', 'invalid', 'absent', 'one-time', null] },
    requester: nullableStr,
    createdAt: time,
    lastPollAt: nullableTime,
    expiresAt: nullableTime,
    certSerial: nullableStr,
    failText: nullableStr,
  },
} as const;

const certificateProperties = {
  serial: str,
  ca: str,
  profile: str,
  subject: str,
  commonName: nullableStr,
  sans: strings,
  status: { type: 'string', enum: ['valid', 'revoked'] },
  notBefore: time,
  notAfter: time,
  revokedAt: nullableTime,
  revocationReason: nullableStr,
  issuer: str,
  keyHash: str,
  transactionId: nullableStr,
} as const;

const certificateView = {
  type: 'object',
  additionalProperties: false,
  required: ['serial', 'subject', 'sans', 'status', 'notBefore', 'notAfter', 'issuer'],
  properties: certificateProperties,
} as const;

function page(item: object): object {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['total', 'items'],
    properties: { total: { type: 'integer' }, items: { type: 'array', items: item }, nextCursor: str },
  };
}

const auditView = {
  type: 'object',
  additionalProperties: false,
  required: ['seq', 'at', 'actor', 'action', 'target', 'details', 'hash'],
  properties: {
    seq: { type: 'integer', minimum: 1 },
    at: time,
    actor: str,
    action: str,
    target: nullableStr,
    details: { type: ['object', 'null'] },
    hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
} as const;

const failureView = {
  type: 'object',
  additionalProperties: false,
  required: ['seq', 'at', 'transactionId', 'reason', 'failInfo', 'messageType', 'source', 'profile'],
  properties: {
    seq: { type: 'integer', minimum: 1 },
    at: time,
    transactionId: nullableStr,
    reason: nullableStr,
    failInfo: nullableStr,
    messageType: nullableStr,
    source: nullableStr,
    profile: nullableStr,
  },
} as const;

const limit = (max: number, def: number) =>
  ({ type: 'integer', minimum: 1, maximum: max, default: def }) as const;

const caStatus = {
  type: 'object',
  additionalProperties: false,
  required: ['ca', 'subject', 'fingerprint', 'current', 'notBefore', 'notAfter', 'crl'],
  properties: {
    ca: str,
    subject: str,
    fingerprint: str,
    current: { type: 'boolean' },
    notBefore: time,
    notAfter: time,
    crl: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['crlNumber', 'thisUpdate', 'nextUpdate'],
      properties: { crlNumber: str, thisUpdate: time, nextUpdate: time },
    },
  },
} as const;

/** `GET /admin/dashboard` (src/server/admin-status-routes.ts). */
const dashboardView = {
  type: 'object',
  additionalProperties: false,
  required: ['generatedAt', 'issuedPerDay', 'pending', 'issuedPerSecond', 'cas', 'rollover'],
  properties: {
    generatedAt: time,
    issuedPerDay: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['day', 'count'],
        properties: { day: { type: 'string', format: 'date' }, count: { type: 'integer' } },
      },
    },
    pending: { type: 'integer' },
    issuedPerSecond: { type: 'number', description: 'certificates issued in the last 60 s, per second' },
    cas: { type: 'array', items: caStatus },
    rollover: {
      type: 'object',
      additionalProperties: false,
      required: ['staged'],
      properties: {
        staged: { type: 'boolean' },
        next: {
          type: 'object',
          additionalProperties: false,
          required: ['subject', 'notBefore', 'notAfter'],
          properties: { subject: str, notBefore: time, notAfter: time },
        },
      },
    },
  },
} as const;

const errors = (...codes: number[]): Record<number, object> =>
  Object.fromEntries(codes.map((c) => [c, { description: 'error', ...errorSchema }]));

const transactionIdParam = {
  type: 'object',
  required: ['transactionId'],
  properties: { transactionId: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;
const serialParam = {
  type: 'object',
  required: ['serial'],
  properties: { serial: { type: 'string', description: 'hex, colons allowed' } },
} as const;
const reasonBody = (description: string) =>
  ({
    type: 'object',
    additionalProperties: false,
    properties: { reason: { type: ['string', 'integer'], description } },
  }) as const;

const security = [{ bearer: [] }];
const tags = ['admin'];

/** The route schemas by `METHOD path` (fastify's path syntax). */
export const ADMIN_SCHEMAS = {
  'GET /admin/pending': {
    summary: 'List requests (pending by default)',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        state: {
          type: 'string',
          enum: ['pending', 'approved', 'issued', 'rejected', 'failed', 'expired', 'all'],
        },
        subject: str,
        profile: str,
        ca: str,
        since: str,
        until: str,
        order: { type: 'string', enum: ['newest', 'oldest'] },
        limit: limit(500, 100),
        cursor: str,
      },
    },
    response: { 200: page(requestView), ...errors(400, 401) },
  },
  'GET /admin/pending/:transactionId': {
    summary: 'One request',
    params: transactionIdParam,
    response: { 200: requestView, ...errors(400, 401, 404) },
  },
  'POST /admin/pending/:transactionId/approve': {
    summary: 'Approve a pending request',
    params: transactionIdParam,
    body: { type: 'object', additionalProperties: false, properties: {} },
    response: { 200: requestView, ...errors(400, 401, 404, 409, 413) },
  },
  'POST /admin/pending/:transactionId/reject': {
    summary: 'Reject a pending request',
    params: transactionIdParam,
    body: reasonBody('shown to the device (failInfoText) and kept in the audit trail'),
    response: { 200: requestView, ...errors(400, 401, 404, 409, 413) },
  },
  'GET /admin/certificates': {
    summary: 'Search certificates',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        subject: str,
        cn: str,
        san: str,
        serial: str,
        status: { type: 'string', enum: ['valid', 'revoked'] },
        ca: str,
        profile: str,
        expiringDays: { type: 'integer', minimum: 0, maximum: 36_500 },
        since: str,
        until: str,
        limit: limit(500, 100),
        cursor: str,
      },
    },
    response: { 200: page(certificateView), ...errors(400, 401) },
  },
  'GET /admin/certificates/:serial': {
    summary: 'One certificate with its PEM and its chain (issuing CA first, PEM)',
    params: serialParam,
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { ca: str },
    },
    response: {
      200: {
        type: 'object',
        additionalProperties: false,
        required: [...certificateView.required, 'pem', 'chain'],
        properties: Object.assign({}, certificateProperties, { pem: str, chain: strings }),
      },
      ...errors(400, 401, 404),
    },
  },
  'GET /admin/certificates/:serial/pem': {
    summary: 'The certificate and its chain as one PEM file (application/x-pem-file, attachment)',
    params: serialParam,
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { ca: str },
    },
    produces: ['application/x-pem-file'],
    response: {
      200: {
        description: 'PEM: the certificate, then the issuing CA and the certificates above it',
        type: 'string',
      },
      ...errors(400, 401, 404),
    },
  },
  'GET /admin/dashboard': {
    summary:
      'Issued per day, pending count, issuance rate, CAs with their CRL, rollover state (the web console)',
    response: { 200: dashboardView, ...errors(401) },
  },
  'POST /admin/certificates/:serial/revoke': {
    summary: 'Revoke a certificate and publish a new CRL at once',
    params: serialParam,
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { ca: str },
    },
    body: reasonBody('a CRLReason name (keyCompromise, superseded, …) or its number'),
    response: {
      200: {
        type: 'object',
        additionalProperties: false,
        required: [...certificateView.required, 'crl'],
        properties: Object.assign({}, certificateProperties, {
          crl: {
            type: 'object',
            additionalProperties: false,
            required: ['crlNumber', 'thisUpdate', 'nextUpdate'],
            properties: { crlNumber: str, thisUpdate: time, nextUpdate: time },
          },
        }),
      },
      ...errors(400, 401, 404, 409, 413),
    },
  },
  'GET /admin/audit': {
    summary: 'The audit trail, newest first',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        action: { type: 'string', description: 'an action or a prefix ending in a dot (enroll.)' },
        since: str,
        before: { type: 'integer', minimum: 1, description: 'the previous page’s nextBefore' },
        limit: limit(500, 100),
      },
    },
    response: {
      200: {
        type: 'object',
        additionalProperties: false,
        required: ['items'],
        properties: { items: { type: 'array', items: auditView }, nextBefore: { type: 'integer' } },
      },
      ...errors(400, 401),
    },
  },
  'GET /admin/failures': {
    summary: 'Recent enrollment refusals (reason, failInfo, transactionID, source)',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { limit: limit(500, 100) },
    },
    response: {
      200: {
        type: 'object',
        additionalProperties: false,
        required: ['items'],
        properties: { items: { type: 'array', items: failureView } },
      },
      ...errors(400, 401),
    },
  },
  'POST /admin/challenge': {
    summary: 'Mint a one-time challenge (text/plain, or JSON with format=json)',
    querystring: {
      type: 'object',
      properties: {
        ttl: { type: 'integer', description: 'lifetime in seconds' },
        format: { type: 'string', enum: ['json'] },
      },
    },
    response: {
      200: {
        description: 'the challenge (with format=json or Accept: application/json)',
        type: 'object',
        additionalProperties: false,
        required: ['challenge', 'expiresAt'],
        properties: { challenge: str, expiresAt: time },
      },
    },
  },
} as const;

export type AdminRouteKey = keyof typeof ADMIN_SCHEMAS;

/** The fastify route options for `key`: its schema (tagged, bearer security). */
export function adminSchema(key: AdminRouteKey): { schema: Record<string, unknown> } {
  return { schema: { tags, security, ...ADMIN_SCHEMAS[key] } };
}

/** @fastify/swagger options: only the tagged admin routes, OpenAPI 3.1 (JSON Schema types). */
export const OPENAPI_OPTIONS = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'scepter admin API',
      description:
        'The operator API of a scepter SCEP server (docs/server.md "Admin API"). Every path needs `Authorization: Bearer <token>` (a named admin token).',
      version: '1',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  },
  hideUntagged: true,
} as const;
