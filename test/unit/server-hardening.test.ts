/**
 * Small HTTP hardening items: CRL caching headers (cacheable until nextUpdate, ETag, 304) and
 * `POST /admin/challenge` checking the token before reading any body, with a true 413 text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { crlCacheHeaders, crlEtag } from '../../src/server/crl-route.js';
import { ADMIN_CHALLENGE_BODY_LIMIT } from '../../src/server/challenges.js';
import { testServer } from '../helpers/scep-server.js';

const ADMIN_TOKEN = 'admin-token-0123456789abcdef';

test('crlCacheHeaders: public max-age = seconds to nextUpdate, Expires, Last-Modified, ETag', () => {
  const crl = {
    issuer: 'x',
    crlNumber: 1n,
    der: Buffer.from('crl-bytes'),
    thisUpdate: new Date('2026-01-01T00:00:00Z'),
    nextUpdate: new Date('2026-01-08T00:00:00Z'),
  };
  assert.deepEqual(crlCacheHeaders(crl, new Date('2026-01-07T23:00:00.500Z')), {
    'cache-control': 'public, max-age=3599',
    expires: 'Thu, 08 Jan 2026 00:00:00 GMT',
    'last-modified': 'Thu, 01 Jan 2026 00:00:00 GMT',
    etag: crlEtag(crl.der),
  });
  assert.match(crlEtag(crl.der), /^"[0-9a-f]{32}"$/);
  assert.notEqual(crlEtag(crl.der), crlEtag(Buffer.from('other')));
  // Past nextUpdate: still answered, but not cacheable.
  assert.equal(crlCacheHeaders(crl, new Date('2026-02-01T00:00:00Z'))['cache-control'], 'public, max-age=0');
});

test('GET /crl: caching headers agree with the CRL; If-None-Match → 304; other answers stay no-store', async (t) => {
  const s = await testServer(t);
  const r = await fetch(`${s.origin}/crl`);
  assert.equal(r.status, 200);
  const der = Buffer.from(await r.arrayBuffer());
  const tbs = AsnConvert.parse(der, CertificateList).tbsCertList;
  const thisUpdate = tbs.thisUpdate.getTime();
  const nextUpdate = tbs.nextUpdate!.getTime();
  assert.equal(r.headers.get('last-modified'), thisUpdate.toUTCString());
  assert.equal(r.headers.get('expires'), nextUpdate.toUTCString());
  const m = /^public, max-age=(\d+)$/.exec(r.headers.get('cache-control') ?? '');
  assert.ok(m, `cache-control: ${r.headers.get('cache-control')}`);
  assert.ok(Number(m[1]) > 0 && Number(m[1]) <= (nextUpdate.getTime() - thisUpdate.getTime()) / 1000);
  assert.equal(r.headers.get('etag'), crlEtag(der));
  assert.equal(r.headers.get('x-crl-max-age'), null);
  const again = await fetch(`${s.origin}/crl`, { headers: { 'if-none-match': crlEtag(der) } });
  assert.equal(again.status, 304);
  assert.equal(again.headers.get('etag'), crlEtag(der));
  assert.match(again.headers.get('cache-control') ?? '', /^public, max-age=\d+$/);
  const changed = await fetch(`${s.origin}/crl`, { headers: { 'if-none-match': '"other"' } });
  assert.equal(changed.status, 200);
  await changed.arrayBuffer();
  assert.equal(
    (await fetch(`${s.origin}/crl/${'0'.repeat(64)}.crl`)).headers.get('cache-control'),
    'no-store',
  );
  assert.equal((await fetch(`${s.url}?operation=GetCACaps`)).headers.get('cache-control'), 'no-store');
});

/** Sends raw bytes and resolves with the status line of the answer (the socket stays open). */
function statusLine(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (c) => {
      got += c.toString('latin1');
      const eol = got.indexOf('\r\n');
      if (eol >= 0) {
        resolve(got.slice(0, eol));
        sock.destroy();
      }
    });
    sock.on('error', reject);
    sock.write(data);
  });
}

test('POST /admin/challenge: the token is checked before the body is read; 413 names the real limit', async (t) => {
  const s = await testServer(t, { challenges: { adminToken: ADMIN_TOKEN } });
  // A body announced as 10 MB but never sent: answered at once (a server waiting for the body
  // would never answer, and the test would time out).
  const head = (auth: string) =>
    `POST /admin/challenge HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\nabc`;
  assert.match(await statusLine(s.port, head('')), /^HTTP\/1\.1 401 /);
  assert.match(
    await statusLine(s.port, head('Authorization: Bearer wrong-token-0123456789\r\n')),
    /^HTTP\/1\.1 401 /,
  );
  const off = await testServer(t);
  assert.match(
    await statusLine(off.port, head(`Authorization: Bearer ${ADMIN_TOKEN}\r\n`)),
    /^HTTP\/1\.1 404 /,
  );

  const big = await fetch(`${s.origin}/admin/challenge`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    body: Buffer.alloc(ADMIN_CHALLENGE_BODY_LIMIT + 1),
  });
  assert.equal(big.status, 413);
  assert.equal((await big.text()).trim(), `request body larger than ${ADMIN_CHALLENGE_BODY_LIMIT} bytes`);
  const ok = await fetch(`${s.origin}/admin/challenge`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    body: Buffer.alloc(100),
  });
  assert.equal(ok.status, 200);
  assert.match((await ok.text()).trim(), /^\S{16,}$/);
});
