/**
 * CA and RA keys in an HSM, driven through the real SoftHSM2 (softhsm2-util, its PKCS#11
 * module, pkcs11-tool): `initCa` generating the keys on a token, enrollment and CRLs signed
 * with them through the server, non-extractable keys, start-up errors, and a token that goes
 * away while serving (503, then recovery), with and without worker threads.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { initCa } from '../../src/ca/keystore.js';
import { verifyCertificateSignature } from '../../src/pkix/certificate.js';
import { PkiStatus } from '../../src/scep/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { ensureBuilt } from '../helpers/build.js';
import { hasCommand, needPeer, softHsmAvailable, SOFTHSM_MODULE } from '../helpers/peers.js';
import {
  caCerts,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  recipientOf,
  tempDir,
  TEST_CHALLENGE,
} from '../helpers/scep-server.js';
import { softHsm, SOFTHSM_PIN, type SoftHsm } from '../helpers/softhsm.js';

function ready(t: TestContext): boolean {
  return needPeer(t, softHsmAvailable(), 'SoftHSM2 (softhsm2-util, libsofthsm2.so) with pkcs11js');
}

/** A data directory whose CA and RA keys are generated on the token "CA". */
async function tokenCa(t: TestContext, hsm: SoftHsm): Promise<string> {
  hsm.initToken('CA');
  const dataDir = tempDir(t);
  await initCa(dataDir, {
    keySize: 2048,
    ra: true,
    pkcs11Uri: hsm.uri('CA', 'ca-key', 1),
    raPkcs11Uri: hsm.uri('CA', 'ra-key', 2),
  });
  return dataDir;
}

async function serve(t: TestContext, dataDir: string, workers = 1): Promise<RunningServer> {
  const s = await startServer({ dataDir, challenge: TEST_CHALLENGE, logLevel: 'silent', workers });
  t.after(() => s.close());
  return s;
}

/** Enrolls one device; returns the HTTP status and, on 200, the certificate. */
async function enroll(s: RunningServer, pool: number, msg?: ReturnType<typeof pkcsReq>) {
  const certs = await caCerts(s.url);
  const d = device(`CN=hsm-device-${pool},O=Test`, { pool });
  const m = msg ?? pkcsReq(d, recipientOf(certs));
  const a = await postPki(s.url, m.der);
  if (a.status !== 200) return { status: a.status, body: a.body.toString(), msg: m, retryAfter: undefined };
  const rep = openCertRep(a.body, m, d, certs);
  assert.equal(rep.status, PkiStatus.SUCCESS);
  return { status: 200, cert: rep.certificates![0]!, certs, msg: m, body: '' };
}

test('ca init on a token; enrollment, CertRep and CRL signed by the token keys', async (t) => {
  if (!ready(t)) return;
  const hsm = softHsm(t);
  const dataDir = await tokenCa(t, hsm);
  // The data directory records the URIs, never a key or a PIN.
  for (const f of ['ca.key', 'ra.key']) {
    const text = readFileSync(join(dataDir, 'ca', f), 'utf8');
    assert.match(text, /^pkcs11:token=CA;object=(ca|ra)-key;id=%0[12]\?module-path=/);
    assert.doesNotMatch(text, /BEGIN|pin-value|4711/);
  }
  const s = await serve(t, dataDir);
  const r = await enroll(s, 3);
  assert.equal(r.status, 200);
  const caCert = r.certs!.find((c) => c.subjectRaw.equals(r.cert!.issuerRaw))!;
  assert.ok(
    verifyCertificateSignature(r.cert!, caCert.publicKey()),
    'issued certificate signed by the token CA key',
  );
  // The RA (token key) signed the CertRep: openCertRep checked it against GetCACert's RA.
  const crl = await fetch(`${s.origin}/crl`);
  assert.equal(crl.status, 200);
  const crlFile = join(tempDir(t), 'ca.crl');
  writeFileSync(crlFile, Buffer.from(await crl.arrayBuffer()));
  if (hasCommand('openssl')) {
    const v = spawnSync(
      'openssl',
      ['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', join(dataDir, 'ca', 'ca.crt'), '-noout'],
      { encoding: 'utf8' },
    );
    assert.match(v.stderr + v.stdout, /verify OK/, 'openssl verifies the CRL under the CA certificate');
  }
});

test('keys on the token are sensitive and not extractable', async (t) => {
  if (!ready(t)) return;
  const hsm = softHsm(t);
  await tokenCa(t, hsm);
  const p11js = createRequire(import.meta.url)('pkcs11js') as typeof import('pkcs11js');
  const m = new p11js.PKCS11();
  m.load(SOFTHSM_MODULE);
  m.C_Initialize();
  try {
    const slot = m.C_GetSlotList(true).find((x) => m.C_GetTokenInfo(x).label.trim() === 'CA')!;
    const session = m.C_OpenSession(slot, p11js.CKF_SERIAL_SESSION);
    m.C_Login(session, p11js.CKU_USER, SOFTHSM_PIN);
    m.C_FindObjectsInit(session, [{ type: p11js.CKA_CLASS, value: p11js.CKO_PRIVATE_KEY }]);
    const keys = m.C_FindObjects(session, 10);
    m.C_FindObjectsFinal(session);
    assert.equal(keys.length, 2, 'CA and RA private keys');
    for (const k of keys) {
      const [ext, sens] = m.C_GetAttributeValue(session, k, [
        { type: p11js.CKA_EXTRACTABLE },
        { type: p11js.CKA_SENSITIVE },
      ]);
      assert.deepEqual(ext!.value, Buffer.from([0]), 'CKA_EXTRACTABLE false');
      assert.deepEqual(sens!.value, Buffer.from([1]), 'CKA_SENSITIVE true');
      assert.throws(
        () => m.C_GetAttributeValue(session, k, [{ type: p11js.CKA_PRIVATE_EXPONENT }]),
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
    }
  } finally {
    m.C_Finalize();
  }
  if (hasCommand('pkcs11-tool')) {
    // The real tool's view of the same objects.
    const out = execFileSync(
      'pkcs11-tool',
      [
        '--module',
        SOFTHSM_MODULE,
        '--login',
        '--pin',
        SOFTHSM_PIN,
        '--token-label',
        'CA',
        '--list-objects',
        '--type',
        'privkey',
      ],
      { encoding: 'utf8' },
    );
    const objects = out.split(/(?=Private Key Object)/).filter((o) => o.trim() !== '');
    assert.equal(objects.length, 2);
    for (const o of objects) {
      assert.match(o, /Access:\s+sensitive, always sensitive, never extractable, local/);
      assert.match(o, /Usage:\s+decrypt, sign\n/, 'only decrypt and sign');
    }
  }
});

test('start-up errors name the module, the token, the PIN or the object', async (t) => {
  if (!ready(t)) return;
  const hsm = softHsm(t);
  const dataDir = await tokenCa(t, hsm);
  const keyFile = join(dataDir, 'ca', 'ca.key');
  const good = readFileSync(keyFile, 'utf8');
  const start = () => startServer({ dataDir, challenge: TEST_CHALLENGE, logLevel: 'silent' });
  const cases: Array<[string, string, RegExp]> = [
    [
      'missing module',
      good.replace(SOFTHSM_MODULE, '/nonexistent/libpkcs11.so'),
      /the CA key: PKCS#11 module \/nonexistent\/libpkcs11\.so does not exist/,
    ],
    [
      'missing object',
      good.replace('object=ca-key;id=%01', 'object=nope;id=%09'),
      /the CA key: .*no such private key on the token/,
    ],
    ['missing token', good.replace('token=CA', 'token=Elsewhere'), /the CA key: .*no such token is present/],
    [
      'missing PIN file',
      good.replace(hsm.pinFile, `${hsm.pinFile}.missing`),
      /the CA key: cannot read the PIN file/,
    ],
  ];
  for (const [what, content, expected] of cases) {
    writeFileSync(keyFile, content);
    await assert.rejects(start(), expected, what);
  }
  writeFileSync(keyFile, good);
  writeFileSync(hsm.pinFile, 'wrong-pin\n');
  await assert.rejects(start(), /the CA key: .*wrong PIN \(CKR_PIN_INCORRECT\)/, 'wrong PIN');
  writeFileSync(hsm.pinFile, `${SOFTHSM_PIN}\n`);
  const s = await serve(t, dataDir);
  assert.equal((await enroll(s, 4)).status, 200, 'starts once everything is right');
});

for (const workers of [1, 2]) {
  test(`a token that goes away answers 503, then the server recovers (workers ${workers})`, async (t) => {
    if (!ready(t)) return;
    const hsm = softHsm(t);
    const dataDir = await tokenCa(t, hsm);
    const s = await serve(t, dataDir, workers);
    // Several requests at once, so that with workers every engine has used the token.
    const first = await Promise.all([5, 6, 7, 8].map((p) => enroll(s, p)));
    for (const r of first) assert.equal(r.status, 200);

    hsm.remove();
    const certs = await caCerts(s.url);
    const d = device('CN=hsm-during-outage,O=Test', { pool: 9 });
    const msg = pkcsReq(d, recipientOf(certs));
    const down = await Promise.all([0, 1, 2, 3].map(() => postPki(s.url, msg.der)));
    for (const a of down) {
      assert.equal(a.status, 503, 'no certificate without the key');
      assert.match(a.body.toString(), /the CA key is unavailable/);
    }
    const crlDown = await fetch(`${s.origin}/crl`, { method: 'GET' });
    assert.ok(crlDown.status === 200 || crlDown.status === 503, 'a CRL already signed may be served');

    hsm.restore();
    // The same request again: issued now (the transaction was left open, not failed).
    const again = await Promise.all([0, 1, 2, 3].map(() => postPki(s.url, msg.der)));
    for (const a of again) {
      assert.equal(a.status, 200);
      const rep = openCertRep(a.body, msg, d, certs);
      assert.equal(rep.status, PkiStatus.SUCCESS);
    }
    const later = await Promise.all([10, 11].map((p) => enroll(s, p)));
    for (const r of later) assert.equal(r.status, 200);
  });
}

test('--pkcs11-existing: a key pair made by pkcs11-tool becomes the CA key', async (t) => {
  if (!ready(t)) return;
  if (!needPeer(t, hasCommand('pkcs11-tool'), 'pkcs11-tool (opensc)')) return;
  const hsm = softHsm(t);
  hsm.initToken('Existing');
  execFileSync(
    'pkcs11-tool',
    [
      '--module',
      SOFTHSM_MODULE,
      '--login',
      '--pin',
      SOFTHSM_PIN,
      '--token-label',
      'Existing',
      '--keypairgen',
      '--key-type',
      'rsa:2048',
      '--label',
      'made-elsewhere',
      '--id',
      '07',
    ],
    { stdio: 'pipe' },
  );
  const dataDir = tempDir(t);
  await initCa(dataDir, {
    ra: false,
    pkcs11Existing: true,
    pkcs11Uri: hsm.uri('Existing', 'made-elsewhere', 7),
  });
  await assert.rejects(
    initCa(tempDir(t), { ra: false, keySize: 2048, pkcs11Uri: hsm.uri('Existing', 'made-elsewhere', 7) }),
    /exists already/,
    'generation never shadows an existing key',
  );
  const s = await serve(t, dataDir);
  assert.equal((await enroll(s, 12)).status, 200);
});

test('scepter ca init --pkcs11-uri / --ra-pkcs11-uri, pin-value only when allowed, serve names a missing PIN', async (t) => {
  if (!ready(t)) return;
  const built = ensureBuilt();
  assert.equal(built.status, 0, built.output);
  const hsm = softHsm(t);
  hsm.initToken('Cli');
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [built.main, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
  const dataDir = tempDir(t);
  const withPin = hsm.uri('Cli', 'ca', 1, `pin-value=${SOFTHSM_PIN}`);
  const refused = cli(['ca', 'init', '--data', dataDir, '--key-size', '2048', '--pkcs11-uri', withPin]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /carries pin-value/);
  assert.doesNotMatch(refused.stderr, new RegExp(SOFTHSM_PIN), 'the PIN is not echoed');
  const ok = cli([
    'ca',
    'init',
    '--data',
    dataDir,
    '--key-size',
    '2048',
    '--allow-pin-value',
    '--pkcs11-uri',
    withPin,
    '--ra-pkcs11-uri',
    hsm.uri('Cli', 'ra', 2, `pin-value=${SOFTHSM_PIN}`),
  ]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /key {10}on the token pkcs11:token=Cli;object=ca;id=%01\?module-path=/);
  assert.match(ok.stdout, /RA key {7}on the token pkcs11:token=Cli;object=ra;id=%02/);
  assert.doesNotMatch(
    ok.stdout + readFileSync(join(dataDir, 'ca', 'ca.key'), 'utf8'),
    new RegExp(SOFTHSM_PIN),
  );
  // The recorded URI has no PIN: serve needs SCEPTER_PKCS11_PIN and says so.
  const noPin = cli(['serve', '--data', dataDir, '--port', '0', '--log-level', 'silent'], {
    SCEPTER_PKCS11_PIN: '',
  });
  assert.equal(noPin.status, 1);
  assert.match(
    noPin.stderr,
    /the CA key: no PIN: add pin-source=file:\/path to the PKCS#11 URI or set SCEPTER_PKCS11_PIN/,
  );
});
