/**
 * The configuration schema, written once (TypeBox → JSON Schema, validated by ajv in
 * src/config/load.ts); the TypeScript type `ScepterConfig` is derived from it. `scepter serve`
 * flags map onto the same object (src/config/flags.ts). Every object refuses unknown keys.
 * docs/configuration.md documents every key; test/unit/config-docs.test.ts walks this schema
 * and fails when a key is undocumented or a documented key does not exist.
 *
 * Fields marked `secret: true` may be written `${ENV_NAME}` or `file:/path` (resolved at load)
 * and are masked by `scepter config print`.
 */
import { Type, type Static, type TOptional, type TSchema } from '@sinclair/typebox';

type Props<T extends Record<string, TSchema>, R extends keyof T> = {
  [K in keyof T]: K extends R ? T[K] : TOptional<T[K]>;
};

/** An object refusing unknown keys; every key optional except those in `required`. */
function obj<T extends Record<string, TSchema>, R extends keyof T = never>(
  props: T,
  description: string,
  required: readonly R[] = [],
) {
  const out: Record<string, TSchema> = {};
  for (const [k, v] of Object.entries(props)) out[k] = required.includes(k as R) ? v : Type.Optional(v);
  return Type.Object(out as Props<T, R>, { additionalProperties: false, description });
}

/** One of a fixed set of strings (a JSON Schema enum). */
const oneOf = <const T extends readonly string[]>(values: T, description: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], description });

/** A duration: `30s`, `15m`, `12h`, `90d`. */
const Dur = (description: string) => Type.String({ pattern: '^[0-9]{1,10}[smhd]$', description });
/** A secret: a literal, `${ENV_NAME}` or `file:/path`. */
const Secret = (description: string) => Type.String({ minLength: 1, secret: true, description });
const Url = (description: string) => Type.String({ pattern: '^https?://\\S+$', description });
const OidOf = (description: string) => Type.String({ pattern: '^[0-2](\\.[0-9]{1,9}){1,30}$', description });
const Oid = OidOf('an OID');
/** Profile and CA names: path-safe. */
export const NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$';
const Name = (description: string) => Type.String({ pattern: NAME_PATTERN, description });
/** A list of at most 256 non-empty strings (addresses, suffixes, patterns, prefixes). */
const Texts = (description: string) =>
  Type.Array(Type.String({ minLength: 1 }), { maxItems: 256, description });

export const SAN_TYPE_NAMES = ['dns', 'ip', 'email', 'uri', 'upn', 'dirName', 'other'] as const;
const SanType = oneOf(SAN_TYPE_NAMES, 'a subjectAltName type');
const KEY_USAGES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'encipherOnly',
  'decipherOnly',
] as const;

const Server = obj(
  {
    host: Type.String({ minLength: 1, description: 'interface to listen on' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: 'port (0: any free port)' }),
    bodyLimit: Type.Integer({
      minimum: 1024,
      maximum: 64 * 1024 * 1024,
      description: 'largest request body, bytes',
    }),
    workers: Type.Integer({ minimum: 1, maximum: 256, description: 'threads doing enrollments' }),
    logLevel: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'log level'),
    logFormat: oneOf(['json', 'text'], 'log lines: one JSON object each, or readable text'),
    tls: obj(
      {
        cert: Type.String({ minLength: 1, description: 'PEM certificate file' }),
        key: Type.String({ minLength: 1, description: 'PEM private key file' }),
      },
      'serve HTTPS',
      ['cert', 'key'],
    ),
    trustedProxies: Texts('reverse proxies (addresses or CIDRs) whose forwarding headers are believed'),
    publicUrl: Url("this server's public base URL (CRL distribution point of issued certificates)"),
    metrics: obj(
      {
        enabled: Type.Boolean({ description: 'serve /metrics' }),
        token: Secret('bearer token /metrics requires (≥ 16 characters)'),
      },
      'Prometheus metrics',
    ),
    admin: obj(
      {
        token: Secret('bearer token of the admin API and POST /admin/challenge (≥ 16 characters)'),
        challengeTtl: Dur('lifetime of challenges minted by /admin/challenge'),
        tokens: Type.Array(
          obj(
            {
              name: Type.String({
                pattern: '^[A-Za-z0-9._@-]{1,64}$',
                description: 'who the token is: the actor in the audit trail',
              }),
              token: Secret('the bearer token (≥ 16 characters)'),
            },
            'a named admin token',
            ['name', 'token'],
          ),
          { maxItems: 256, description: 'named admin bearer tokens (the token above is named admin)' },
        ),
      },
      'the admin API',
    ),
  },
  'the HTTP server (restart to change)',
);

const Throttle = obj(
  {
    maxFailures: Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      description: 'failures per address and window',
    }),
    maxGlobalFailures: Type.Integer({
      minimum: 0,
      maximum: 100_000_000,
      description: 'failures from all addresses per window',
    }),
    window: Dur('throttling window'),
  },
  'throttling of challenge failures (all profiles)',
);

const Challenge = obj(
  {
    mode: oneOf(['static', 'one-time', 'webhook', 'none'], 'how an initial enrollment is authorized'),
    secrets: Type.Array(Secret('a static challenge'), {
      minItems: 1,
      maxItems: 16,
      description: 'static challenges (default: the generated DIR/challenge)',
    }),
    oneTime: Type.Boolean({ description: 'also accept one-time challenges in mode static' }),
  },
  'the challenge',
);

const Approval = obj(
  {
    mode: oneOf(['auto', 'manual', 'challenge-or-manual'], 'approval mode'),
    pendingTtl: Dur('a pending request expires after this'),
    retryAfter: Type.Integer({
      minimum: 1,
      maximum: 86_400,
      description: 'Retry-After hint with PENDING, seconds',
    }),
    maxRetryAfter: Type.Integer({
      minimum: 1,
      maximum: 86_400,
      description: 'longest Retry-After hint while the queue waits for a decision, seconds',
    }),
  },
  'approval of initial enrollments',
);

const Keys = obj(
  {
    minRsaBits: Type.Integer({ minimum: 1024, maximum: 16384, description: 'smallest RSA key' }),
    maxRsaBits: Type.Integer({ minimum: 1024, maximum: 16384, description: 'largest RSA key' }),
  },
  'key policy',
);

const Subject = obj(
  {
    allowed: Type.Array(Type.String({ minLength: 1 }), {
      maxItems: 32,
      description: 'attribute types allowed',
    }),
    required: Type.Array(Type.String({ minLength: 1 }), {
      maxItems: 32,
      description: 'attribute types required',
    }),
    template: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'the issued subject, e.g. CN={{csr.CN}},O=Acme',
    }),
  },
  'subject rules',
);

const Sans = obj(
  {
    types: Type.Array(SanType, { description: 'allowed subjectAltName types' }),
    dnsSuffixes: Texts('allowed DNS suffixes'),
    dnsPatterns: Texts('allowed DNS patterns (* = one label)'),
    ipRanges: Texts('allowed IP ranges (CIDR)'),
    uriPrefixes: Texts('allowed URI prefixes'),
    emailDomains: Texts('allowed e-mail domains'),
    maxCount: Type.Integer({ minimum: 0, maximum: 100, description: 'most subjectAltNames' }),
    required: Type.Array(SanType, { description: 'types of which one name is required' }),
    allowWildcards: Type.Boolean({ description: 'certify wildcard dNSNames (*.example.com)' }),
  },
  'subjectAltName rules',
);

const Extensions = obj(
  {
    keyUsage: Type.Array(oneOf(KEY_USAGES, 'a keyUsage bit'), { description: 'keyUsage bits' }),
    extKeyUsage: Type.Array(Type.String({ minLength: 1 }), {
      maxItems: 32,
      description: 'extended key usages: serverAuth, clientAuth, codeSigning, emailProtection, … or OIDs',
    }),
    certificatePolicies: Type.Array(Oid, { maxItems: 32, description: 'certificate policy OIDs' }),
    crlDistributionPoints: Type.Array(Url('a CRL URL'), {
      maxItems: 8,
      description: 'CRL distribution point URLs',
    }),
    authorityInfoAccess: obj(
      {
        caIssuers: Type.Array(Url('a CA certificate URL'), { maxItems: 8, description: 'caIssuers URLs' }),
        ocsp: Type.Array(Url('an OCSP URL'), { maxItems: 8, description: 'OCSP responder URLs' }),
      },
      'authorityInfoAccess',
    ),
    custom: Type.Array(
      obj(
        {
          oid: OidOf('extension OID'),
          critical: Type.Boolean({ description: 'critical flag' }),
          value: Type.String({ pattern: '^([0-9a-fA-F]{2}){1,4096}$', description: 'extnValue DER in hex' }),
        },
        'a fixed extension',
        ['oid', 'value'],
      ),
      { maxItems: 32, description: 'fixed extensions' },
    ),
    passThrough: Type.Array(Oid, { maxItems: 32, description: 'CSR extensions copied unchanged (OIDs)' }),
  },
  'extensions of issued certificates',
);

const Renewal = obj(
  {
    enabled: Type.Boolean({ description: 'accept renewals' }),
    key: oneOf(['any', 'new'], 'new: refuse the old key'),
    window: Type.Integer({ minimum: 1, maximum: 100, description: 'renew in the last N% of the lifetime' }),
    grace: Dur('accept a signer expired up to this long ago'),
    anySubject: Type.Boolean({ description: 'allow another subject than the old certificate' }),
    anySubjectAltNames: Type.Boolean({ description: 'allow subjectAltNames the old certificate lacks' }),
    revokeOld: Type.Boolean({ description: 'revoke the old certificate once renewed' }),
  },
  'renewal policy',
);

const Limits = obj(
  {
    maxPendingPerAddress: Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      description: 'new pending requests per address and minute',
    }),
    maxOpenPending: Type.Integer({
      minimum: 0,
      maximum: 100_000_000,
      description: 'open pending requests at most',
    }),
  },
  'limits',
);

const Validation = obj(
  {
    url: Url('the validation webhook'),
    token: Secret('bearer token sent to the webhook'),
    timeout: Dur('longest wait for the webhook'),
    mode: oneOf(['challenge', 'always'], 'challenge or always'),
    renewals: Type.Boolean({ description: 'send renewals too' }),
  },
  'the validation webhook',
  ['url'],
);

export const Profile = obj(
  {
    path: Type.String({
      pattern: '^/[A-Za-z0-9._~/-]{0,200}$',
      description: 'URL path (default /scep/NAME)',
    }),
    ca: Name('the CA that issues (default: default)'),
    ra: Type.Boolean({ description: 'false: CA-only (the CA signs the SCEP replies)' }),
    challenge: Challenge,
    approval: Approval,
    validity: Dur('validity of issued certificates'),
    keys: Keys,
    subject: Subject,
    subjectAltNames: Sans,
    extensions: Extensions,
    renewal: Renewal,
    limits: Limits,
    capabilities: Type.Array(Type.String({ minLength: 1 }), {
      maxItems: 32,
      description: 'GetCACaps keywords advertised (a subset of what is implemented)',
    }),
    validation: Validation,
    allowSingleDes: Type.Boolean({ description: 'accept single-DES requests' }),
  },
  'a profile',
);

const Ca = obj(
  {
    ra: Type.Boolean({ description: 'a CA created on first start gets an RA certificate' }),
    keyType: oneOf(['rsa', 'ec-p256', 'ec-p384'], 'key type of a CA created on first start'),
  },
  'a CA',
);

export const ConfigSchema = obj(
  {
    server: Server,
    store: obj({ url: Secret('sqlite:PATH or postgres://…') }, 'the store (restart to change)'),
    caPassphrase: Secret('CA key passphrase (restart to change)'),
    cas: Type.Record(Type.String({ pattern: NAME_PATTERN }), Ca, {
      description: 'CAs by name; default lives in DIR/ca',
    }),
    throttle: Throttle,
    crl: obj({ validity: Dur('CRL nextUpdate') }, 'CRLs'),
    ocsp: obj(
      {
        enabled: Type.Boolean({ description: 'answer OCSP at /ocsp' }),
        signer: oneOf(['ca', 'delegated'], 'who signs OCSP answers'),
        validity: Dur('nextUpdate of OCSP answers'),
        signerValidity: Dur('validity of the delegated responder certificate'),
      },
      'the OCSP responder (restart to change)',
    ),
    defaultProfile: Name('the profile serving every path no profile names'),
    profiles: Type.Record(Type.String({ pattern: NAME_PATTERN }), Profile, {
      minProperties: 1,
      maxProperties: 256,
      description: 'profiles by name',
    }),
  },
  'scepter configuration',
);

export type ScepterConfig = Static<typeof ConfigSchema>;
export type ProfileConfig = Static<typeof Profile>;
