/**
 * PKCSReqs whose pkcsPKIEnvelope is made by `openssl cms -encrypt` (AES-128/256, 3DES;
 * RSA PKCS#1 v1.5 and OAEP), signed with SHA-1/256/512, sent as DER and as indefinite-length
 * BER, by POST and by GET (`+` left as is, `%0A` line breaks). Every one must get SUCCESS, and
 * the CertRep must verify with `openssl cms -verify -noverify` and open with
 * `openssl cms -decrypt`, giving the certificate for the device key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSignedData } from '../../src/cms/index.js';
import { fromPem, parseCertificate, toPem } from '../../src/pkix/certificate.js';
import { MessageType, PkiStatus, scepAttributes, type CertRep } from '../../src/scep/index.js';
import { spkiOf } from '../../src/crypto/keys.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { toBer } from '../helpers/scep-fixtures.js';
import { caCerts, csrOf, device, openCertRep, tempDir, testServer } from '../helpers/scep-server.js';

function openssl(
  args: string[],
  input?: Buffer,
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', args);
    const out: Buffer[] = [];
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    p.stdin.on('error', () => undefined); // commands reading -in files may close stdin early
    p.stdin.end(input ?? Buffer.alloc(0));
  });
}

async function mustOpenssl(args: string[], input?: Buffer): Promise<Buffer> {
  const r = await openssl(args, input);
  assert.equal(r.code, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

type Cipher = 'aes128' | 'aes256' | 'des3';
type Padding = 'pkcs1' | 'oaep';
type Digest = 'sha1' | 'sha256' | 'sha512';

const OPENSSL_CIPHER: Record<Cipher, string> = {
  aes128: '-aes-128-cbc',
  aes256: '-aes-256-cbc',
  des3: '-des3',
};

test('openssl-made envelopes: every cipher × key transport × digest, DER and BER, POST and GET', async (t) => {
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const server = await testServer(t);
  const work = tempDir(t, 'scepter-ossl-');
  const trusted = await caCerts(server.url);
  const caPem = join(work, 'ca.pem');
  writeFileSync(caPem, toPem(trusted[0]!.der));
  const d = device('CN=openssl-dev,O=Interop', { pool: 1 });
  const signerPem = join(work, 'signer.pem');
  const keyPem = join(work, 'signer.key');
  writeFileSync(signerPem, d.signer.certPem);
  writeFileSync(keyPem, d.signer.keyPem);
  const csrPath = join(work, 'csr.der');
  writeFileSync(csrPath, csrOf(d));

  const cases: Array<{ cipher: Cipher; padding: Padding; digest: Digest; ber: boolean; get: boolean }> = [];
  let i = 0;
  for (const cipher of ['aes128', 'aes256', 'des3'] as const) {
    for (const padding of ['pkcs1', 'oaep'] as const) {
      for (const digest of ['sha1', 'sha256', 'sha512'] as const) {
        cases.push({ cipher, padding, digest, ber: i % 2 === 1, get: Math.floor(i / 2) % 2 === 1 });
        i++;
      }
    }
  }
  // Every form meets every transport at least once.
  for (const ber of [false, true])
    for (const get of [false, true]) assert.ok(cases.some((c) => c.ber === ber && c.get === get));

  let getWithPlus = 0;
  for (const c of cases) {
    const name = `${c.cipher}/${c.padding}/${c.digest}/${c.ber ? 'BER' : 'DER'}/${c.get ? 'GET' : 'POST'}`;
    const envArgs = [
      'cms',
      '-encrypt',
      '-binary',
      '-in',
      csrPath,
      '-outform',
      'DER',
      OPENSSL_CIPHER[c.cipher],
    ];
    if (c.ber) envArgs.push('-stream'); // openssl writes indefinite-length BER when streaming
    envArgs.push('-recip', caPem);
    if (c.padding === 'oaep') envArgs.push('-keyopt', 'rsa_padding_mode:oaep');
    const envelope = await mustOpenssl(envArgs);
    if (c.ber) assert.equal(envelope[1], 0x80, `${name}: openssl produced indefinite-length BER`);

    const transactionId = `ossl-${c.cipher}-${c.padding}-${c.digest}-${c.ber ? 'ber' : 'der'}`;
    const senderNonce = Buffer.from(`nonce-${transactionId}`.padEnd(16, '.').slice(0, 16));
    let message = buildSignedData({
      signerCert: d.signer.cert,
      signerKey: d.key,
      digest: c.digest,
      content: envelope,
      attributes: scepAttributes({ messageType: MessageType.PKCSReq, transactionId, senderNonce }),
    });
    if (c.ber) message = toBer(message, 64);

    let body: Buffer;
    if (c.get) {
      const b64 = message.toString('base64');
      if (b64.includes('+')) getWithPlus++;
      // `+` left unescaped (arrives as a space), `=` escaped, a %0A every 64 characters.
      const q = (b64.match(/.{1,64}/g) ?? []).map((l) => l.replace(/=/g, '%3D')).join('%0A');
      const r = await fetch(`${server.url}?operation=PKIOperation&message=${q}`);
      assert.equal(r.status, 200, name);
      body = Buffer.from(await r.arrayBuffer());
    } else {
      const r = await fetch(`${server.url}?operation=PKIOperation`, { method: 'POST', body: message });
      assert.equal(r.status, 200, name);
      body = Buffer.from(await r.arrayBuffer());
    }
    const rep: CertRep = openCertRep(body, { senderNonce, transactionId }, d, trusted);
    assert.equal(rep.status, PkiStatus.SUCCESS, `${name}: ${rep.failInfoText ?? ''}`);
    assert.equal(rep.cipher, c.cipher, `${name}: reply cipher mirrors the request`);
    assert.equal(rep.digest, c.digest, `${name}: reply digest mirrors the request`);

    // openssl: verify the CertRep signature, then decrypt its envelope with the device key.
    const repPath = join(work, `rep-${transactionId}.der`);
    writeFileSync(repPath, body);
    const inner = await mustOpenssl([
      'cms',
      '-verify',
      '-noverify',
      '-binary',
      '-inform',
      'DER',
      '-in',
      repPath,
    ]);
    const innerPath = join(work, `env-${transactionId}.der`);
    writeFileSync(innerPath, inner);
    const degenerate = await mustOpenssl([
      'cms',
      '-decrypt',
      '-binary',
      '-inform',
      'DER',
      '-in',
      innerPath,
      '-recip',
      signerPem,
      '-inkey',
      keyPem,
    ]);
    const pem = await mustOpenssl(['pkcs7', '-inform', 'DER', '-print_certs'], degenerate);
    const issued = parseCertificate(fromPem(pem.toString('latin1'))[0]!);
    assert.ok(issued.spki.equals(spkiOf(d.key)), `${name}: openssl found the certificate for the device key`);
    assert.ok(issued.der.equals(rep.certificates[0]!.der));
  }
  assert.ok(getWithPlus > 0, 'at least one GET message carried a + that arrived as a space');
});
