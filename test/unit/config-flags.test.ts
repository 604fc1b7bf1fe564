/**
 * The `serve` flags as a configuration object (src/config/flags.ts): validated by the same
 * schema and checks as a file, mapped by the same runtime into one profile, `default`, that
 * serves every path with what the flags said.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromFlags, type ServeFlags } from '../../src/config/flags.js';
import { ConfigError, parseConfig, validateConfig } from '../../src/config/load.js';
import { serverOptions } from '../../src/config/runtime.js';

const FLAGS: ServeFlags = {
  host: '127.0.0.1',
  port: 0,
  bodyLimit: 262_144,
  logLevel: 'warn',
  logFormat: 'text',
  workers: 2,
  trustedProxies: ['10.0.0.0/8'],
  publicUrl: 'http://ca.example:8080',
  metrics: true,
  adminToken: 'admin-token-0123456789',
  adminTokens: [{ name: 'alice@ops', secret: 'alice-token-0123456789' }],
  challengeTtlSeconds: 3600,
  ra: false,
  throttle: { maxFailures: 5, maxGlobalFailures: 50, windowSeconds: 600 },
  crlValiditySeconds: 86_400,
  staticChallenge: true,
  allowSingleDes: true,
  allowWildcards: true,
  validitySeconds: 30 * 86_400,
  validation: {
    url: 'https://mdm.example/validate',
    token: 'validator-token',
    timeoutMs: 7000,
    mode: 'always',
    renewals: true,
  },
  approval: {
    mode: 'challenge-or-manual',
    pendingTtlSeconds: 2 * 3600,
    retryAfterSeconds: 30,
    maxPendingPerAddress: 7,
    maxOpenPending: 70,
  },
  renewal: {
    enabled: true,
    key: 'new',
    windowPercent: 20,
    graceSeconds: 86_400,
    sameSubject: false,
    sameSubjectAltNames: true,
    revokeOld: true,
  },
};

test('serve flags → configuration object → the same runtime as a file', () => {
  const config = validateConfig(configFromFlags(FLAGS), 'serve flags');
  const o = serverOptions(config, '/tmp/data', 'flags');
  assert.equal(o.port, 0);
  assert.equal(o.workers, 2);
  assert.equal(o.ra, false);
  assert.equal(o.logFormat, 'text');
  assert.deepEqual(o.adminTokens, FLAGS.adminTokens);
  assert.equal(o.challenges?.adminToken, 'admin-token-0123456789');
  assert.deepEqual(o.challenges?.throttle, { maxFailures: 5, maxGlobalFailures: 50, windowSeconds: 600 });
  const set = o.profiles!;
  assert.equal(set.defaultProfile, 'default');
  const p = set.profiles[0]!;
  assert.equal(p.name, 'default');
  assert.equal(p.challenge?.mode, 'static');
  assert.equal(p.enrollment?.validitySeconds, 30 * 86_400);
  assert.deepEqual(p.enrollment?.profile?.extKeyUsage, ['clientAuth'], "today's certificate profile");
  assert.equal(p.enrollment?.allowSingleDes, true);
  assert.deepEqual(p.enrollment?.csrChecks, { allowWildcards: true });
  assert.deepEqual(p.enrollment?.validation, FLAGS.validation);
  assert.deepEqual(p.lifecycle?.approval, FLAGS.approval);
  const { sameSubjectAltNames: _default, ...renewal } = FLAGS.renewal; // true is the default
  assert.deepEqual(p.lifecycle?.renewal, renewal);
  assert.equal(p.lifecycle?.crlValiditySeconds, 86_400);
  assert.equal(p.lifecycle?.publicUrl, 'http://ca.example:8080');

  // The same configuration written as a file maps to the same profile.
  const asFile = parseConfig(JSON.stringify(config), 'flags.json').config;
  assert.deepEqual(serverOptions(asFile, '/tmp/data', 'flags').profiles, set);
  assert.deepEqual(serverOptions(asFile, '/tmp/data', 'flags').adminTokens, FLAGS.adminTokens);

  // A token name the admin API would refuse is refused by the schema already.
  assert.throws(
    () =>
      validateConfig(
        configFromFlags({ ...FLAGS, adminTokens: [{ name: 'a b', secret: 'x-token-0123456789' }] }),
        'serve flags',
      ),
    (e: unknown) => e instanceof ConfigError && /server\.admin\.tokens/.test(e.message),
  );
});

test('serve flags that fail the schema are refused by the same checks as a file', () => {
  assert.throws(
    () =>
      validateConfig(
        configFromFlags({ ...FLAGS, staticChallenge: true, approval: { mode: 'manual' }, port: 70_000 }),
        'serve flags',
      ),
    (e: unknown) =>
      e instanceof ConfigError && /serve flags key server\.port: must be <= 65535/.test(e.message),
  );
});

test('the OCSP and Retry-After flags and the CA key type map onto the schema', () => {
  const config = validateConfig(
    configFromFlags({
      ...FLAGS,
      approval: { ...FLAGS.approval, retryAfterSeconds: 30, maxRetryAfterSeconds: 900 },
      ocsp: { signer: 'delegated', validitySeconds: 7200, signerValiditySeconds: 4 * 86_400 },
    }),
    'flags',
  );
  assert.equal(config.ocsp?.signer, 'delegated');
  assert.equal(config.profiles?.['default']?.approval?.maxRetryAfter, 900);
  const o = serverOptions(config, '/tmp/x', 'v');
  assert.deepEqual(o.ocspSettings, {
    signer: 'delegated',
    validitySeconds: 7200,
    signerValiditySeconds: 4 * 86_400,
  });
  assert.equal(o.profiles?.profiles[0]?.lifecycle?.approval?.maxRetryAfterSeconds, 900);
  const off = serverOptions(
    validateConfig(configFromFlags({ ...FLAGS, ocsp: false }), 'flags'),
    '/tmp/x',
    'v',
  );
  assert.equal(off.ocspSettings, false);

  const ec = parseConfig(
    'cas:\n  routers:\n    keyType: ec-p384\nprofiles:\n  r:\n    ca: routers\n',
    'ec.yaml',
  ).config;
  assert.equal(ec.cas?.['routers']?.keyType, 'ec-p384');
  assert.throws(
    () =>
      parseConfig(
        'cas:\n  routers:\n    ra: false\n    keyType: ec-p256\nprofiles:\n  r:\n    ca: routers\n',
        'bad.yaml',
      ),
    (e: unknown) =>
      e instanceof ConfigError && /cas\.routers\.keyType/.test(e.message) && /RSA RA/.test(e.message),
  );
});
