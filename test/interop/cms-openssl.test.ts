/**
 * Differential tests against the real `openssl cms` / `openssl pkcs7` (OpenSSL 3): what we
 * build, OpenSSL reads; what OpenSSL builds (DER and -stream BER), we read.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { OID } from '../../src/asn1/oids.js';
import {
  buildDegenerate,
  buildEnvelopedData,
  buildSignedData,
  CmsError,
  decryptEnvelopedData,
  findSignerCertificate,
  parseEnvelopedData,
  parseSignedData,
  verifySignerInfo,
  type KeyTransport,
} from '../../src/cms/index.js';
import { RsaKeyTransport } from '../../src/crypto/key-transport.js';
import type { CipherName, DigestName } from '../../src/crypto/algorithms.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { makeIssued, makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';

const HAVE_OPENSSL = hasCommand('openssl');
const dir = mkdtempSync(join(tmpdir(), 'scepter-cms-openssl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const me = makeSelfSigned({ subject: 'CN=scepter cms interop,O=test', key: pooledRsaKey(0) });
const decrypters = [{ cert: me.cert, transport: new RsaKeyTransport(me.key) }];
const CERT = join(dir, 'me.pem');
const KEY = join(dir, 'me.key');
writeFileSync(CERT, me.certPem);
writeFileSync(KEY, me.keyPem);

let seq = 0;
function tmp(name: string, data?: Buffer | string): string {
  const p = join(dir, `${seq++}-${name}`);
  if (data !== undefined) writeFileSync(p, data);
  return p;
}

function openssl(args: string[], input?: Buffer): { status: number; stdout: Buffer; stderr: string } {
  const r = spawnSync('openssl', args, { input, maxBuffer: 16 * 1024 * 1024 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}

function ok(args: string[], input?: Buffer): Buffer {
  const r = openssl(args, input);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const DIGESTS: DigestName[] = ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'];

test('our SignedData verifies with openssl cms -verify (every digest, -binary)', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  for (const digest of DIGESTS) {
    const content = randomBytes(200);
    const sd = buildSignedData({ signerCert: me.cert, signerKey: me.key, digest, content });
    const out = ok(['cms', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', tmp('sd.der', sd)]);
    assert.deepEqual(out, content, digest);
    // a flipped content byte must make OpenSSL refuse it too
    const bad = Buffer.from(sd);
    const at = bad.indexOf(content.subarray(0, 16));
    bad[at + 3]! ^= 1;
    assert.notEqual(
      openssl(['cms', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', tmp('bad.der', bad)])
        .status,
      0,
    );
  }
});

test('our SignedData without content (FAILURE/PENDING shape) parses in openssl with the signer', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const sd = buildSignedData({ signerCert: me.cert, signerKey: me.key, digest: 'sha256' });
  const printed = ok([
    'cms',
    '-cmsout',
    '-print',
    '-inform',
    'DER',
    '-in',
    tmp('nocontent.der', sd),
  ]).toString();
  assert.match(printed, /eContent: <ABSENT>/);
  assert.match(printed, /messageDigest/);
  assert.match(printed, /signingTime/);
});

test('our degenerate certs-only parses with openssl pkcs7 -print_certs, order kept', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const ca = makeSelfSigned({ subject: 'CN=Interop CA', key: pooledRsaKey(1), ca: true });
  const leaf = makeIssued({ subject: 'CN=Interop leaf', issuer: ca, key: pooledRsaKey(2) });
  const deg = buildDegenerate({ certificates: [leaf.certDer, ca.certDer] });
  const out = ok(['pkcs7', '-inform', 'DER', '-in', tmp('deg.p7b', deg), '-print_certs']).toString();
  const subjects = [...out.matchAll(/^subject=(.*)$/gm)].map((m) => m[1]);
  assert.deepEqual(subjects, ['CN = Interop leaf', 'CN = Interop CA']);
  const pem = out.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/)![0];
  assert.equal(pem.replace(/\s/g, ''), leaf.certPem.replace(/\s/g, ''));
});

test('our EnvelopedData decrypts with openssl cms -decrypt (ciphers × key transports)', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  for (const cipher of ['aes128', 'aes192', 'aes256', 'des3'] as CipherName[]) {
    for (const keyTransport of ['rsa', 'oaep-sha1', 'oaep-sha256'] as KeyTransport[]) {
      const content = randomBytes(77);
      const env = buildEnvelopedData({ content, recipient: me.cert, cipher, keyTransport });
      const out = ok([
        'cms',
        '-decrypt',
        '-binary',
        '-inform',
        'DER',
        '-in',
        tmp('env.der', env),
        '-recip',
        CERT,
        '-inkey',
        KEY,
      ]);
      assert.deepEqual(out, content, `${cipher}/${keyTransport}`);
    }
  }
});

function opensslSign(content: Buffer, extra: string[]): Buffer {
  return ok([
    'cms',
    '-sign',
    '-binary',
    '-nodetach',
    '-outform',
    'DER',
    '-in',
    tmp('content.bin', content),
    '-signer',
    CERT,
    '-inkey',
    KEY,
    ...extra,
  ]);
}

function verifyOurs(bytes: Buffer): { digest: DigestName; content: Buffer | undefined } {
  const sd = parseSignedData(bytes);
  assert.equal(sd.signerInfos.length, 1);
  const si = sd.signerInfos[0]!;
  const cert = findSignerCertificate(sd, si);
  assert.ok(cert, 'signer certificate found');
  assert.equal(cert.fingerprint, me.cert.fingerprint);
  return { digest: verifySignerInfo(sd, si, cert), content: sd.eContent };
}

test('openssl cms -sign (DER and -stream BER, -md, -keyid) parses and verifies with ours', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  for (const md of ['sha1', 'sha256', 'sha512'] as DigestName[]) {
    for (const stream of [false, true]) {
      for (const keyid of [false, true]) {
        const content = randomBytes(stream ? 3000 : 100);
        const bytes = opensslSign(content, [
          '-md',
          md,
          ...(stream ? ['-stream'] : []),
          ...(keyid ? ['-keyid'] : []),
        ]);
        const label = `${md}${stream ? ' stream' : ''}${keyid ? ' keyid' : ''}`;
        if (stream) assert.equal(bytes[1], 0x80, `${label}: expected indefinite-length BER`);
        const sd = parseSignedData(bytes);
        const sid = sd.signerInfos[0]!.sid;
        assert.equal('subjectKeyId' in sid, keyid, label);
        const v = verifyOurs(bytes);
        assert.equal(v.digest, md, label);
        assert.deepEqual(v.content, content, label);
      }
    }
  }
});

test('openssl-signed messages: tampered content → badMessageCheck, -md md5 → badAlg', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const content = Buffer.from('the content openssl signed');
  const bytes = opensslSign(content, ['-md', 'sha256']);
  const bad = Buffer.from(bytes);
  bad[bad.indexOf(content) + 4]! ^= 1;
  assert.throws(
    () => verifyOurs(bad),
    (e: unknown) => e instanceof CmsError && e.code === 'badMessageCheck',
  );
  const md5 = openssl([
    'cms',
    '-sign',
    '-binary',
    '-nodetach',
    '-outform',
    'DER',
    '-md',
    'md5',
    '-in',
    tmp('c.bin', content),
    '-signer',
    CERT,
    '-inkey',
    KEY,
  ]);
  if (md5.status !== 0) {
    t.diagnostic(`openssl refuses to sign with MD5 here: ${md5.stderr.trim()}`);
    return;
  }
  assert.equal(parseSignedData(md5.stdout).signerInfos[0]!.digestAlgorithm, OID.md5);
  assert.throws(
    () => verifyOurs(md5.stdout),
    (e: unknown) => e instanceof CmsError && e.code === 'badAlg',
  );
});

function opensslEncrypt(content: Buffer, args: string[]): Buffer {
  return ok(['cms', '-encrypt', '-binary', '-outform', 'DER', '-in', tmp('pt.bin', content), ...args]);
}

test('openssl cms -encrypt (ciphers, OAEP, DER and -stream) decrypts with ours', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const oaep = ['-keyopt', 'rsa_padding_mode:oaep'];
  const oaep256 = [...oaep, '-keyopt', 'rsa_oaep_md:sha256'];
  for (const [cipherFlag, name] of [
    ['-aes128', 'aes128'],
    ['-aes256', 'aes256'],
    ['-des3', 'des3'],
  ] as const) {
    for (const [ktName, kt] of [
      ['pkcs1', []],
      ['oaep-sha1', oaep],
      ['oaep-sha256', oaep256],
    ] as const) {
      for (const stream of [false, true]) {
        const content = randomBytes(stream ? 5000 : 123);
        const bytes = opensslEncrypt(content, [
          cipherFlag,
          ...(stream ? ['-stream'] : []),
          '-recip',
          CERT,
          ...kt,
        ]);
        const label = `${name}/${ktName}${stream ? ' stream' : ''}`;
        if (stream) assert.equal(bytes[1], 0x80, `${label}: expected indefinite-length BER`);
        const out = decryptEnvelopedData(parseEnvelopedData(bytes), decrypters);
        assert.equal(out.cipher, name, label);
        assert.deepEqual(out.content, content, label);
      }
    }
  }
});

test('openssl -encrypt with -keyid (subjectKeyIdentifier rid) decrypts with ours', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const content = randomBytes(50);
  const bytes = opensslEncrypt(content, ['-aes256', '-keyid', '-recip', CERT]);
  const env = parseEnvelopedData(bytes);
  assert.ok('subjectKeyId' in env.recipients[0]!.rid);
  assert.deepEqual(decryptEnvelopedData(env, decrypters).content, content);
});

test('openssl single-DES envelope: badAlg by default, decrypts with allowSingleDes', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const content = Buffer.from('micromdm scepclient style request');
  const r = openssl([
    'cms',
    '-encrypt',
    '-binary',
    '-outform',
    'DER',
    '-des',
    '-provider',
    'legacy',
    '-provider',
    'default',
    '-in',
    tmp('des.bin', content),
    '-recip',
    CERT,
  ]);
  if (r.status !== 0) {
    t.skip(`openssl cannot make single-DES envelopes here (no legacy provider): ${r.stderr.trim()}`);
    return;
  }
  const env = parseEnvelopedData(r.stdout);
  assert.equal(env.contentEncryptionAlgorithm, OID.desCbc);
  assert.throws(
    () => decryptEnvelopedData(env, decrypters),
    (e: unknown) => e instanceof CmsError && e.code === 'badAlg' && /allow-single-des/.test(e.message),
  );
  assert.deepEqual(decryptEnvelopedData(env, decrypters, { allowSingleDes: true }).content, content);
});

test('openssl envelope to someone else → badRequest', (t) => {
  if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
  const other = makeSelfSigned({ subject: 'CN=not us', key: pooledRsaKey(1) });
  const bytes = opensslEncrypt(Buffer.from('x'), ['-aes128', '-recip', tmp('other.pem', other.certPem)]);
  assert.throws(
    () => decryptEnvelopedData(parseEnvelopedData(bytes), decrypters),
    (e: unknown) => e instanceof CmsError && e.code === 'badRequest',
  );
});
