/**
 * Through a running server (real HTTP): what the CA refuses to sign is answered with a signed
 * CertRep FAILURE badRequest naming the field, never an HTTP 500, and the transaction is not
 * left half done; `csrChecks.allowWildcards` (serve --allow-wildcard-san) lets wildcards through.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import * as der from '../../src/asn1/writer.js';
import { FailInfo, PkiStatus } from '../../src/scep/index.js';
import { makeSelfSigned } from '../helpers/pki.js';
import {
  caCerts,
  csrOf,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  testServer,
  type Device,
} from '../helpers/scep-server.js';
import type { Certificate } from '../../src/pkix/certificate.js';

async function send(url: string, d: Device, trusted: Certificate[], content: Buffer) {
  const req = pkcsReq(d, trusted[0]!, { content });
  const r = await postPki(url, req.der);
  assert.equal(r.status, 200);
  return openCertRep(r.body, req, d, trusted);
}

test('hostile CSR content over HTTP: signed FAILURE badRequest naming the field, never 500', async (t) => {
  const s = await testServer(t);
  const trusted = await caCerts(s.url);
  const d = device('CN=hostile', { pool: 2 });

  const wild = await send(
    s.url,
    d,
    trusted,
    csrOf(d, { subjectAltNames: [{ type: 'dns', value: '*.corp.example' }] }),
  );
  assert.equal(wild.status, PkiStatus.FAILURE);
  assert.equal(wild.failInfo, FailInfo.badRequest);
  assert.equal(wild.failInfoText, "SAN dNSName '*.corp.example': wildcards are not allowed");

  const nul = await send(
    s.url,
    d,
    trusted,
    csrOf(d, { subjectAltNames: [{ type: 'dns', value: 'bank.com\0.attacker.com' }] }),
  );
  assert.equal(nul.status, PkiStatus.FAILURE);
  assert.match(nul.failInfoText ?? '', /^SAN dNSName 'bank\.com\\x00\.attacker\.com' contains/);

  // An 8-byte iPAddress used to throw ExtensionError past the CaError catch (HTTP 500).
  const ip8 = { type: 'other' as const, raw: der.encode(der.implicitPrimitive(7, Buffer.alloc(8, 1))) };
  const bad = await send(s.url, d, trusted, csrOf(d, { subjectAltNames: [ip8] }));
  assert.equal(bad.status, PkiStatus.FAILURE);
  assert.equal(bad.failInfo, FailInfo.badRequest);
  assert.match(bad.failInfoText ?? '', /iPAddress of 8 bytes/);

  // The CA's own subject.
  const own = await send(s.url, d, trusted, csrOf(d, { subject: trusted[0]!.subjectRaw }));
  assert.equal(own.status, PkiStatus.FAILURE);
  assert.match(own.failInfoText ?? '', /name of this CA/);

  // A subject that is not a Name of strings.
  const intSubject = der.encode(der.seq(der.int(5)));
  const junk = await send(s.url, d, trusted, csrOf(d, { subject: intSubject }));
  assert.equal(junk.status, PkiStatus.FAILURE);
  assert.match(junk.failInfoText ?? '', /^subject /);

  // The same device with a clean request still enrolls (nothing stuck).
  const ok = await send(
    s.url,
    d,
    trusted,
    csrOf(d, { subjectAltNames: [{ type: 'dns', value: 'dev.corp.example' }] }),
  );
  assert.equal(ok.status, PkiStatus.SUCCESS);
});

test('an RSA key with public exponent 3 is refused over HTTP (FAILURE badRequest)', async (t) => {
  const s = await testServer(t);
  const trusted = await caCerts(s.url);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
  const subject = 'CN=e3';
  const d: Device = {
    key: privateKey,
    subject,
    signer: makeSelfSigned({ subject, key: privateKey, days: 1 }),
  };
  assert.equal(createPublicKey(privateKey).asymmetricKeyDetails?.publicExponent, 3n);
  const rep = await send(s.url, d, trusted, csrOf(d));
  assert.equal(rep.status, PkiStatus.FAILURE);
  assert.equal(rep.failInfo, FailInfo.badRequest);
  assert.equal(rep.failInfoText, 'the RSA public exponent 3 is smaller than 65537');
});

test('csrChecks.allowWildcards (serve --allow-wildcard-san) certifies a wildcard dNSName', async (t) => {
  const s = await testServer(t, { enrollment: { csrChecks: { allowWildcards: true } } });
  const trusted = await caCerts(s.url);
  const d = device('CN=wild', { pool: 3 });
  const rep = await send(
    s.url,
    d,
    trusted,
    csrOf(d, { subjectAltNames: [{ type: 'dns', value: '*.corp.example' }] }),
  );
  assert.equal(rep.status, PkiStatus.SUCCESS);
  assert.ok(rep.certificates[0]!.der.includes(Buffer.from('*.corp.example')));
});
