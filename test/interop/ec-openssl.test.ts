/**
 * EC device keys and an EC CA behind an RSA RA, against the real `openssl`:
 * - `openssl cms -decrypt -pwri_password` and `-recip/-inkey` (EC) open the PasswordRecipientInfo
 *   and KeyAgreeRecipientInfo envelopes scepter builds; scepter opens the ones
 *   `openssl cms -encrypt -pwri_password` and `-encrypt -recip ec.pem` build (P-256, P-384);
 * - end to end: scepter's client enrolls P-256 and P-384 keys (reply to the challenge, PWRI)
 *   and renews them (no challenge: ECDH key agreement) against a scepter server whose CA key is
 *   EC P-384 behind an RSA RA; `openssl verify` accepts the ECDSA-signed certificates and
 *   `openssl crl -verify` the CRL; an RSA client is unaffected; the CLI enrolls with
 *   `--key-type ec-p256`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEnvelopedData, decryptEnvelopedDataAs, parseEnvelopedData } from '../../src/cms/index.js';
import type { CipherName } from '../../src/crypto/algorithms.js';
import {
  Agent,
  keyMatchesCert,
  parseAgentConfig,
  readPair,
  ScepClient,
  ScepFailureError,
  type IssuedResult,
} from '../../src/client/index.js';
import { fromPem, toPem } from '../../src/pkix/certificate.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { scepterCli } from '../helpers/cli.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { makeSelfSigned } from '../helpers/pki.js';
import { seeded, TEST_CHALLENGE } from '../helpers/scep-server.js';

const HAVE_OPENSSL = hasCommand('openssl');
const dir = mkdtempSync(join(tmpdir(), 'scepter-ec-openssl-'));
const running: RunningServer[] = [];
after(async () => {
  for (const s of running) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
function tmp(name: string, data?: Buffer | string): string {
  const p = join(dir, `${seq++}-${name}`);
  if (data !== undefined) writeFileSync(p, data);
  return p;
}

function ok(args: string[], input?: Buffer): Buffer {
  const r = spawnSync('openssl', args, { input, maxBuffer: 16 * 1024 * 1024 });
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

function ecIdentity(curve: 'prime256v1' | 'secp384r1') {
  const key = generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
  const me = makeSelfSigned({ subject: `CN=ec interop ${curve}`, key });
  return { ...me, certFile: tmp('ec.pem', me.certPem), keyFile: tmp('ec.key', me.keyPem) };
}

const PASSWORD = 'interop-challenge-123';
const CONTENT = Buffer.from('scepter EC interop content\n');

for (const curve of ['prime256v1', 'secp384r1'] as const) {
  test(`${curve}: openssl opens scepter's PWRI and KARI envelopes`, (t) => {
    if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
    const me = ecIdentity(curve);
    for (const cipher of ['aes128', 'aes256'] as CipherName[]) {
      const pw = tmp(
        'pw.der',
        buildEnvelopedData({ content: CONTENT, password: Buffer.from(PASSWORD), cipher }),
      );
      const out1 = ok([
        'cms',
        '-decrypt',
        '-inform',
        'DER',
        '-in',
        pw,
        '-pwri_password',
        PASSWORD,
        '-binary',
      ]);
      assert.ok(out1.equals(CONTENT), `PWRI ${cipher}`);
      const ka = tmp('kari.der', buildEnvelopedData({ content: CONTENT, recipient: me.cert, cipher }));
      const out2 = ok([
        'cms',
        '-decrypt',
        '-inform',
        'DER',
        '-in',
        ka,
        '-recip',
        me.certFile,
        '-inkey',
        me.keyFile,
        '-binary',
      ]);
      assert.ok(out2.equals(CONTENT), `KARI ${cipher}`);
    }
  });

  test(`${curve}: scepter opens openssl's -pwri_password and -recip (EC) envelopes`, (t) => {
    if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
    const me = ecIdentity(curve);
    const inFile = tmp('content.bin', CONTENT);
    for (const cipher of ['-aes128', '-aes256']) {
      const pw = ok([
        'cms',
        '-encrypt',
        '-binary',
        '-outform',
        'DER',
        '-in',
        inFile,
        cipher,
        '-pwri_password',
        PASSWORD,
      ]);
      const env = parseEnvelopedData(pw);
      assert.equal(env.passwordRecipients.length, 1);
      const a = decryptEnvelopedDataAs(env, { cert: me.cert, key: me.key, password: Buffer.from(PASSWORD) });
      assert.ok(a.content.equals(CONTENT), `openssl PWRI ${cipher}`);
      assert.throws(() =>
        decryptEnvelopedDataAs(env, { cert: me.cert, key: me.key, password: Buffer.from('wrong') }),
      );
      const ka = ok(['cms', '-encrypt', '-binary', '-outform', 'DER', '-in', inFile, cipher, me.certFile]);
      const b = decryptEnvelopedDataAs(parseEnvelopedData(ka), { cert: me.cert, key: me.key });
      assert.ok(b.content.equals(CONTENT), `openssl KARI ${cipher}`);
    }
  });
}

async function ecCaServer(caKeyType: 'ec-p256' | 'ec-p384', extra: Record<string, unknown> = {}) {
  const srv = await startServer(
    seeded({
      dataDir: join(dir, `srv-${seq++}`),
      keySize: 2048,
      caKeyType,
      challenge: TEST_CHALLENGE,
      logLevel: 'silent',
      ...extra,
    }),
  );
  running.push(srv);
  return srv;
}

function verifyWithOpenssl(caPem: string, issued: IssuedResult): void {
  const caFile = tmp('ca.pem', caPem);
  const certFile = tmp('cert.pem', toPem(issued.certificate.der));
  const out = ok(['verify', '-CAfile', caFile, certFile]).toString();
  assert.match(out, /: OK/);
}

test('EC P-384 CA behind an RSA RA: EC and RSA devices enroll and renew; openssl verifies certs and CRL', async (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const srv = await ecCaServer('ec-p384');
  const probe = new ScepClient({ url: srv.url });
  const ca = await probe.getCaCert();
  assert.equal(ca.ra, true);
  assert.equal(ca.ca.publicKey().asymmetricKeyType, 'ec');
  assert.equal(ca.encryption.publicKey().asymmetricKeyType, 'rsa', 'envelopes go to the RSA RA');
  const caPem = toPem(ca.ca.der);
  const c = new ScepClient({ url: srv.url, caFingerprint: ca.anchorFingerprint });

  for (const keyType of ['ec-p256', 'ec-p384'] as const) {
    const r = (await c.enroll({
      subject: `CN=ec-${keyType}`,
      challenge: TEST_CHALLENGE,
      keyType,
    })) as IssuedResult;
    assert.equal(r.status, 'issued');
    assert.equal(r.key.asymmetricKeyType, 'ec');
    // ECDSA with SHA-384 from the P-384 CA.
    const text = ok(['x509', '-noout', '-text'], Buffer.from(toPem(r.certificate.der))).toString();
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA384/);
    assert.match(text, /Key Agreement/, 'an EC device key gets keyAgreement, not keyEncipherment');
    verifyWithOpenssl(caPem, r);

    // Renewal signed by the old EC certificate, no challenge: the reply comes by key agreement.
    const same = (await c.renew({ cert: r.certificate, key: r.key })) as IssuedResult;
    assert.equal(same.via, 'RenewalReq');
    assert.ok(same.certificate.spki.equals(r.certificate.spki));
    verifyWithOpenssl(caPem, same);
    const fresh = (await c.renew({ cert: same.certificate, key: same.key, newKey: true })) as IssuedResult;
    assert.ok(!fresh.certificate.spki.equals(same.certificate.spki));
    assert.equal(fresh.key.asymmetricKeyDetails?.namedCurve, r.key.asymmetricKeyDetails?.namedCurve);
    // Renewal with a challenge too: the reply goes to the challenge (PWRI).
    const withPw = (await c.renew({
      cert: fresh.certificate,
      key: fresh.key,
      challenge: TEST_CHALLENGE,
    })) as IssuedResult;
    verifyWithOpenssl(caPem, withPw);
  }

  // An RSA device against the EC CA: unchanged key transport.
  const rsa = (await c.enroll({ subject: 'CN=rsa-on-ec-ca', challenge: TEST_CHALLENGE })) as IssuedResult;
  assert.equal(rsa.key.asymmetricKeyType, 'rsa');
  verifyWithOpenssl(caPem, rsa);
  const text = ok(['x509', '-noout', '-text'], Buffer.from(toPem(rsa.certificate.der))).toString();
  assert.match(text, /Key Encipherment/);

  // A P-521 key is refused with a clear badAlg text.
  const p521 = generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey;
  await assert.rejects(c.enroll({ subject: 'CN=p521', challenge: TEST_CHALLENGE, key: p521 }), /P-256/);

  // The CRL is ECDSA-signed and `openssl crl -verify` accepts it.
  const crl = await c.getCrl(rsa.certificate);
  const crlFile = tmp('crl.der', crl.crl);
  const caFile = tmp('ca.pem', caPem);
  const v = spawnSync('openssl', [
    'crl',
    '-inform',
    'DER',
    '-in',
    crlFile,
    '-CAfile',
    caFile,
    '-noout',
    '-verify',
  ]);
  assert.equal(v.status, 0, v.stderr.toString());
  assert.match(v.stderr.toString() + v.stdout.toString(), /verify OK/);
});

test('EC device: a wrong challenge is refused (FAILURE), never answered to the wrong password', async (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const srv = await ecCaServer('ec-p256');
  const c = new ScepClient({ url: srv.url });
  await assert.rejects(
    c.enroll({ subject: 'CN=wrong-pw', challenge: 'not-the-challenge', keyType: 'ec-p256' }),
    (e: unknown) => e instanceof ScepFailureError,
  );
});

function cli(args: string[], env: Record<string, string> = {}) {
  return scepterCli(args, { env });
}

test('CLI: scepter enroll --key-type ec-p256, then renew it', async (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const srv = await ecCaServer('ec-p384');
  const out = join(dir, `cli-${seq++}`);
  const e = await cli(
    ['enroll', '--url', srv.url, '--subject', 'CN=cli-ec', '--key-type', 'ec-p256', '--out', out],
    {
      SCEPTER_CHALLENGE: TEST_CHALLENGE,
    },
  );
  assert.equal(e.status, 0, e.stderr + e.stdout);
  const key: string = readFileSync(join(out, 'key.pem'), 'utf8');
  assert.match(ok(['pkey', '-noout', '-text'], Buffer.from(key)).toString(), /NIST CURVE: P-256/);
  const cert = fromPem(readFileSync(join(out, 'cert.pem'), 'utf8'))[0]!;
  const r = await cli([
    'renew',
    '--url',
    srv.url,
    '--cert',
    join(out, 'cert.pem'),
    '--key',
    join(out, 'key.pem'),
    '--new-key',
    '--key-type',
    'ec-p384',
    '--out',
    out,
  ]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const renewed = fromPem(readFileSync(join(out, 'cert.pem'), 'utf8'))[0]!;
  assert.ok(!renewed.equals(cert));
  const newKey = readFileSync(join(out, 'key.pem'), 'utf8');
  assert.match(ok(['pkey', '-noout', '-text'], Buffer.from(newKey)).toString(), /NIST CURVE: P-384/);
  const bad = await cli([
    'enroll',
    '--url',
    srv.url,
    '--subject',
    'CN=x',
    '--key-type',
    'ec-p521',
    '--out',
    join(dir, 'x'),
  ]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--key-type must be rsa, ec-p256 or ec-p384/);
  // CA-only with an EC CA key cannot work for SCEP: refused before anything is written.
  const caOnly = await cli([
    'ca',
    'init',
    '--data',
    join(dir, 'ec-ca-only'),
    '--ca-key-type',
    'ec-p256',
    '--ca-only',
  ]);
  assert.equal(caOnly.status, 2);
  assert.match(caOnly.stderr, /EC CA key cannot decrypt SCEP requests/);
});

test('agent with keyType ec-p384: enrolls, then renews with a fresh EC key (simulated clock)', async () => {
  const srv = await ecCaServer('ec-p256');
  const base = join(dir, `agent-${seq++}`);
  let clock = Date.now();
  const cfg = parseAgentConfig(
    {
      url: srv.url,
      challenge: TEST_CHALLENGE,
      keyType: 'ec-p384',
      certificates: [{ name: 'gw', subject: 'CN=agent-ec,O=scepter', out: 'gw', renewAt: 0.5 }],
    },
    base,
  );
  assert.equal(cfg.certificates[0]!.keyType, 'ec-p384');
  assert.throws(
    () =>
      parseAgentConfig(
        { url: srv.url, keyType: 'ec-p521', certificates: [{ subject: 'CN=a', out: 'o' }] },
        base,
      ),
    /config\.keyType must be rsa, ec-p256 or ec-p384/,
  );
  const agent = new Agent(cfg, { now: () => clock });
  const [first] = await agent.runOnce();
  assert.equal(first?.action, 'enrolled');
  const p1 = await readPair(join(base, 'gw'));
  assert.equal(p1?.key.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  clock += 300 * 86_400_000; // past renewAt of a one-year certificate
  const [second] = await agent.runOnce();
  assert.equal(second?.action, 'renewed');
  const p2 = await readPair(join(base, 'gw'));
  assert.ok(p2 && keyMatchesCert(p2.key, p2.certificate));
  assert.equal(p2.key.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  assert.ok(!p2.certificate.spki.equals(p1!.certificate.spki), 'renewed with a fresh key');
});

test('EC device under manual approval: PENDING, then CertPoll (no challenge) answered by key agreement', async () => {
  const srv = await ecCaServer('ec-p384', { lifecycle: { approval: { mode: 'manual' as const } } });
  const c = new ScepClient({ url: srv.url });
  const pending = await c.enroll({ subject: 'CN=ec-pending', challenge: TEST_CHALLENGE, keyType: 'ec-p256' });
  assert.equal(pending.status, 'pending');
  assert.ok(await srv.enrollment!.store.decide(pending.transactionId, 'approved'));
  assert.ok(pending.status === 'pending');
  const issued = await c.poll(pending);
  assert.equal(issued.status, 'issued');
  assert.equal(issued.key.asymmetricKeyType, 'ec');
});
