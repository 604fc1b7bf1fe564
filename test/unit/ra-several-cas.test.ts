/**
 * Several CAs in one data directory (DIR/ca/ and DIR/cas/NAME/), each behind its own
 * enrollment service on one shared store: each issues under its own name and records its CA
 * and profile, GetCert and GetCRL answer from the right CA, a revocation in one CA stays out of
 * the other's CRL, the same serial in two CAs does not collide, and the CRL route serves each
 * CA's CRL by name and by fingerprint.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { listCaNames } from '../../src/ca/ca-location.js';
import { initCa } from '../../src/ca/keystore.js';
import { spkiHash } from '../../src/crypto/keys.js';
import type { Certificate } from '../../src/pkix/certificate.js';
import type { EnrollmentService } from '../../src/ra/service.js';
import { buildIssuerAndSerial } from '../../src/scep/message-data.js';
import { encodePkiRequest, type CertRep } from '../../src/scep/client.js';
import { MessageType, PkiStatus, parseCaCertResponse } from '../../src/scep/index.js';
import { buildApp } from '../../src/server/app.js';
import { composeEnrollment } from '../../src/server/compose.js';
import { severalCaCrls } from '../../src/server/crl-route.js';
import { permissionWarnings, prepareCa } from '../../src/server/data-dir.js';
import { openStore, type Store } from '../../src/store/index.js';
import {
  TEST_CHALLENGE,
  certPoll,
  csrOf,
  device,
  openCertRep,
  pkcsReq,
  seedCa,
  tempDir,
  type Device,
} from '../helpers/scep-server.js';

interface Endpoint {
  svc: EnrollmentService;
  certs: Certificate[];
}

async function twoCas(
  t: TestContext,
): Promise<{ store: Store; dir: string; def: Endpoint; routers: Endpoint }> {
  const dir = tempDir(t);
  seedCa(dir, { ra: true });
  seedCa({ dataDir: dir, name: 'routers' }, { ra: true });
  const store = await openStore(':memory:');
  t.after(() => store.close());
  const build = (caName: string | undefined, profile: string | undefined): Endpoint => {
    const svc = composeEnrollment({
      dataDir: dir,
      store,
      config: { challenges: [TEST_CHALLENGE] },
      ...(caName ? { caName } : {}),
      ...(profile ? { profile } : {}),
    });
    const a = svc.getCaCert();
    return { svc, certs: parseCaCertResponse(a.contentType, a.body) };
  };
  return { store, dir, def: build(undefined, undefined), routers: build('routers', 'edge') };
}

/** Enrolls `d` at the endpoint; returns the issued certificate. */
async function enroll(e: Endpoint, d: Device): Promise<Certificate> {
  const req = pkcsReq(d, e.certs[0]!);
  const a = await e.svc.pkiOperation(req.der, { remoteAddress: '192.0.2.1' });
  const rep = openCertRep(a.body, req, d, e.certs);
  assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);
  return rep.certificates[0]!;
}

/** GetCert or GetCRL for (issuer, serial) at the endpoint. */
async function lookup(
  e: Endpoint,
  d: Device,
  messageType: MessageType.GetCert | MessageType.GetCRL,
  issuer: Certificate,
  serial: Buffer,
): Promise<CertRep> {
  const transactionId = `lookup-${Math.random().toString(36).slice(2)}`;
  const m = encodePkiRequest({
    messageType,
    transactionId,
    signerCert: d.signer.cert,
    signerKey: d.key,
    digest: 'sha256',
    recipient: e.certs[0]!,
    cipher: 'aes128',
    content: buildIssuerAndSerial({ issuerRaw: issuer.subjectRaw, serial }),
  });
  const a = await e.svc.pkiOperation(m.der, {});
  return openCertRep(a.body, { transactionId, senderNonce: m.senderNonce }, d, e.certs);
}

function crlSerials(der: Buffer): string[] {
  const list = AsnConvert.parse(der, CertificateList).tbsCertList.revokedCertificates ?? [];
  return list.map((r) =>
    Buffer.from(r.userCertificate)
      .toString('hex')
      .replace(/^(00)+/, ''),
  );
}

const caOf = (e: Endpoint): Certificate => e.certs.find((c) => c.subjectRaw.equals(c.issuerRaw))!;

test('two CAs in one data directory: each issues under its own name, CA and profile recorded', async (t) => {
  const { store, dir, def, routers } = await twoCas(t);
  assert.deepEqual(listCaNames(dir), ['default', 'routers']);
  assert.notEqual(caOf(def).fingerprint, caOf(routers).fingerprint);
  const laptop = await enroll(def, device('CN=laptop-1,O=Test', { pool: 1 }));
  const router = await enroll(routers, device('CN=router-1,O=Test', { pool: 2 }));
  assert.ok(laptop.issuerRaw.equals(caOf(def).subjectRaw));
  assert.ok(router.issuerRaw.equals(caOf(routers).subjectRaw));
  const l = await store.getCertificate(laptop.serialHex);
  const r = await store.getCertificate(router.serialHex, 'routers');
  assert.deepEqual([l?.ca, l?.profile], ['default', 'default']);
  assert.deepEqual([r?.ca, r?.profile], ['routers', 'edge']);
  assert.equal(await store.getCertificate(router.serialHex), null, 'not filed under the default CA');
  const tx = await store.getTransaction(r!.transactionId!);
  assert.deepEqual([tx?.ca, tx?.profile], ['routers', 'edge']);
  assert.equal((await store.searchCertificates({ profile: 'edge' })).total, 1);
  // prepareCa loads an existing named CA and creates nothing.
  const p = await prepareCa(dir, 'routers', { create: false });
  assert.equal(p.created, false);
  assert.equal(p.loaded.caCert.fingerprint, caOf(routers).fingerprint);
  await assert.rejects(prepareCa(dir, 'missing', { create: false }), /no CA named missing/);
  await assert.rejects(prepareCa(dir, '../escape'), /a CA name is/);
});

test('GetCert and GetCRL per CA; the same serial in two CAs; revocations stay in their CA', async (t) => {
  const { store, def, routers } = await twoCas(t);
  const asker = device('CN=asker,O=Test', { pool: 3 });
  const laptop = await enroll(def, device('CN=laptop-2,O=Test', { pool: 1 }));
  // The routers CA gets a certificate with the laptop's serial (two CAs may issue the same one).
  const twin = await enroll(routers, device('CN=router-2,O=Test', { pool: 2 }));
  const rec = (await store.getCertificate(twin.serialHex, 'routers'))!;
  await store.insertCertificate({ ...rec, serial: laptop.serialHex, transactionId: null, ca: 'routers' });
  assert.equal((await store.searchCertificates({ serial: laptop.serialHex })).total, 2);

  // GetCert answers each CA's own certificate for that serial.
  const a = await lookup(def, asker, MessageType.GetCert, caOf(def), laptop.serial);
  assert.equal(a.status, PkiStatus.SUCCESS);
  assert.ok(a.certificates[0]!.der.equals(laptop.der));
  const b = await lookup(routers, asker, MessageType.GetCert, caOf(routers), laptop.serial);
  assert.equal(b.status, PkiStatus.SUCCESS);
  assert.ok(b.certificates[0]!.der.equals(twin.der), 'the routers CA answers its own certificate');
  // Another CA's issuer name is not found at this endpoint.
  const c = await lookup(routers, asker, MessageType.GetCert, caOf(def), laptop.serial);
  assert.equal(c.status, PkiStatus.FAILURE);

  // Revoke the laptop in the default CA only: its CRL lists it, the routers CA's does not.
  assert.equal(await store.revoke(laptop.serialHex, 1, new Date()), true);
  await def.svc.lifecycle.crls.regenerate(caOf(def).fingerprint);
  const defCrl = await lookup(def, asker, MessageType.GetCRL, caOf(def), laptop.serial);
  const routersCrl = await lookup(routers, asker, MessageType.GetCRL, caOf(routers), laptop.serial);
  assert.equal(defCrl.status, PkiStatus.SUCCESS);
  assert.equal(routersCrl.status, PkiStatus.SUCCESS);
  const dl = AsnConvert.parse(defCrl.crls[0]!, CertificateList).tbsCertList;
  const rl = AsnConvert.parse(routersCrl.crls[0]!, CertificateList).tbsCertList;
  assert.ok(Buffer.from(AsnConvert.serialize(dl.issuer)).equals(caOf(def).subjectRaw));
  assert.ok(Buffer.from(AsnConvert.serialize(rl.issuer)).equals(caOf(routers).subjectRaw));
  assert.deepEqual(crlSerials(defCrl.crls[0]!), [laptop.serialHex]);
  assert.deepEqual(crlSerials(routersCrl.crls[0]!), []);
  assert.equal((await store.getCertificate(laptop.serialHex, 'routers'))?.status, 'valid');
});

test('a transactionID held by another CA or profile is refused, not answered from there', async (t) => {
  const { def, routers } = await twoCas(t);
  const d = device('CN=both,O=Test', { pool: 4 });
  await enroll(def, d);
  const req = pkcsReq(d, routers.certs[0]!, { transactionId: 'shared-id' });
  await def.svc.pkiOperation(pkcsReq(d, def.certs[0]!, { transactionId: 'shared-id' }).der, {});
  const a = await routers.svc.pkiOperation(req.der, {});
  const rep = openCertRep(a.body, req, d, routers.certs);
  assert.equal(rep.status, PkiStatus.FAILURE);
  assert.match(rep.failInfoText ?? '', /another CA or profile/);
});

test('a CertPoll for a request pending at another CA or profile is refused there, not answered PENDING', async (t) => {
  const { store, def, routers } = await twoCas(t);
  const d = device('CN=pending-elsewhere,O=Test', { pool: 5 });
  await store.beginTransaction({
    transactionId: 'held-at-default',
    signerKeyHash: spkiHash(d.signer.cert.spki),
    messageType: MessageType.PKCSReq,
    state: 'pending',
    csr: csrOf(d),
    subject: 'CN=pending-elsewhere,O=Test',
  });
  const here = certPoll(d, def.certs[0]!, caOf(def), 'held-at-default');
  const a = openCertRep((await def.svc.pkiOperation(here.der, {})).body, here, d, def.certs);
  assert.equal(a.status, PkiStatus.PENDING);
  const there = certPoll(d, routers.certs[0]!, caOf(routers), 'held-at-default');
  const b = openCertRep((await routers.svc.pkiOperation(there.der, {})).body, there, d, routers.certs);
  assert.equal(b.status, PkiStatus.FAILURE);
  assert.match(b.failInfoText ?? '', /another CA or profile/);
});

test('CRL route per CA: /crl/NAME.crl, fingerprints of either CA, /crl is the default CA', async (t) => {
  const { def, routers } = await twoCas(t);
  const app = await buildApp({
    service: def.svc,
    logLevel: 'silent',
    crl: severalCaCrls(
      new Map([
        ['default', def.svc.lifecycle.crls],
        ['routers', routers.svc.lifecycle.crls],
      ]),
    ),
  });
  t.after(() => app.close());
  const issuerOf = async (path: string): Promise<Buffer | number> => {
    const r = await app.inject({ method: 'GET', url: path });
    if (r.statusCode !== 200) return r.statusCode;
    assert.equal(r.headers['content-type'], 'application/pkix-crl');
    return Buffer.from(
      AsnConvert.serialize(AsnConvert.parse(r.rawPayload, CertificateList).tbsCertList.issuer),
    );
  };
  const defName = caOf(def).subjectRaw;
  const routersName = caOf(routers).subjectRaw;
  assert.deepEqual(await issuerOf('/crl'), defName);
  assert.deepEqual(await issuerOf('/crl/default.crl'), defName);
  assert.deepEqual(await issuerOf('/crl/routers.crl'), routersName);
  assert.deepEqual(await issuerOf('/crl/routers'), routersName);
  assert.deepEqual(await issuerOf(`/crl/${caOf(routers).fingerprint}.crl`), routersName);
  assert.deepEqual(await issuerOf(`/crl/${caOf(def).fingerprint}.crl`), defName);
  assert.equal(await issuerOf('/crl/nobody.crl'), 404);
  assert.equal(await issuerOf('/crl/..%2Fca.crl'), 404);
});

test('ca init refuses to import the certificate another CA of the data directory already has', async (t) => {
  const dir = tempDir(t);
  seedCa(dir);
  const key = join(dir, 'ca', 'ca.key');
  const cert = join(dir, 'ca', 'ca.crt');
  await assert.rejects(
    initCa({ dataDir: dir, name: 'twin' }, { importKey: key, importCert: cert }),
    /already the CA "default"/,
  );
  assert.deepEqual(listCaNames(dir), ['default']);
});

test('permissionWarnings: a DIR/cas/ readable by others is reported', (t) => {
  const dir = tempDir(t);
  seedCa({ dataDir: dir, name: 'routers' });
  chmodSync(dir, 0o700);
  chmodSync(join(dir, 'cas'), 0o700);
  assert.deepEqual(permissionWarnings({ dataDir: dir }), []);
  chmodSync(join(dir, 'cas'), 0o755);
  const w = permissionWarnings({ dataDir: dir });
  assert.equal(w.length, 1);
  assert.match(w[0]!, /named CAs .*cas is readable by group or others/);
});
