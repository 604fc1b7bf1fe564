/**
 * The RA's policy functions and configuration, in isolation: challenge verification, key and
 * CSR policies, policy chaining and config defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { ChallengeVerifier, MAX_CHALLENGE_LENGTH } from '../../src/ra/challenge.js';
import {
  csrPolicy,
  keyPolicy,
  proofOfPossession,
  runPolicies,
  signerKeyIsCsrKey,
  type EnrollmentRequest,
  type Policy,
} from '../../src/ra/policy.js';
import { resolveEnrollmentConfig } from '../../src/ra/config.js';
import { effectiveBackdateSeconds } from '../../src/ra/issuance.js';
import { quotedName } from '../../src/ra/names.js';
import { DEFAULT_CLIENT_PROFILE } from '../../src/ca/profile.js';
import { buildCsr, parseCsr } from '../../src/pkix/csr.js';
import { FailInfo } from '../../src/scep/types.js';
import type { PkiRequest } from '../../src/scep/request.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';

function enrollment(o: { csr: Buffer; signerKey?: ReturnType<typeof pooledRsaKey> }): EnrollmentRequest {
  const key = o.signerKey ?? pooledRsaKey(0);
  const signer = makeSelfSigned({ subject: 'CN=signer', key, days: 1 });
  const request = { signerCert: signer.cert, transactionId: 't', messageType: 19 } as unknown as PkiRequest;
  return { request, csr: parseCsr(o.csr), cipher: 'aes128', signerKeyHash: 'x', ctx: {} };
}

function rsaCsr(
  o: { challenge?: string; subject?: string; bits?: number; key?: ReturnType<typeof pooledRsaKey> } = {},
) {
  const key = o.key ?? pooledRsaKey(0, o.bits ?? 2048);
  return buildCsr({
    subject: o.subject ?? 'CN=dev',
    key,
    publicKey: createPublicKey(key),
    ...(o.challenge !== undefined ? { challengePassword: o.challenge } : {}),
  });
}

test('ChallengeVerifier accepts exactly the configured secrets', () => {
  const v = new ChallengeVerifier(['alpha-secret', 'beta-secret', '']);
  assert.equal(v.count, 2, 'empty secrets are ignored');
  assert.equal(v.verify('alpha-secret'), true);
  assert.equal(v.verify('beta-secret'), true);
  assert.equal(v.verify('alpha-secreT'), false, 'case-exact');
  assert.equal(v.verify('alpha-secret '), false);
  assert.equal(v.verify('alpha'), false, 'a prefix is not enough');
  assert.equal(v.verify(''), false);
  assert.equal(v.verify(undefined), false);
  assert.equal(v.verify('x'.repeat(MAX_CHALLENGE_LENGTH + 1)), false);
  assert.equal(new ChallengeVerifier([]).verify('anything'), false, 'no secrets: nothing passes');
  const unicode = new ChallengeVerifier(['pässwörd-✓']);
  assert.equal(unicode.verify('pässwörd-✓'), true);
  assert.equal(unicode.verify('passwort-✓'), false);
});

test('ChallengeVerifier keeps no copy of the secrets', () => {
  const v = new ChallengeVerifier(['do-not-keep-me']);
  assert.ok(!JSON.stringify(v).includes('do-not-keep-me'));
  assert.ok(!JSON.stringify(Object.values(v)).includes('do-not-keep-me'));
});

test('keyPolicy: RSA bounds, EC and other key types', async () => {
  const p = keyPolicy();
  assert.equal(await p(enrollment({ csr: rsaCsr({ bits: 2048 }) })), undefined);
  const small = await p(enrollment({ csr: rsaCsr({ bits: 1024 }) }));
  assert.equal(small?.failInfo, FailInfo.badRequest);
  assert.match(small.text, /1024 bits is too small \(minimum 2048\)/);
  const strict = await keyPolicy({ minRsaBits: 3072 })(enrollment({ csr: rsaCsr({ bits: 2048 }) }));
  assert.equal(strict?.failInfo, FailInfo.badRequest);
  const big = await keyPolicy({ maxRsaBits: 2048 })(enrollment({ csr: rsaCsr({ bits: 3072 }) }));
  assert.match(big?.text ?? '', /too large/);

  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecCsr = buildCsr({
    subject: 'CN=ec',
    key: ec.privateKey,
    publicKey: ec.publicKey,
    challengePassword: 'x',
  });
  assert.equal(await p(enrollment({ csr: ecCsr })), undefined, 'P-256 is accepted');
  for (const namedCurve of ['P-521', 'secp256k1']) {
    const k = generateKeyPairSync('ec', { namedCurve });
    const csr = buildCsr({ subject: 'CN=ec', key: k.privateKey, publicKey: k.publicKey });
    const r = await p(enrollment({ csr }));
    assert.equal(r?.failInfo, FailInfo.badAlg, namedCurve);
    assert.match(r.text, /only EC keys on P-256 or P-384 are accepted/);
  }

  const ed = generateKeyPairSync('ed25519');
  const edCsr = buildCsr({ subject: 'CN=ed', key: ed.privateKey, publicKey: ed.publicKey });
  assert.equal((await p(enrollment({ csr: edCsr })))?.failInfo, FailInfo.badAlg);
});

test('proofOfPossession: a tampered CSR signature → badMessageCheck', async () => {
  const good = rsaCsr({ challenge: 'c' });
  assert.equal(await proofOfPossession(enrollment({ csr: good })), undefined);
  const bad = Buffer.from(good);
  bad[bad.length - 5]! ^= 0x01; // inside the signature BIT STRING
  const r = await proofOfPossession(enrollment({ csr: bad }));
  assert.equal(r?.failInfo, FailInfo.badMessageCheck);
});

test('signerKeyIsCsrKey: the message must be signed by the key being certified', async () => {
  const csr = rsaCsr({ key: pooledRsaKey(0) });
  assert.equal(await signerKeyIsCsrKey(enrollment({ csr, signerKey: pooledRsaKey(0) })), undefined);
  const r = await signerKeyIsCsrKey(enrollment({ csr, signerKey: pooledRsaKey(1) }));
  assert.equal(r?.failInfo, FailInfo.badRequest);
});

test('csrPolicy: empty subject without SANs, too many SANs', async () => {
  const p = csrPolicy({ maxSubjectAltNames: 2 });
  assert.equal(await p(enrollment({ csr: rsaCsr() })), undefined);
  const key = pooledRsaKey(0);
  const empty = buildCsr({ subject: Buffer.from([0x30, 0x00]), key, publicKey: createPublicKey(key) });
  assert.equal((await p(enrollment({ csr: empty })))?.failInfo, FailInfo.badRequest);
  const emptyWithSan = buildCsr({
    subject: Buffer.from([0x30, 0x00]),
    key,
    publicKey: createPublicKey(key),
    subjectAltNames: [{ type: 'dns', value: 'a.example' }],
  });
  assert.equal(await p(enrollment({ csr: emptyWithSan })), undefined);
  const many = buildCsr({
    subject: 'CN=x',
    key,
    publicKey: createPublicKey(key),
    subjectAltNames: ['a', 'b', 'c'].map((v) => ({ type: 'dns' as const, value: `${v}.example` })),
  });
  assert.match((await p(enrollment({ csr: many })))?.text ?? '', /more than 2 subjectAltNames/);
});

test('runPolicies: first rejection wins, later policies are not run', async () => {
  const calls: string[] = [];
  const pass: Policy = () => {
    calls.push('pass');
    return undefined;
  };
  const no: Policy = async () => {
    calls.push('no');
    return { failInfo: FailInfo.badTime, text: 'no' };
  };
  const never: Policy = () => {
    calls.push('never');
    return undefined;
  };
  const r = await runPolicies([pass, no, never], enrollment({ csr: rsaCsr() }));
  assert.deepEqual(r, { failInfo: FailInfo.badTime, text: 'no' });
  assert.deepEqual(calls, ['pass', 'no']);
  assert.equal(await runPolicies([pass], enrollment({ csr: rsaCsr() })), undefined);
});

test('resolveEnrollmentConfig: defaults, validity override, bad values', () => {
  const c = resolveEnrollmentConfig({ challenges: ['a'] });
  assert.equal(c.allowSingleDes, false);
  assert.equal(c.minRsaBits, 2048);
  assert.equal(c.profile.validitySeconds, DEFAULT_CLIENT_PROFILE.validitySeconds);
  assert.deepEqual(c.profile.keyUsage, DEFAULT_CLIENT_PROFILE.keyUsage);
  const v = resolveEnrollmentConfig({ challenges: [], validitySeconds: 30 * 86_400, allowSingleDes: true });
  assert.equal(v.profile.validitySeconds, 30 * 86_400);
  assert.equal(v.allowSingleDes, true);
  assert.equal(
    DEFAULT_CLIENT_PROFILE.validitySeconds,
    365 * 86_400,
    'the shared default profile is not mutated',
  );
  assert.throws(() => resolveEnrollmentConfig({ challenges: [], minRsaBits: 512 }), RangeError);
  assert.equal(resolveEnrollmentConfig({ challenges: [], validitySeconds: 10 }).profile.validitySeconds, 10);
  for (const bad of [9, 0, 1.5, 36_500 * 86_400 + 1])
    assert.throws(() => resolveEnrollmentConfig({ challenges: [], validitySeconds: bad }), RangeError);
  assert.throws(
    () => resolveEnrollmentConfig({ challenges: [], minRsaBits: 4096, maxRsaBits: 2048 }),
    RangeError,
  );
});

test('effectiveBackdateSeconds: the configured backdating, at most 10% of the validity', () => {
  assert.equal(effectiveBackdateSeconds(300, 365 * 86_400), 300);
  assert.equal(effectiveBackdateSeconds(300, 3000), 300, 'from 50 minutes on the default applies unchanged');
  assert.equal(effectiveBackdateSeconds(300, 600), 60);
  assert.equal(effectiveBackdateSeconds(300, 30), 3);
  assert.equal(effectiveBackdateSeconds(300, 15), 1, 'whole seconds, rounded down');
  assert.equal(effectiveBackdateSeconds(0, 30), 0);
});

test('quotedName: client-supplied names are quoted, escaped and bounded for failInfoText and logs', () => {
  assert.equal(quotedName('dns:a.example'), '"dns:a.example"');
  assert.equal(quotedName('dns:x\n\u001b[31m"\\'), '"dns:x\\x0a\\x1b[31m\\"\\\\"');
  assert.equal(quotedName('dns:\u202ea'), '"dns:\\u{202e}a"');
  const long = quotedName(`dns:${'a'.repeat(500)}`);
  assert.ok(long.length < 220 && long.endsWith('…"'));
});
