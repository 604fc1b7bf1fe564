/**
 * Documented client behaviours (docs/clients.md), one test per client family, each reproduced
 * with requests crafted by our own builders (and `openssl` where it helps) and sent to a RUNNING
 * server over real HTTP:
 *
 * - Cisco IOS: HTTP/1.0 without Host, PKIOperation by GET although POST is advertised, `%0A`
 *   line breaks, unstructuredName/unstructuredAddress subject differing from the signer's,
 *   the CA certificate after the issued one in the CertRep, renewal as a PKCSReq signed by
 *   the old certificate;
 * - Apple macOS/iOS: `+` and `/` unescaped in a GET, keyUsage of the RA and CA certificates,
 *   renewal as a PKCSReq with the challenge, `Renewal` advertised;
 * - Intune/Windows: NDES-style path over HTTPS without a client certificate request, the SID
 *   URI subjectAltName kept in the certificate;
 * - Android/jscep: indefinite-length BER in both layers, key-derived transactionIDs repeated on a
 *   same-key renewal (a new certificate);
 * - MikroTik: draft-style GET, 1024-bit keys refused with a text that says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OID } from '../../src/asn1/oids.js';
import { buildSignedData } from '../../src/cms/index.js';
import { toPem, type Certificate } from '../../src/pkix/certificate.js';
import { buildCsr } from '../../src/pkix/csr.js';
import { parseKeyUsage, parseSubjectAltName, type GeneralName } from '../../src/pkix/extensions.js';
import {
  decodeCertRep,
  encodePkiRequest,
  FailInfo,
  MessageType,
  parseCaCertResponse,
  PkiStatus,
  scepAttributes,
  type CertRep,
} from '../../src/scep/index.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import { toBer } from '../helpers/scep-fixtures.js';
import { TEST_CHALLENGE, tempDir, testServer } from '../helpers/scep-server.js';

/** Longest any single exchange may take before the test fails instead of hanging. */
const EXCHANGE_TIMEOUT_MS = 60_000;

interface RawReply {
  statusLine: string;
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** One HTTP/1.0 GET on a raw socket, without a Host header, read until the server closes. */
function http10Get(port: number, target: string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    sock.setTimeout(EXCHANGE_TIMEOUT_MS, () => sock.destroy(new Error('HTTP/1.0 exchange did not finish')));
    sock.on('connect', () => sock.write(`GET ${target} HTTP/1.0\r\n\r\n`, 'latin1'));
    sock.on('data', (c: Buffer) => parts.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const all = Buffer.concat(parts);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP head in ${all.length} bytes`));
      const [statusLine = '', ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
      }
      resolve({
        statusLine,
        status: Number(statusLine.split(' ')[1]),
        headers,
        body: all.subarray(end + 4),
      });
    });
  });
}

/** A GET over HTTPS trusting `ca`, with the bytes of the reply. */
function httpsGet(url: string, ca: string): Promise<{ status: number; contentType: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, checkServerIdentity: () => undefined }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          body: Buffer.concat(parts),
        }),
      );
    });
    req.setTimeout(EXCHANGE_TIMEOUT_MS, () => req.destroy(new Error('HTTPS exchange did not finish')));
    req.on('error', reject);
    req.end();
  });
}

/** A POST over HTTPS trusting `ca`. */
function httpsPost(url: string, ca: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        ca,
        checkServerIdentity: () => undefined,
        headers: { 'content-type': 'application/x-pki-message', 'content-length': body.length },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      },
    );
    req.setTimeout(EXCHANGE_TIMEOUT_MS, () => req.destroy(new Error('HTTPS exchange did not finish')));
    req.on('error', reject);
    req.end(body);
  });
}

function run(
  cmd: string,
  args: string[],
  input?: Buffer,
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args);
    const out: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), EXCHANGE_TIMEOUT_MS);
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(input ?? Buffer.alloc(0));
  });
}

/** A signed PKCSReq: CSR content, signer certificate and key, to `recipient`. */
function pkcsReq(o: {
  csr: Buffer;
  signerCert: Certificate;
  signerKey: KeyObject;
  recipient: Certificate;
  transactionId: string;
  cipher?: 'aes128' | 'des3';
}): { der: Buffer; senderNonce: Buffer; transactionId: string } {
  const m = encodePkiRequest({
    messageType: MessageType.PKCSReq,
    signerCert: o.signerCert,
    signerKey: o.signerKey,
    digest: 'sha256',
    recipient: o.recipient,
    cipher: o.cipher ?? 'aes128',
    transactionId: o.transactionId,
    content: o.csr,
  });
  return { ...m, transactionId: o.transactionId };
}

function open(
  body: Buffer,
  req: { senderNonce: Buffer; transactionId: string },
  decrypt: { cert: Certificate; key: KeyObject },
  trusted: Certificate[],
): CertRep {
  return decodeCertRep(body, {
    transactionId: req.transactionId,
    senderNonce: req.senderNonce,
    trustedSigners: trusted,
    decrypt,
  });
}

/** The issued certificate of a SUCCESS reply: first, carrying `key`. */
function issuedFor(rep: CertRep, key: KeyObject, what: string): Certificate {
  assert.equal(rep.status, PkiStatus.SUCCESS, `${what}: ${rep.failInfoText ?? ''}`);
  const first = rep.certificates[0];
  assert.ok(first, `${what}: the reply holds a certificate`);
  assert.ok(first.spki.equals(createPublicKey(key).export({ type: 'spki', format: 'der' })), what);
  return first;
}

/** A SUCCESS CertRep's certificates are exactly the issued one, then the CA (not the RA). */
function assertIssuedThenCa(rep: CertRep, ca: Certificate, ra: Certificate, what: string): void {
  assert.deepEqual(
    rep.certificates.slice(1).map((c) => c.fingerprint),
    [ca.fingerprint],
    `${what}: the CA certificate follows the issued one`,
  );
  assert.ok(!rep.certificates.some((c) => c.der.equals(ra.der)), `${what}: no RA certificate`);
}

function sans(cert: Certificate): GeneralName[] {
  const ext = cert.extension(OID.subjectAltName);
  return ext ? parseSubjectAltName(ext.value) : [];
}

function keyUsage(cert: Certificate): string[] {
  const ext = cert.extension(OID.keyUsage);
  return ext ? parseKeyUsage(ext.value) : [];
}

function signedBy(cert: Certificate, issuer: Certificate): boolean {
  return new X509Certificate(cert.der).verify(issuer.publicKey());
}

async function getCaCerts(url: string): Promise<Certificate[]> {
  const r = await fetch(`${url}?operation=GetCACert&message=CA`);
  assert.equal(r.status, 200);
  return parseCaCertResponse(r.headers.get('content-type') ?? '', Buffer.from(await r.arrayBuffer()));
}

async function getCaps(url: string): Promise<string[]> {
  const r = await fetch(`${url}?operation=GetCACaps`);
  assert.equal(r.status, 200);
  return (await r.text()).split(/\r?\n/).filter((l) => l !== '');
}

test('Cisco IOS: HTTP/1.0 without Host, GET PKIOperation with %0A, unstructuredName, renewal signed by the old certificate', async (t) => {
  const server = await testServer(t, { ra: true });
  const path = '/cgi-bin/pkiclient.exe';

  // `crypto pki authenticate`: GetCACert over HTTP/1.0, no Host header, no chunked reply.
  const ca = await http10Get(server.port, `${path}?operation=GetCACert&message=CA`);
  assert.equal(ca.status, 200, ca.statusLine);
  assert.match(ca.statusLine, /^HTTP\/1\.[01] 200/);
  assert.notEqual(ca.headers.get('transfer-encoding'), 'chunked', 'HTTP/1.0 client gets no chunked body');
  const certs = parseCaCertResponse(ca.headers.get('content-type') ?? '', ca.body);
  assert.equal(certs.length, 2, 'RA and CA certificates');
  const [ra, caCert] = certs as [Certificate, Certificate];
  const caps = await http10Get(server.port, `${path}?operation=GetCACaps&message=CA`);
  assert.equal(caps.status, 200);
  assert.ok(caps.body.toString().split('\n').includes('POSTPKIOperation'), 'POST is advertised');

  // A subject with unstructuredName/unstructuredAddress; the self-signed signer has another one.
  const key = pooledRsaKey(5);
  const signer = makeSelfSigned({ subject: 'CN=router1.example.com', key, days: 1 });
  const subject = 'CN=router1.example.com,unstructuredName=router1.example.com,unstructuredAddress=192.0.2.1';
  const csr = buildCsr({ subject, key, publicKey: createPublicKey(key), challengePassword: TEST_CHALLENGE });

  // PKIOperation by GET over HTTP/1.0: base64 with %0A every 64 characters, +/= escaped.
  const viaGet = async (der: Buffer): Promise<Buffer> => {
    const b64 = der.toString('base64');
    const q = (b64.match(/.{1,64}/g) ?? []).map((l) => encodeURIComponent(l)).join('%0A');
    const r = await http10Get(server.port, `${path}?operation=PKIOperation&message=${q}`);
    assert.equal(r.status, 200, r.statusLine);
    return r.body;
  };
  const req = pkcsReq({
    csr,
    signerCert: signer.cert,
    signerKey: key,
    recipient: ra,
    transactionId: 'cisco-1',
  });
  const rep = open(await viaGet(req.der), req, { cert: signer.cert, key }, certs);
  const issued = issuedFor(rep, key, 'Cisco enrollment');
  for (const oid of ['06092a864886f70d010902', '06092a864886f70d010908'])
    assert.ok(issued.subjectRaw.includes(Buffer.from(oid, 'hex')), `issued subject keeps ${oid}`);
  assert.ok(!issued.subjectRaw.equals(signer.cert.subjectRaw), 'subject differs from the signer');
  // As from NDES: the issued certificate first, then the issuing CA (IOS looks for it there),
  // never the RA; the CA is the one from GetCACert (`crypto pki authenticate`).
  assertIssuedThenCa(rep, caCert, ra, 'Cisco enrollment');
  assert.ok(signedBy(issued, caCert), 'issued certificate verifies under the GetCACert CA');

  // Renewal (auto-enroll with regenerate): a PKCSReq for a new key, signed by the old
  // certificate and key, no challenge; the reply is encrypted to the old certificate.
  const newKey = pooledRsaKey(6);
  const renewCsr = buildCsr({ subject, key: newKey, publicKey: createPublicKey(newKey) });
  const renew = pkcsReq({
    csr: renewCsr,
    signerCert: issued,
    signerKey: key,
    recipient: ra,
    transactionId: 'cisco-2',
  });
  const renewRep = open(await viaGet(renew.der), renew, { cert: issued, key }, certs);
  const renewed = issuedFor(renewRep, newKey, 'Cisco renewal');
  assertIssuedThenCa(renewRep, caCert, ra, 'Cisco renewal');
  assert.notEqual(renewed.serialHex, issued.serialHex);
  assert.ok(renewed.subjectRaw.equals(issued.subjectRaw));
});

test('Apple macOS/iOS: + and / unescaped in a GET, keyUsage of RA and CA, renewal with the challenge', async (t) => {
  const server = await testServer(t, { ra: true });
  const caps = await getCaps(server.url);
  assert.ok(caps.includes('Renewal'), `Renewal advertised: ${caps.join(',')}`);
  const certs = await getCaCerts(server.url);
  const [ra, caCert] = certs as [Certificate, Certificate];
  // Apple encrypts to the certificate with keyEncipherment and verifies the one with
  // digitalSignature: in RA mode both are the RA certificate.
  assert.ok(!ra.subjectRaw.equals(caCert.subjectRaw), 'RA mode: the RA comes first');
  for (const u of ['keyEncipherment', 'digitalSignature']) assert.ok(keyUsage(ra).includes(u), `RA ${u}`);
  // CA-only mode: the CA certificate itself carries both usages as well.
  const caOnly = await testServer(t, { ra: false });
  const caOnlyCerts = await getCaCerts(caOnly.url);
  assert.equal(caOnlyCerts.length, 1);
  for (const u of ['keyEncipherment', 'digitalSignature', 'keyCertSign'])
    assert.ok(keyUsage(caOnlyCerts[0]!).includes(u), `CA-only CA ${u}`);

  // GET with the base64 as is: `+` and `/` unescaped (a `+` arrives as a space), `=` too.
  const key = pooledRsaKey(8);
  const subject = 'CN=mac-1234,O=Example';
  const signer = makeSelfSigned({ subject, key, days: 1 });
  const viaRawGet = async (
    make: (n: number) => { der: Buffer; senderNonce: Buffer; transactionId: string },
  ) => {
    // Retry the (randomly nonced) encoding until the base64 has both characters; bounded.
    for (let n = 0; n < 50; n++) {
      const req = make(n);
      const b64 = req.der.toString('base64');
      if (!b64.includes('+') || !b64.includes('/')) continue;
      const r = await fetch(`${server.url}?operation=PKIOperation&message=${b64}`);
      assert.equal(r.status, 200);
      return { req, body: Buffer.from(await r.arrayBuffer()) };
    }
    throw new Error('no encoding with both + and / in 50 tries');
  };
  const csr = buildCsr({ subject, key, publicKey: createPublicKey(key), challengePassword: TEST_CHALLENGE });
  const first = await viaRawGet((n) =>
    pkcsReq({ csr, signerCert: signer.cert, signerKey: key, recipient: ra, transactionId: `apple-1-${n}` }),
  );
  const issued = issuedFor(
    open(first.body, first.req, { cert: signer.cert, key }, certs),
    key,
    'Apple enrollment',
  );

  // Renewal: a PKCSReq for a new key WITH the challenge, signed by the old certificate.
  const newKey = pooledRsaKey(9);
  const renewCsr = buildCsr({
    subject,
    key: newKey,
    publicKey: createPublicKey(newKey),
    challengePassword: TEST_CHALLENGE,
  });
  const second = await viaRawGet((n) =>
    pkcsReq({
      csr: renewCsr,
      signerCert: issued,
      signerKey: key,
      recipient: ra,
      transactionId: `apple-2-${n}`,
    }),
  );
  const renewed = issuedFor(
    open(second.body, second.req, { cert: issued, key }, certs),
    newKey,
    'Apple renewal',
  );
  assert.notEqual(renewed.serialHex, issued.serialHex);

  // A later renewal still carries the profile's challenge, long used up (or rotated): the signer
  // certificate authorizes a renewal, the challenge in it is not checked.
  const lastKey = pooledRsaKey(14);
  const staleCsr = buildCsr({
    subject,
    key: lastKey,
    publicKey: createPublicKey(lastKey),
    challengePassword: 'UsedUp0815',
  });
  const third = await viaRawGet((n) =>
    pkcsReq({
      csr: staleCsr,
      signerCert: renewed,
      signerKey: newKey,
      recipient: ra,
      transactionId: `apple-3-${n}`,
    }),
  );
  const again = issuedFor(
    open(third.body, third.req, { cert: renewed, key: newKey }, certs),
    lastKey,
    'Apple renewal, stale challenge',
  );
  assert.notEqual(again.serialHex, renewed.serialHex);
});

test('Intune/Windows: NDES path over HTTPS (no client certificate request), SID URI SAN kept', async (t) => {
  const tlsKey = pooledRsaKey(10);
  const tlsCert = makeSelfSigned({ subject: 'CN=127.0.0.1', key: tlsKey, days: 1 });
  const server = await testServer(t, { ra: true, tls: { cert: tlsCert.certPem, key: tlsCert.keyPem } });
  const url = `${new URL(server.url).origin}/certsrv/mscep/mscep.dll`;
  const ca = await httpsGet(`${url}?operation=GetCACert&message=CA`, tlsCert.certPem);
  assert.equal(ca.status, 200);
  const certs = parseCaCertResponse(ca.contentType, ca.body);
  const ra = certs[0]!;

  const sid = 'tag:microsoft.com,2022-09-14:sid:S-1-5-21-1004336348-1177238915-682003330-512';
  const key = pooledRsaKey(11);
  const subject = 'CN=intune-device-7';
  const signer = makeSelfSigned({ subject, key, days: 1 });
  const csr = buildCsr({
    subject,
    key,
    publicKey: createPublicKey(key),
    challengePassword: TEST_CHALLENGE,
    subjectAltNames: [
      { type: 'uri', value: sid },
      { type: 'dns', value: 'intune-device-7.example.com' },
    ],
  });
  const req = pkcsReq({
    csr,
    signerCert: signer.cert,
    signerKey: key,
    recipient: ra,
    transactionId: 'intune-1',
  });
  const r = await httpsPost(`${url}?operation=PKIOperation`, tlsCert.certPem, req.der);
  assert.equal(r.status, 200, r.body.toString());
  const issued = issuedFor(open(r.body, req, { cert: signer.cert, key }, certs), key, 'Intune enrollment');
  assert.ok(
    sans(issued).some((g) => g.type === 'uri' && g.value === sid),
    `SID URI kept: ${JSON.stringify(sans(issued))}`,
  );

  // The TLS handshake never asks for a client certificate.
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const hs = await run('openssl', ['s_client', '-msg', '-tls1_2', '-connect', `127.0.0.1:${server.port}`]);
  const text = hs.stdout.toString() + hs.stderr;
  assert.match(text, /ServerHello/, 'handshake happened');
  assert.match(text, /ServerHelloDone/, 'the server flight was seen completely');
  assert.doesNotMatch(text, /CertificateRequest/, 'no client certificate requested');
});

test('Android/jscep: indefinite-length BER in both layers, key-derived transactionID reused on renewal', async (t) => {
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const server = await testServer(t, { ra: true });
  const certs = await getCaCerts(server.url);
  const ra = certs[0]!;
  const work = tempDir(t, 'scepter-jscep-');
  const raPem = join(work, 'ra.pem');
  writeFileSync(raPem, toPem(ra.der));

  const key = pooledRsaKey(12);
  const subject = 'CN=android-42,O=Example';
  const signer = makeSelfSigned({ subject, key, days: 1 });
  // jscep: transactionID = hex digest of the public key (SHA-1 here; SHA-256 with newer ones).
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const transactionId = createHash('sha1').update(spki).digest('hex').toUpperCase();

  /** A BER PKCSReq: openssl -stream envelope, our SignedData re-wrapped with indefinite lengths. */
  const berRequest = async (csr: Buffer, signerCert: Certificate, n: number) => {
    const csrPath = join(work, `csr-${n}.der`);
    writeFileSync(csrPath, csr);
    const env = await run('openssl', [
      'cms',
      '-encrypt',
      '-binary',
      '-stream',
      '-in',
      csrPath,
      '-outform',
      'DER',
      '-aes-128-cbc',
      '-recip',
      raPem,
    ]);
    assert.equal(env.code, 0, env.stderr);
    assert.equal(env.stdout[1], 0x80, 'the envelope is indefinite-length BER');
    const senderNonce = Buffer.from(`jscep-nonce-${n}`.padEnd(16, '.').slice(0, 16));
    const signed = buildSignedData({
      signerCert,
      signerKey: key,
      digest: 'sha256',
      content: env.stdout,
      attributes: scepAttributes({ messageType: MessageType.PKCSReq, transactionId, senderNonce }),
    });
    const der = toBer(signed, 64);
    assert.equal(der[1], 0x80, 'the signed layer is indefinite-length BER');
    return { der, senderNonce, transactionId };
  };
  const post = async (der: Buffer): Promise<Buffer> => {
    const r = await fetch(`${server.url}?operation=PKIOperation`, {
      method: 'POST',
      body: der,
      headers: { 'content-type': 'application/x-pki-message' },
    });
    assert.equal(r.status, 200);
    return Buffer.from(await r.arrayBuffer());
  };

  const csr = buildCsr({ subject, key, publicKey: createPublicKey(key), challengePassword: TEST_CHALLENGE });
  const req = await berRequest(csr, signer.cert, 1);
  const issued = issuedFor(
    open(await post(req.der), req, { cert: signer.cert, key }, certs),
    key,
    'jscep enrollment',
  );

  // Same-key renewal: the same key-derived transactionID, signed by the issued certificate.
  const renewCsr = buildCsr({ subject, key, publicKey: createPublicKey(key) });
  const renew = await berRequest(renewCsr, issued, 2);
  const renewed = issuedFor(
    open(await post(renew.der), renew, { cert: issued, key }, certs),
    key,
    'jscep renewal',
  );
  assert.notEqual(renewed.serialHex, issued.serialHex, 'a NEW certificate, not the original one');
});

test('MikroTik: draft-style GET PKIOperation; a 1024-bit key is refused with a reason', async (t) => {
  const server = await testServer(t, { ra: true });
  const certs = await getCaCerts(server.url);
  const ra = certs[0]!;
  const viaGet = async (der: Buffer): Promise<Buffer> => {
    const r = await fetch(
      `${server.url}?operation=PKIOperation&message=${encodeURIComponent(der.toString('base64'))}`,
    );
    assert.equal(r.status, 200);
    return Buffer.from(await r.arrayBuffer());
  };
  const enroll = async (key: KeyObject, n: number) => {
    const subject = `CN=mikrotik-${n}`;
    const signer = makeSelfSigned({ subject, key, days: 1 });
    const csr = buildCsr({
      subject,
      key,
      publicKey: createPublicKey(key),
      challengePassword: TEST_CHALLENGE,
    });
    const req = pkcsReq({
      csr,
      signerCert: signer.cert,
      signerKey: key,
      recipient: ra,
      transactionId: `mikrotik-${n}`,
      cipher: 'des3',
    });
    return open(await viaGet(req.der), req, { cert: signer.cert, key }, certs);
  };

  const small = await enroll(pooledRsaKey(0, 1024), 1);
  assert.equal(small.status, PkiStatus.FAILURE);
  assert.equal(small.failInfo, FailInfo.badRequest);
  assert.match(small.failInfoText ?? '', /1024 bits is too small/);
  assert.match(small.failInfoText ?? '', /2048/, 'the text names the minimum');

  const key = pooledRsaKey(13);
  issuedFor(await enroll(key, 2), key, 'MikroTik with key-size=2048');
});
