/**
 * Interop with real openssl: CertReps we build verify with `openssl cms -verify` and their
 * envelopes open with `openssl cms -decrypt`; PKCSReqs whose envelopes openssl made (DER,
 * -stream BER, OAEP) decode and open with our codec.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildSignedData } from '../../src/cms/index.js';
import {
  decodePkiRequest,
  encodeCertRep,
  MessageType,
  openEnvelope,
  PkiStatus,
  scepAttributes,
} from '../../src/scep/index.js';
import { parseCsr } from '../../src/pkix/csr.js';
import type { CipherName, DigestName } from '../../src/crypto/algorithms.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { makeIssued } from '../helpers/pki.js';
import { CHALLENGE, fixture, toBer } from '../helpers/scep-fixtures.js';

function openssl(args: string[], input?: Buffer): Buffer {
  const r = spawnSync('openssl', args, { input, timeout: 30_000 });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr?.toString()}`);
  return r.stdout;
}

test('our CertRep SUCCESS verifies and decrypts with openssl cms', (t) => {
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'scepter-ossl-'));
  try {
    const f = fixture();
    const issued = makeIssued({ subject: 'CN=device-1', issuer: f.ca, key: f.client.key });
    writeFileSync(join(dir, 'client.pem'), f.client.certPem);
    writeFileSync(join(dir, 'client.key'), f.client.keyPem);
    const combos: Array<[CipherName, DigestName, 'rsa' | 'oaep-sha1' | 'oaep-sha256']> = [
      ['aes128', 'sha256', 'rsa'],
      ['aes192', 'sha1', 'rsa'],
      ['aes256', 'sha512', 'oaep-sha1'],
      ['des3', 'sha384', 'rsa'],
      ['aes256', 'sha224', 'oaep-sha256'],
    ];
    for (const [cipher, digest, keyTransport] of combos) {
      const rep = encodeCertRep({
        transactionId: 'ossl',
        recipientNonce: randomBytes(16),
        status: PkiStatus.SUCCESS,
        certificates: [issued.certDer, f.ca.certDer],
        recipientCert: f.client.cert,
        cipher,
        keyTransport,
        signer: { cert: f.ca.cert, key: f.ca.key },
        digest,
      });
      writeFileSync(join(dir, 'rep.der'), rep);
      const inner = openssl([
        'cms',
        '-verify',
        '-noverify',
        '-inform',
        'DER',
        '-in',
        join(dir, 'rep.der'),
        '-binary',
      ]);
      writeFileSync(join(dir, 'env.der'), inner);
      const deg = openssl([
        'cms',
        '-decrypt',
        '-inform',
        'DER',
        '-in',
        join(dir, 'env.der'),
        '-binary',
        '-inkey',
        join(dir, 'client.key'),
        '-recip',
        join(dir, 'client.pem'),
      ]);
      const pem = openssl(['pkcs7', '-inform', 'DER', '-print_certs'], deg).toString();
      assert.match(pem, /subject=CN ?= ?device-1/, `${cipher}/${digest}/${keyTransport}`);
      assert.ok(pem.indexOf('device-1') < pem.indexOf('Scepter Test CA'), 'issued certificate first');
    }
    for (const status of [PkiStatus.FAILURE, PkiStatus.PENDING]) {
      const rep = encodeCertRep({
        transactionId: 'ossl',
        recipientNonce: randomBytes(16),
        status,
        failInfoText: 'nope',
        signer: { cert: f.ca.cert, key: f.ca.key },
        digest: 'sha256',
      });
      writeFileSync(join(dir, 'rep.der'), rep);
      writeFileSync(join(dir, 'empty'), Buffer.alloc(0)); // no eContent: openssl treats it as detached
      const out = openssl([
        'cms',
        '-verify',
        '-noverify',
        '-inform',
        'DER',
        '-in',
        join(dir, 'rep.der'),
        '-binary',
        '-content',
        join(dir, 'empty'),
      ]);
      assert.equal(out.length, 0, 'no content in FAILURE/PENDING');
      const printed = openssl([
        'cms',
        '-cmsout',
        '-print',
        '-inform',
        'DER',
        '-in',
        join(dir, 'rep.der'),
      ]).toString();
      assert.match(printed, /2\.16\.840\.1\.113733\.1\.9\.3/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PKCSReq with openssl-made envelopes (DER, -stream BER, OAEP) decodes and opens', (t) => {
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'scepter-ossl-'));
  try {
    const f = fixture();
    writeFileSync(join(dir, 'csr.der'), f.csr);
    writeFileSync(join(dir, 'ca.pem'), f.ca.certPem);
    const variants: Array<[string, string[], CipherName]> = [
      ['aes128', ['-aes128'], 'aes128'],
      ['aes256', ['-aes256'], 'aes256'],
      ['des3', ['-des3'], 'des3'],
      ['aes256 stream', ['-aes256', '-stream'], 'aes256'],
      ['des3 stream', ['-des3', '-stream'], 'des3'],
      [
        'aes128 oaep',
        ['-aes128', '-recip', join(dir, 'ca.pem'), '-keyopt', 'rsa_padding_mode:oaep'],
        'aes128',
      ],
      [
        'aes256 oaep-sha256',
        [
          '-aes256',
          '-recip',
          join(dir, 'ca.pem'),
          '-keyopt',
          'rsa_padding_mode:oaep',
          '-keyopt',
          'rsa_oaep_md:sha256',
        ],
        'aes256',
      ],
    ];
    for (const [label, args, cipher] of variants) {
      const recip = args.includes('-recip') ? [] : [join(dir, 'ca.pem')];
      const env = openssl([
        'cms',
        '-encrypt',
        '-binary',
        '-in',
        join(dir, 'csr.der'),
        '-outform',
        'DER',
        ...args,
        ...recip,
      ]);
      if (label.includes('stream')) assert.equal(env[1], 0x80, 'openssl -stream gives indefinite-length BER');
      const nonce = randomBytes(16);
      const msg = buildSignedData({
        signerCert: f.client.cert,
        signerKey: f.client.key,
        digest: 'sha256',
        content: env,
        attributes: scepAttributes({
          messageType: MessageType.PKCSReq,
          transactionId: `ossl-${label}`,
          senderNonce: nonce,
        }),
      });
      for (const input of [msg, toBer(msg, 64)]) {
        const req = decodePkiRequest(input);
        assert.equal(req.failure, undefined, `${label}: ${req.failure?.text}`);
        assert.ok(req.senderNonce.equals(nonce));
        const opened = openEnvelope(req, [f.caRecipient]);
        assert.equal(opened.cipher, cipher, label);
        assert.equal(parseCsr(opened.content).challengePassword, CHALLENGE);
      }
      if (label === 'aes128') {
        writeFileSync(join(dir, 'req.der'), msg);
        writeFileSync(join(dir, 'ca.key'), f.ca.keyPem);
        const r = spawnSync(
          process.execPath,
          [
            '--import',
            'tsx',
            'src/cli/main.ts',
            'inspect',
            join(dir, 'req.der'),
            '--key',
            join(dir, 'ca.key'),
          ],
          { encoding: 'utf8', timeout: 60_000 },
        );
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /transactionId: ossl-aes128/);
        assert.match(r.stdout, /cipher: aes-128-cbc/);
        assert.match(r.stdout, /subject: .*CN=device-1/);
        assert.match(r.stdout, /subjectAltNames: dns:device-1.example/);
        assert.match(r.stdout, /challenge: present/);
        assert.ok(!r.stdout.includes(CHALLENGE));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
