import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDegenerate, buildSignedData } from '../../src/cms/index.js';
import { toPem } from '../../src/pkix/certificate.js';
import {
  caCertResponse,
  formatCapabilities,
  hasCapability,
  nextCaCertResponse,
  parseCaCertResponse,
  parseCapabilities,
  parseNextCaCertResponse,
  ScepError,
} from '../../src/scep/index.js';
import { makeIssued, makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import { fixture } from '../helpers/scep-fixtures.js';

test('capabilities: case-insensitive, LF/CRLF, unknown ignored, SCEPStandard implies', () => {
  const caps = parseCapabilities('postpkioperation\r\nsha-256\r\nFoo-Bar\nRenewal\n\n');
  assert.deepEqual([...caps].sort(), ['POSTPKIOperation', 'Renewal', 'SHA-256']);
  assert.ok(!hasCapability(caps, 'AES'));
  const std = parseCapabilities('SCEPStandard');
  assert.ok(
    hasCapability(std, 'AES') && hasCapability(std, 'POSTPKIOperation') && hasCapability(std, 'SHA-256'),
  );
  assert.ok(!hasCapability(std, 'Renewal'));
  assert.equal(
    formatCapabilities(['AES', 'POSTPKIOperation', 'SCEPStandard']),
    'AES\nPOSTPKIOperation\nSCEPStandard\n',
  );
});

test('GetCACert: one cert DER, several → degenerate; client reads DER, PEM, degenerate', () => {
  const f = fixture();
  const ra = makeIssued({ subject: 'CN=RA', issuer: f.ca, key: pooledRsaKey(2) });
  const one = caCertResponse([f.ca.certDer]);
  assert.equal(one.contentType, 'application/x-x509-ca-cert');
  assert.ok(one.body.equals(f.ca.certDer));
  const two = caCertResponse([ra.certDer, f.ca.certDer]);
  assert.equal(two.contentType, 'application/x-x509-ca-ra-cert');
  assert.deepEqual(
    parseCaCertResponse(two.contentType, two.body).map((c) => c.fingerprint),
    [ra.cert.fingerprint, f.ca.cert.fingerprint],
  );
  assert.equal(parseCaCertResponse('text/plain', one.body)[0]!.fingerprint, f.ca.cert.fingerprint);
  const pem = Buffer.from(toPem(ra.certDer) + toPem(f.ca.certDer));
  assert.equal(parseCaCertResponse('application/x-x509-ca-cert', pem).length, 2);
  assert.throws(() => parseCaCertResponse('x', Buffer.from([0x30, 0x03, 1])), ScepError);
});

test('GetNextCACert: signed by the current CA, both shapes; untrusted signer refused', () => {
  const f = fixture();
  const next = makeSelfSigned({ subject: 'CN=Next CA', key: pooledRsaKey(3), ca: true });
  const body = nextCaCertResponse([next.certDer], { cert: f.ca.cert, key: f.ca.key }, 'sha256');
  assert.equal(parseNextCaCertResponse(body, [f.ca.cert])[0]!.fingerprint, next.cert.fingerprint);
  // jscep shape: new certs in the outer certificates, no content.
  const jscep = buildSignedData({
    signerCert: f.ca.cert,
    signerKey: f.ca.key,
    digest: 'sha256',
    certificates: [next.certDer],
  });
  assert.equal(parseNextCaCertResponse(jscep, [f.ca.cert])[0]!.fingerprint, next.cert.fingerprint);
  assert.throws(
    () => parseNextCaCertResponse(body, [next.cert]),
    (e: unknown) => e instanceof ScepError && e.kind === 'failure',
  );
  assert.throws(
    () => parseNextCaCertResponse(buildDegenerate({ certificates: [next.certDer] }), [f.ca.cert]),
    ScepError,
  );
});
