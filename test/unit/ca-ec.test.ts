/**
 * An EC CA behind an RSA RA (src/ca/keystore.ts, src/ca/rollover.ts, src/ra/identity.ts):
 * CA-only mode with an EC CA key is refused everywhere (init, load, the SCEP identity), the
 * CA certificate of an EC key has no keyEncipherment and is signed with the curve's digest,
 * and a rollover keeps the EC key type while the RA stays RSA.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { CertificateAuthority } from '../../src/ca/issuer.js';
import { caPaths, EC_CA_NEEDS_RA, initCa, loadCa } from '../../src/ca/keystore.js';
import { activateRollover, stageRollover } from '../../src/ca/rollover.js';
import { OID } from '../../src/asn1/oids.js';
import { parseKeyUsage } from '../../src/pkix/extensions.js';
import {
  parseCertificate,
  verifyCertificateSignature,
  type Certificate,
} from '../../src/pkix/certificate.js';
import { scepIdentity } from '../../src/ra/identity.js';
import { seedCa, tempDir } from '../helpers/scep-server.js';
import { keyHandle } from '../../src/crypto/private-key.js';

function keyUsageOf(c: Certificate): string[] {
  const ext = c.extension(OID.keyUsage);
  assert.ok(ext);
  return parseKeyUsage(ext.value);
}

test('CA-only with an EC CA key is refused: init, load and the SCEP identity', async (t) => {
  const dir = tempDir(t, 'scepter-ec-ca-');
  await assert.rejects(initCa(dir, { caKeyType: 'ec-p256' }), (e: Error) => e.message === EC_CA_NEEDS_RA);

  seedCa(dir, { caKeyType: 'ec-p256' });
  const loaded = loadCa(dir);
  assert.equal(keyHandle(loaded.ca.key).type, 'ec');
  assert.equal(loaded.ra && keyHandle(loaded.ra.key).type, 'rsa');
  assert.throws(() => scepIdentity({ ca: loaded.ca, chain: [] }), /cannot decrypt SCEP requests/);
  const id = scepIdentity({ ca: loaded.ca, chain: [], ra: loaded.ra! });
  assert.deepEqual(
    id.recipients.map((r) => r.cert),
    [loaded.ra!.cert],
    'only the RSA RA receives envelopes',
  );
  // Without its RA files the EC CA does not load.
  rmSync(caPaths(dir).raKey);
  assert.throws(() => loadCa(dir), /needs RA mode/);
});

test('EC CA certificate: keyCertSign/cRLSign/digitalSignature only, ECDSA with the curve digest', async (t) => {
  for (const [type, sig] of [
    ['ec-p256', OID.ecdsaWithSHA256],
    ['ec-p384', OID.ecdsaWithSHA384],
  ] as const) {
    const dir = tempDir(t, 'scepter-ec-ca-');
    mkdirSync(dir, { recursive: true });
    seedCa(dir, { caKeyType: type });
    const { ca, ra } = loadCa(dir);
    // seedCa builds the root with the same builder as initCa.
    assert.equal(ca.cert.signatureAlgorithm, sig);
    assert.deepEqual(keyUsageOf(ca.cert).sort(), ['cRLSign', 'digitalSignature', 'keyCertSign']);
    assert.equal(ra!.cert.signatureAlgorithm, sig, 'the RA certificate is ECDSA-signed by the CA');
    assert.ok(verifyCertificateSignature(ra!.cert, ca.cert.publicKey()));
    // Issued certificates: ECDSA whatever digest the request used (never ecdsa-with-SHA1).
    const issued = parseCertificate(
      ca.issue({
        serial: Buffer.from([1]),
        subjectRaw: ra!.cert.subjectRaw,
        spki: ra!.cert.spki,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86_400_000),
        profile: { validitySeconds: 86_400, keyUsage: ['digitalSignature'], extKeyUsage: [] },
        digest: 'sha1',
      }),
    );
    assert.equal(issued.signatureAlgorithm, sig);
    assert.ok(verifyCertificateSignature(issued, ca.cert.publicKey()));
    assert.ok(ca instanceof CertificateAuthority);
  }
});

test('rollover of an EC P-384 CA: the next CA is EC P-384, the next RA RSA, cross-certified', async (t) => {
  const dir = tempDir(t, 'scepter-ec-roll-');
  seedCa(dir, { caKeyType: 'ec-p384' });
  const before = loadCa(dir);
  const staged = await stageRollover(dir);
  assert.equal(staged.caCert.publicKey().asymmetricKeyDetails?.namedCurve, 'secp384r1');
  assert.equal(staged.caCert.signatureAlgorithm, OID.ecdsaWithSHA384);
  assert.equal(staged.raCert?.publicKey().asymmetricKeyType, 'rsa');
  assert.equal(staged.raCert?.publicKey().asymmetricKeyDetails?.modulusLength, 2048, 'the RA keeps its size');
  assert.ok(staged.crossCert && verifyCertificateSignature(staged.crossCert, before.caCert.publicKey()));
  activateRollover(dir);
  const after = loadCa(dir);
  assert.ok(after.caCert.der.equals(staged.caCert.der));
  assert.equal(keyHandle(after.ca.key).type, 'ec');
});
