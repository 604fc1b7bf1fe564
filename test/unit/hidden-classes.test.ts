/**
 * Per-request objects share their hidden classes (V8 maps). Node 20's V8 gives a fresh hidden
 * class to every object literal that starts with a spread and has more members; hidden classes
 * live in the old generation, so such objects on the request path filled it with garbage and
 * brought full collections closer. An object literal with a getter became a dictionary-mode
 * object whose accessor kept it alive past young-generation collections (docs/benchmarks.md,
 * issue #15, fourth round). eslint.config.js refuses the
 * spread pattern in src/; this test checks the objects themselves, with V8's %HaveSameMap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { parseCertificate } from '../../src/pkix/certificate.js';
import { buildRootCertificate } from '../../src/ca/keystore.js';
import { CertificateAuthority } from '../../src/ca/issuer.js';
import { composeEnrollment } from '../../src/server/compose.js';
import { openStore } from '../../src/store/index.js';
import { chainPrepared, prepareAuditEntries } from '../../src/store/audit-chain.js';
import { decodePkiRequest } from '../../src/scep/request.js';
import { makeEnrollment } from '../helpers/enrollment.js';
import { pooledRsaKey } from '../helpers/pki.js';

setFlagsFromString('--allow-natives-syntax');
// The first runs of a literal take V8's generic path, which shares hidden classes even where
// the optimized path does not: every check compares objects made after this many warm-up runs.
const WARM = 40;
// V8 natives syntax parses only at run time (new Function), with the flag above.
const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
const fastProperties = new Function('a', 'return %HasFastProperties(a)') as (a: object) => boolean;

test('the probe tells hidden classes apart', () => {
  assert.equal(sameMap({ a: 1 }, { a: 2 }), true);
  assert.equal(sameMap({ a: 1 }, { b: 1 }), false);
});

test('parsed certificates of different devices share one hidden class, with no accessor of their own', () => {
  const ca = pooledRsaKey(40);
  const caCert = parseCertificate(buildRootCertificate(ca, 'CN=hidden-class CA', 30));
  const signers = [0, 1].map(
    (i) =>
      decodePkiRequest(
        makeEnrollment({ key: pooledRsaKey(i), recipient: caCert, challenge: 'c', cn: `device-${i}` }).der,
      ).signerCert,
  );
  let a = parseCertificate(signers[0]!.der);
  let b = parseCertificate(signers[1]!.der);
  for (let i = 0; i < WARM; i++) {
    a = parseCertificate(signers[0]!.der);
    b = parseCertificate(signers[1]!.der);
  }
  assert.equal(sameMap(a, b), true);
  // An object literal with a getter is a dictionary-mode object with its own accessor; that
  // accessor's closure held the whole parse through young-generation collections.
  assert.equal(fastProperties(a), true);
  assert.deepEqual(
    Object.getOwnPropertyNames(a).filter((k) => Object.getOwnPropertyDescriptor(a, k)?.get),
    [],
  );
  // Using the lazy parts (fingerprint, public key) does not change it either.
  assert.ok(a.fingerprint.length === 64 && a.publicKey().type === 'public');
  assert.equal(sameMap(a, b), true);
});

test('audit rows share one hidden class', () => {
  const rows = chainPrepared(
    null,
    prepareAuditEntries(
      Array.from({ length: WARM + 2 }, (_, i) => ({
        actor: 'device',
        action: 'enroll.issued',
        target: `t${i}`,
        details: { serial: i.toString(16) },
      })),
    ),
    new Date(),
  );
  assert.equal(sameMap(rows[WARM]!, rows[WARM + 1]!), true);
});

test("two enrollments' answers and log records share their hidden classes", async (t) => {
  const caKey = pooledRsaKey(40);
  const caDer = buildRootCertificate(caKey, 'CN=hidden-class CA', 30);
  const caCert = parseCertificate(caDer);
  const store = await openStore(':memory:');
  t.after(() => store.close());
  const ca = new CertificateAuthority({ cert: parseCertificate(caDer), key: caKey, chain: [] });
  const service = composeEnrollment({ ca, store, config: { challenges: ['c'] } });
  const answers = [];
  for (let i = 0; i < WARM + 2; i++) {
    const e = makeEnrollment({
      key: pooledRsaKey(i % 4),
      recipient: caCert,
      challenge: 'c',
      cn: `device-${i}`,
    });
    answers.push(await service.pkiOperation(e.der, { remoteAddress: '192.0.2.1' }));
  }
  const [a, b] = answers.slice(-2);
  assert.equal(a!.log.outcome, 'SUCCESS');
  assert.equal(b!.log.outcome, 'SUCCESS');
  assert.equal(sameMap(a!.log, b!.log), true);
  assert.equal(sameMap(a!, b!), true);
});
