/**
 * src/ra/csr-checks.ts as a Policy (reserved subjects, duplicate SAN extensions, CSR size,
 * RSA exponent, options) and the CA's own guarantees: every issuance failure is a CaError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import { CaError, CertificateAuthority } from '../../src/ca/issuer.js';
import { DEFAULT_CLIENT_PROFILE } from '../../src/ca/profile.js';
import { randomSerial } from '../../src/ca/serial.js';
import { buildCsr, parseCsr, type BuildCsrOptions } from '../../src/pkix/csr.js';
import { extension } from '../../src/pkix/extensions.js';
import { buildName } from '../../src/pkix/name.js';
import { CSR_CHECK_DEFAULTS, csrChecks, csrProblem, subjectsOf } from '../../src/ra/csr-checks.js';
import type { EnrollmentRequest } from '../../src/ra/policy.js';
import { resolveEnrollmentConfig } from '../../src/ra/config.js';
import { FailInfo } from '../../src/scep/types.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';

const key = pooledRsaKey(0);
function req(o: Partial<BuildCsrOptions> = {}): Pick<EnrollmentRequest, 'csr'> {
  return {
    csr: parseCsr(buildCsr({ subject: 'CN=dev,O=Acme', key, publicKey: createPublicKey(key), ...o })),
  };
}
const caCert = makeSelfSigned({ subject: '/O=Acme/CN=Unit CA', key: pooledRsaKey(1), days: 30, ca: true });
const raCert = makeSelfSigned({ subject: '/O=Acme/CN=Unit RA', key: pooledRsaKey(2), days: 30 });

test('a clean request passes; defaults are the documented ones', () => {
  assert.equal(csrProblem(req({ subjectAltNames: [{ type: 'dns', value: 'dev.example' }] })), undefined);
  assert.deepEqual(
    { ...CSR_CHECK_DEFAULTS, allowedOtherNames: [...CSR_CHECK_DEFAULTS.allowedOtherNames] },
    {
      allowWildcards: false,
      allowedOtherNames: ['1.3.6.1.4.1.311.20.2.3'],
      maxSans: 20,
      maxSanLength: 512,
      maxCsrBytes: 16384,
      maxSubjectAttributes: 16,
      maxSubjectBytes: 1024,
    },
  );
});

test('the subject of a CA or the RA is never certified (RFC 5280 name comparison)', async () => {
  const reserved = subjectsOf([caCert.cert, undefined, raCert.cert]);
  const policy = csrChecks({}, reserved);
  for (const subject of ['CN=Unit CA,O=Acme', 'cn=unit  ca,o=ACME', 'CN=Unit RA,O=Acme']) {
    const r = await policy(req({ subject }) as EnrollmentRequest);
    assert.deepEqual(r, {
      failInfo: FailInfo.badRequest,
      text: 'subject is the name of this CA or its RA, which is never issued to a client',
    });
  }
  assert.equal(await policy(req({ subject: 'CN=Unit CA 2,O=Acme' }) as EnrollmentRequest), undefined);
  // The per-request source (a staged rollover) is consulted on every call.
  let staged: { subjectRaw: Buffer }[] = [];
  const dynamic = subjectsOf([caCert.cert], () => staged);
  assert.equal(csrProblem(req({ subject: 'CN=Next CA' }), {}, dynamic), undefined);
  staged = [{ subjectRaw: buildName('CN=Next CA') }];
  assert.match(csrProblem(req({ subject: 'CN=Next CA' }), {}, dynamic)!, /name of this CA/);
  // The empty subject (SAN-only request) is not compared.
  assert.equal(
    csrProblem(req({ subject: '', subjectAltNames: [{ type: 'dns', value: 'a.example' }] }), {}, reserved),
    undefined,
  );
});

test('SANs: wildcards by option, two subjectAltName extensions refused, count and length limits', () => {
  const wild = req({ subjectAltNames: [{ type: 'dns', value: '*.corp.example' }] });
  assert.equal(csrProblem(wild), "SAN dNSName '*.corp.example': wildcards are not allowed");
  assert.equal(csrProblem(wild, { allowWildcards: true }), undefined);
  const second = extension(
    OID.subjectAltName,
    false,
    der.seq(der.implicitPrimitive(2, Buffer.from('b.example'))),
  );
  const two = req({ subjectAltNames: [{ type: 'dns', value: 'a.example' }], extensions: [second] });
  assert.equal(csrProblem(two), 'the certificate request has more than one subjectAltName extension');
  const many = req({
    subjectAltNames: Array.from({ length: 5 }, (_, i) => ({ type: 'dns' as const, value: `h${i}.example` })),
  });
  assert.equal(csrProblem(many, { maxSans: 4 }), 'more than 4 subjectAltNames requested');
  const uri = req({ subjectAltNames: [{ type: 'uri', value: 'https://a.example/' + 'p'.repeat(100) }] });
  assert.match(csrProblem(uri, { maxSanLength: 64 })!, /URI is longer than 64 bytes/);
  const other = {
    type: 'other' as const,
    raw: der.encode(der.implicitConstructed(0, [der.oid('1.2.3.4'), der.explicit(0, der.utf8('x'))])),
  };
  assert.match(csrProblem(req({ subjectAltNames: [other] }))!, /otherName of type 1\.2\.3\.4 is not allowed/);
  assert.equal(csrProblem(req({ subjectAltNames: [other] }), { allowedOtherNames: ['1.2.3.4'] }), undefined);
});

test('CSR size and RSA exponent', async () => {
  const big = req({
    subjectAltNames: Array.from({ length: 20 }, (_, i) => ({
      type: 'dns' as const,
      value: `${'h'.repeat(60)}${i}.example`,
    })),
  });
  assert.ok(big.csr.der.length > 1500);
  assert.equal(csrProblem(big, { maxCsrBytes: 1500 }), 'the certificate request is larger than 1500 bytes');
  assert.equal(csrProblem(big), undefined);
  const e3 = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 3 }).privateKey;
  const r = await csrChecks()({
    csr: parseCsr(buildCsr({ subject: 'CN=e3', key: e3, publicKey: createPublicKey(e3) })),
  } as EnrollmentRequest);
  assert.deepEqual(r, {
    failInfo: FailInfo.badRequest,
    text: 'the RSA public exponent 3 is smaller than 65537',
  });
});

test('enrollment config carries csrChecks (serve --allow-wildcard-san)', () => {
  assert.deepEqual(resolveEnrollmentConfig({ challenges: [] }).csrChecks, {});
  assert.deepEqual(
    resolveEnrollmentConfig({ challenges: [], csrChecks: { allowWildcards: true } }).csrChecks,
    { allowWildcards: true },
  );
});

test('issuer: a SAN it cannot encode and its own name are CaErrors, never untyped throws', () => {
  const ca = new CertificateAuthority({ cert: caCert.cert, key: caCert.key, chain: [] });
  const base = {
    spki: createPublicKey(key).export({ type: 'spki', format: 'der' }),
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2026-02-01T00:00:00Z'),
    profile: DEFAULT_CLIENT_PROFILE,
  };
  for (const len of [0, 8]) {
    // What the CSR parser turns an 8-byte or empty iPAddress into.
    const csr = parseCsr(
      buildCsr({
        subject: 'CN=x',
        key,
        publicKey: createPublicKey(key),
        subjectAltNames: [{ type: 'other', raw: der.encode(der.implicitPrimitive(7, Buffer.alloc(len, 1))) }],
      }),
    );
    assert.throws(
      () =>
        ca.issue({
          ...base,
          subjectRaw: csr.subjectRaw,
          subjectAltNames: csr.subjectAltNames,
          serial: randomSerial(),
        }),
      (e: unknown) => e instanceof CaError && /^cannot issue: bad IP address/.test(e.message),
      `iPAddress of ${len} bytes`,
    );
  }
  assert.throws(
    () => ca.issue({ ...base, subjectRaw: buildName('cn=unit ca,o=acme'), serial: randomSerial() }),
    (e: unknown) => e instanceof CaError && /own name/.test(e.message),
  );
  assert.ok(ca.issue({ ...base, subjectRaw: buildName('CN=leaf'), serial: randomSerial() }).length > 0);
});

test('CSRs made by openssl req: ordinary ones pass, a wildcard or e=3 key is refused', (t) => {
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'scepter-csrchk-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'k.pem');
  writeFileSync(keyFile, key.export({ type: 'pkcs8', format: 'pem' }));
  const opensslCsr = (subj: string, san?: string, k = keyFile): Pick<EnrollmentRequest, 'csr'> => {
    const args = ['req', '-new', '-key', k, '-subj', subj, '-utf8', '-outform', 'DER'];
    if (san) args.push('-addext', `subjectAltName=${san}`);
    const r = spawnSync('openssl', args, { encoding: 'buffer' });
    assert.equal(r.status, 0, r.stderr.toString());
    return { csr: parseCsr(r.stdout) };
  };
  const subj = '/C=DE/ST=Berlin/L=Berlin/O=Acme GmbH/OU=IT/CN=Jürgen Müller/emailAddress=j@acme.example';
  assert.equal(
    csrProblem(
      opensslCsr(
        subj,
        'DNS:host.acme.example,IP:10.0.0.1,IP:2001:db8::1,email:j@acme.example,URI:https://acme.example/x',
      ),
    ),
    undefined,
  );
  assert.equal(
    csrProblem(opensslCsr('/CN=x', 'DNS:*.acme.example')),
    "SAN dNSName '*.acme.example': wildcards are not allowed",
  );
  // (openssl itself refuses a CN over 64 characters.)
  assert.match(
    csrProblem(opensslCsr('/CN=x', 'DNS:a_b.example'))!,
    /^SAN dNSName 'a_b\.example' has a label/,
  );
  const e3 = join(dir, 'e3.pem');
  const g = spawnSync('openssl', [
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:1024',
    '-pkeyopt',
    'rsa_keygen_pubexp:3',
    '-out',
    e3,
  ]);
  assert.equal(g.status, 0, g.stderr.toString());
  assert.equal(
    csrProblem(opensslCsr('/CN=e3', undefined, e3)),
    'the RSA public exponent 3 is smaller than 65537',
  );
});
