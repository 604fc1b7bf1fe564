/**
 * 64 enrollments in flight at once over HTTP against one server: all SUCCESS, all serials
 * distinct (in the certificates and in the store), every certificate for its own request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spkiOf } from '../../src/crypto/keys.js';
import { nameToString } from '../../src/pkix/name.js';
import { PkiStatus } from '../../src/scep/index.js';
import { caCerts, device, openCertRep, pkcsReq, postPki, testServer } from '../helpers/scep-server.js';

const N = 64;

test(`${N} concurrent enrollments: all SUCCESS, all serials distinct`, async (t) => {
  const server = await testServer(t);
  const trusted = await caCerts(server.url);
  const devices = Array.from({ length: N }, (_, i) => device(`CN=conc-${i},O=Load`, { pool: i % 16 }));
  const requests = devices.map((d, i) => ({
    d,
    req: pkcsReq(d, trusted[0]!, { transactionId: `conc-${i}` }),
  }));

  const answers = await Promise.all(requests.map(({ req }) => postPki(server.url, req.der)));

  const serials = new Set<string>();
  answers.forEach((a, i) => {
    const { d, req } = requests[i]!;
    assert.equal(a.status, 200, `request ${i}`);
    const rep = openCertRep(a.body, req, d, trusted);
    assert.equal(rep.status, PkiStatus.SUCCESS, `request ${i}: ${rep.failInfoText ?? ''}`);
    const cert = rep.certificates[0]!;
    assert.equal(nameToString(cert.subjectRaw), `CN=conc-${i},O=Load`);
    assert.ok(cert.spki.equals(spkiOf(d.key)));
    serials.add(cert.serialHex);
  });
  assert.equal(serials.size, N, 'distinct serials in the certificates');

  const store = server.enrollment!.store;
  const page = await store.searchCertificates({ subject: 'O=Load', limit: 1000 });
  assert.equal(page.total, N, 'one stored certificate per enrollment');
  assert.deepEqual(
    new Set(page.items.map((c) => c.serial)),
    serials,
    'the store holds exactly these serials',
  );
  for (let i = 0; i < N; i++) {
    const tx = await store.getTransaction(`conc-${i}`);
    assert.equal(tx?.state, 'issued');
  }
  const integrity = await store.integrityCheck();
  assert.ok(integrity.ok, integrity.problems.join('; '));
});
