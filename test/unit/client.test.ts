/**
 * Pure parts of the client: GetCACaps parsing and negotiation (docs/conformance.md §6 cases 48, 50),
 * fingerprint parsing, and the classification of GetCACert bundles (RA picked by keyUsage,
 * never by position; RA certificates must chain to the authenticated CA; case 49 pinning).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Capabilities,
  negotiate,
  classifyCaCertificates,
  parseFingerprint,
  formatFingerprint,
} from '../../src/client/index.js';
import { ScepProtocolError } from '../../src/client/errors.js';
import { makeIssued, makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';

test('GetCACaps: LF or CRLF, any case, blanks and unknown keywords tolerated', () => {
  const caps = Capabilities.parse('  aes \r\nposTPKIOperation\r\n\r\nrenewal\nX-Vendor-Thing\nsha-256\n');
  assert.ok(caps.has('AES'));
  assert.ok(caps.has('POSTPKIOperation'));
  assert.ok(caps.has('Renewal'));
  assert.ok(caps.has('SHA-256'));
  assert.ok(!caps.has('GetNextCACert'));
  assert.deepEqual(caps.keywords, ['aes', 'posTPKIOperation', 'renewal', 'X-Vendor-Thing', 'sha-256']);
  assert.equal(Capabilities.parse('').keywords.length, 0);
});

test('negotiation: AES/SHA-256/POST when offered (or implied by SCEPStandard), else DES3/SHA-1/GET; never DES', () => {
  assert.deepEqual(negotiate(Capabilities.parse('SCEPStandard\n')), {
    cipher: 'aes256',
    digest: 'sha256',
    post: true,
  });
  assert.deepEqual(negotiate(Capabilities.parse('AES\nSHA-512\n')), {
    cipher: 'aes256',
    digest: 'sha512',
    post: false,
  });
  assert.deepEqual(negotiate(Capabilities.parse('DES3\nSHA-1\nPOSTPKIOperation')), {
    cipher: 'des3',
    digest: 'sha1',
    post: true,
  });
  assert.deepEqual(negotiate(Capabilities.parse('')), { cipher: 'des3', digest: 'sha1', post: false });
  assert.deepEqual(negotiate(Capabilities.parse('AES\nSHA-256\nSHA-512')).digest, 'sha256');
  assert.equal(negotiate(Capabilities.parse('AES'), { cipher: 'aes128' }).cipher, 'aes128');
  assert.throws(() => negotiate(Capabilities.parse('AES'), { cipher: 'des' }), /single DES/);
});

test('fingerprints: sha256: prefix, colons, spaces, case; other lengths and algorithms refused', () => {
  const hex = 'ab'.repeat(32);
  assert.equal(parseFingerprint(`sha256:${hex.toUpperCase()}`), hex);
  assert.equal(parseFingerprint(formatFingerprint(hex)), hex);
  assert.equal(parseFingerprint(hex.match(/..../g)!.join(' ')), hex);
  assert.equal(parseFingerprint(`SHA-256:${hex}`), hex);
  assert.throws(() => parseFingerprint('ab'.repeat(20)), /64 hex/);
  assert.throws(() => parseFingerprint(`md5:${'ab'.repeat(16)}`), /unsupported fingerprint algorithm/);
  assert.match(formatFingerprint(hex), /^sha256:(ab){32}$/);
});

const root = makeSelfSigned({ subject: 'CN=Root,O=T', ca: true, key: pooledRsaKey(20) });
const inter = makeIssued({ subject: 'CN=Issuing,O=T', issuer: root, ca: true, key: pooledRsaKey(21) });
const raEnc = makeIssued({ subject: 'CN=RA enc', issuer: inter, keyUsage: [2], key: pooledRsaKey(22) });
const raSign = makeIssued({ subject: 'CN=RA sign', issuer: inter, keyUsage: [0], key: pooledRsaKey(23) });
const stranger = makeSelfSigned({ subject: 'CN=Stranger', ca: true, key: pooledRsaKey(24) });
const strayRa = makeIssued({
  subject: 'CN=Stray RA',
  issuer: stranger,
  keyUsage: [0, 2],
  key: pooledRsaKey(25),
});

test('CA-only bundle: the CA encrypts and signs', () => {
  const c = classifyCaCertificates([root.cert]);
  assert.equal(c.ra, false);
  assert.equal(c.encryption, root.cert);
  assert.deepEqual(c.signers, [root.cert]);
  assert.equal(c.ca, root.cert);
  assert.equal(c.anchorFingerprint, root.cert.fingerprint);
});

test('RA bundle in NDES order (RA certs last): picked by keyUsage; issuing CA and chain found', () => {
  const c = classifyCaCertificates([root.cert, inter.cert, raSign.cert, raEnc.cert], root.cert.fingerprint);
  assert.equal(c.ra, true);
  assert.equal(c.encryption, raEnc.cert);
  assert.ok(c.signers.includes(raSign.cert));
  assert.ok(!c.signers.includes(raEnc.cert), 'an encryption-only RA cert does not sign CertReps');
  assert.equal(c.ca, inter.cert);
  assert.deepEqual(c.caChain, [inter.cert, root.cert]);
  // Same without a pin: the self-signed CA is the anchor.
  const tofu = classifyCaCertificates([raEnc.cert, raSign.cert, inter.cert, root.cert]);
  assert.equal(tofu.encryption, raEnc.cert);
  assert.equal(tofu.ca, inter.cert);
});

test('an RA certificate that does not chain to the authenticated CA is ignored', () => {
  const c = classifyCaCertificates([root.cert, strayRa.cert], root.cert.fingerprint);
  assert.equal(c.ra, false);
  assert.equal(c.encryption, root.cert);
  assert.ok(!c.signers.includes(strayRa.cert));
});

test('pinning: a fingerprint matching no certificate is refused; pinning the intermediate works', () => {
  assert.throws(
    () => classifyCaCertificates([root.cert, inter.cert], stranger.cert.fingerprint),
    ScepProtocolError,
  );
  const c = classifyCaCertificates([root.cert, inter.cert, raEnc.cert, raSign.cert], inter.cert.fingerprint);
  assert.equal(c.encryption, raEnc.cert);
  assert.equal(c.ca, inter.cert);
  assert.throws(() => classifyCaCertificates([]), ScepProtocolError);
});
