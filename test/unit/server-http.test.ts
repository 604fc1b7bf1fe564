/**
 * The HTTP transport: routes on any path, case-insensitive operations, content types, GET
 * message decoding, size limits (413/414/431), HTTP/1.0 without Host, safe error answers, the
 * one-line JSON request log, TLS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { PassThrough } from 'node:stream';
import { spawn } from 'node:child_process';
import { encodeGetMessage, PkiStatus } from '../../src/scep/index.js';
import { parseCertificate } from '../../src/pkix/certificate.js';
import { startServer } from '../../src/server/index.js';
import type { ScepService } from '../../src/ra/types.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import {
  caCerts,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  testServer,
  TEST_CHALLENGE,
} from '../helpers/scep-server.js';

/** Sends raw bytes on a fresh TCP connection and returns everything the server sends back. */
function raw(port: number, data: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('error', (e) => (chunks.length ? resolve(Buffer.concat(chunks).toString('latin1')) : reject(e)));
    // write, not end: a half-closed socket may be dropped before the answer is written.
    s.write(data);
  });
}

/** POSTs `size` bytes without buffering them all, tolerating the server closing early. */
function postLarge(port: number, size: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/scep?operation=PKIOperation',
        headers: { 'content-length': size },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') reject(e);
    });
    const chunk = Buffer.alloc(1024 * 1024, 0x41);
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

test('every path serves SCEP; operation is case-insensitive; message is ignored for GetCACaps/GetCACert', async (t) => {
  const s = await testServer(t);
  for (const path of ['/scep', '/scep/foo/bar', '/pkiclient.exe', '/cgi-bin/pkiclient.exe', '/', '//scep']) {
    for (const op of ['GetCACaps', 'getcacaps', 'GETCACAPS']) {
      const r = await fetch(`${s.origin}${path}?operation=${op}&message=whatever`);
      assert.equal(r.status, 200, `${path} ${op}`);
      assert.equal(r.headers.get('content-type'), 'text/plain');
      assert.equal(r.headers.get('cache-control'), 'no-store');
      const text = await r.text();
      assert.equal(r.headers.get('content-length'), String(Buffer.byteLength(text)));
      assert.deepEqual(text.split('\n').filter(Boolean), [
        'AES',
        'DES3',
        'SHA-1',
        'SHA-256',
        'SHA-384',
        'SHA-512',
        'POSTPKIOperation',
        'SCEPStandard',
        'Renewal',
      ]);
    }
  }
  for (const q of [
    'operation=GetCACert',
    'operation=getCACert&message=',
    'operation=GetCACert&message=default',
  ]) {
    const r = await fetch(`${s.origin}/cgi-bin/pkiclient.exe?${q}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/x-x509-ca-cert');
    const cert = parseCertificate(Buffer.from(await r.arrayBuffer()));
    assert.ok(cert.der.equals(s.dataDir!.loaded.caCert.der));
  }
});

test('unknown or missing operation → 400; GetNextCACert without rollover → 400; other methods → 404', async (t) => {
  const s = await testServer(t);
  for (const q of ['?operation=Foo', '', '?message=abc', '?operation=']) {
    const r = await fetch(`${s.url}${q}`);
    assert.equal(r.status, 400, q);
    assert.match(await r.text(), /^[^\n]+\n$/);
  }
  assert.equal((await fetch(`${s.url}?operation=GetNextCACert`)).status, 400);
  const put = await fetch(`${s.url}?operation=PKIOperation`, { method: 'PUT', body: 'x' });
  assert.equal(put.status, 404);
});

test('POST PKIOperation: any or no Content-Type, with or without the query string', async (t) => {
  const s = await testServer(t);
  const trusted = await caCerts(s.url);
  const d = device('CN=dev-ct', { pool: 1 });
  for (const ct of [
    'application/x-pki-message',
    'application/octet-stream',
    'text/plain',
    'bogus',
    undefined,
  ]) {
    const req = pkcsReq(d, trusted[0]!);
    const r = await postPki(s.url, req.der, ct);
    assert.equal(r.status, 200, String(ct));
    assert.equal(r.contentType, 'application/x-pki-message');
    assert.equal(openCertRep(r.body, req, d, trusted).status, PkiStatus.SUCCESS);
  }
  // No query string at all, no Content-Type (raw HTTP to be sure nothing is added).
  const req = pkcsReq(d, trusted[0]!);
  const head = `POST /cgi-bin/pkiclient.exe HTTP/1.1\r\nHost: x\r\nContent-Length: ${req.der.length}\r\nConnection: close\r\n\r\n`;
  const res = Buffer.from(await raw(s.port, Buffer.concat([Buffer.from(head), req.der])), 'latin1');
  const sep = res.indexOf('\r\n\r\n');
  assert.match(res.subarray(0, sep).toString('latin1'), /^HTTP\/1\.1 200/);
  assert.equal(openCertRep(res.subarray(sep + 4), req, d, trusted).status, PkiStatus.SUCCESS);
});

test('GET PKIOperation: standard escaping, + sent as space, %0A line breaks, base64url', async (t) => {
  const s = await testServer(t);
  const trusted = await caCerts(s.url);
  const d = device('CN=dev-get', { pool: 1 });
  const variants: Array<[string, (der: Buffer) => string]> = [
    ['escaped', (der) => encodeGetMessage(der)],
    ['plus-as-space', (der) => der.toString('base64').replace(/=/g, '%3D')],
    [
      'newlines',
      (der) => (der.toString('base64').match(/.{1,64}/g) ?? []).map(encodeURIComponent).join('%0A'),
    ],
    ['base64url', (der) => der.toString('base64url')],
  ];
  for (const [name, enc] of variants) {
    const req = pkcsReq(d, trusted[0]!);
    const message = enc(req.der);
    if (name === 'plus-as-space') assert.ok(message.includes('+'), 'the test message must contain +');
    const r = await fetch(`${s.url}?operation=PKIOperation&message=${message}`);
    assert.equal(r.status, 200, name);
    const rep = openCertRep(Buffer.from(await r.arrayBuffer()), req, d, trusted);
    assert.equal(rep.status, PkiStatus.SUCCESS, name);
  }
  const bad = await fetch(`${s.url}?operation=PKIOperation&message=%%%%`);
  assert.equal(bad.status, 400);
  const noMsg = await fetch(`${s.url}?operation=PKIOperation`);
  assert.equal(noMsg.status, 400);
});

test('limits: 50 MB body → 413, long URL → 414, huge headers → 431; the server keeps serving', async (t) => {
  const s = await testServer(t);
  const big = await postLarge(s.port, 50 * 1024 * 1024);
  assert.equal(big.status, 413);
  assert.match(big.body, /larger than 262144 bytes/);
  const small = await testServer(t, { bodyLimit: 2000 });
  const r = await fetch(`${small.url}?operation=PKIOperation`, { method: 'POST', body: Buffer.alloc(2001) });
  assert.equal(r.status, 413);
  const longUrl = await fetch(`${s.url}?operation=PKIOperation&message=${'A'.repeat(70_000)}`);
  assert.equal(longUrl.status, 414);
  const hugeHeader = await raw(
    s.port,
    `GET /scep?operation=GetCACaps HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(100_000)}\r\n\r\n`,
  );
  assert.match(hugeHeader, /^HTTP\/1\.1 431/);
  const caps = await fetch(`${s.url}?operation=GetCACaps`);
  assert.equal(caps.status, 200, 'still up');
});

test('garbage and truncated bodies → 400 with a one-line reason, never 500', async (t) => {
  const s = await testServer(t);
  const trusted = await caCerts(s.url);
  const good = pkcsReq(device('CN=dev-junk', { pool: 1 }), trusted[0]!).der;
  for (const body of [
    Buffer.from('garbage'),
    good.subarray(0, 500),
    good.subarray(0, good.length - 2),
    Buffer.from([0x30, 0x80]),
  ]) {
    const r = await postPki(s.url, body);
    assert.equal(r.status, 400);
    assert.match(r.contentType, /^text\/plain/);
    const text = r.body.toString();
    assert.match(text, /^[^\n]{1,300}\n$/);
    assert.ok(!text.includes('    at '), 'no stack trace');
  }
  const empty = await postPki(s.url, Buffer.alloc(0));
  assert.equal(empty.status, 400);
  assert.equal((await fetch(`${s.url}?operation=GetCACaps`)).status, 200);
});

test('HTTP/1.0 without a Host header works and gets a Content-Length', async (t) => {
  const s = await testServer(t);
  const res = await raw(s.port, 'GET /cgi-bin/pkiclient.exe?operation=GetCACaps HTTP/1.0\r\n\r\n');
  assert.match(res, /^HTTP\/1\.[01] 200/);
  assert.match(res, /\r\ncontent-length: \d+\r\n/i);
  assert.match(res, /\r\n\r\nAES\n/);
  const cert = await raw(
    s.port,
    'GET /scep?operation=GetCACert&message=CA HTTP/1.0\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 5.0; Cisco PKI)\r\n\r\n',
  );
  assert.match(cert, /^HTTP\/1\.[01] 200/);
  assert.match(cert, /content-type: application\/x-x509-ca-cert/i);
});

test('one JSON log line per request with the SCEP fields; no challenge, no message query', async (t) => {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  let rawText = '';
  stream.on('data', (c: Buffer) => {
    rawText += c.toString();
    for (const l of c.toString().split('\n').filter(Boolean))
      lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const s = await testServer(t, { logLevel: 'info', logStream: stream });
  const trusted = await caCerts(s.url);
  const d = device('CN=dev-log', { pool: 1 });
  const ok = pkcsReq(d, trusted[0]!, { transactionId: 'tx-log-ok' });
  await postPki(s.url, ok.der);
  const bad = pkcsReq(d, trusted[0]!, { transactionId: 'tx-log-bad', challenge: 'wrong-secret-xyz' });
  await fetch(`${s.url}?operation=PKIOperation&message=${encodeGetMessage(bad.der)}`);
  await postPki(s.url, Buffer.from('junk'));
  // Wait for the four request lines (logging may trail the reply), not for a fixed time.
  await new Promise<void>((resolve) => {
    const check = () => {
      if (lines.filter((l) => l.msg === 'request').length < 4) return;
      stream.off('data', check);
      resolve();
    };
    stream.on('data', check);
    check();
  });
  const req = lines.filter((l) => l.msg === 'request');
  assert.equal(req.length, 4, 'GetCACert + 3 PKIOperations, one line each');
  const success = req.find((l) => l.transactionId === 'tx-log-ok')!;
  assert.equal(success.operation, 'PKIOperation');
  assert.equal(success.messageType, 'PKCSReq');
  assert.equal(success.outcome, 'SUCCESS');
  assert.equal(typeof success.ms, 'number');
  assert.equal(success.remote, '127.0.0.1');
  assert.match(String(success.serial), /^[0-9a-f]+$/);
  const failure = req.find((l) => l.transactionId === 'tx-log-bad')!;
  assert.equal(failure.outcome, 'FAILURE');
  assert.equal(failure.failInfo, 'badRequest');
  assert.equal(failure.path, '/scep', 'the query (with the whole message) is not logged');
  const junk = req.find((l) => l.status === 400)!;
  assert.equal(junk.outcome, 'rejected');
  assert.ok(
    !rawText.includes(TEST_CHALLENGE) && !rawText.includes('wrong-secret-xyz'),
    'no challenge in logs',
  );
  assert.ok(!rawText.includes('PRIVATE KEY'));
});

test('an internal fault is a one-line 500 and the server keeps serving', async (t) => {
  let calls = 0;
  const svc: ScepService = {
    capabilities: () => ['AES'],
    getCaCaps: () => ({ httpStatus: 200, contentType: 'text/plain', body: Buffer.from('AES\n') }),
    getCaCert: () => {
      throw new Error('secret internal detail at /etc/passwd');
    },
    pkiOperation: async () => {
      calls++;
      throw new TypeError('boom with internal detail');
    },
  };
  const s = await startServer({ service: svc, logLevel: 'silent' });
  t.after(() => s.close());
  const r1 = await fetch(`${s.url}?operation=GetCACert`);
  assert.equal(r1.status, 500);
  assert.equal(await r1.text(), 'internal server error\n');
  const r2 = await fetch(`${s.url}?operation=PKIOperation`, { method: 'POST', body: 'x' });
  assert.equal(r2.status, 500);
  assert.ok(!(await r2.text()).includes('boom'));
  assert.equal(calls, 1);
  assert.equal((await fetch(`${s.url}?operation=GetCACaps`)).status, 200);
});

test('TLS: serves HTTPS and never requests a client certificate', async (t) => {
  const key = pooledRsaKey(3);
  const tlsCert = makeSelfSigned({ subject: 'CN=127.0.0.1', key, days: 1 });
  const s = await testServer(t, { tls: { cert: tlsCert.certPem, key: tlsCert.keyPem } });
  assert.match(s.url, /^https:\/\//);
  const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpsRequest(
      `${s.url}?operation=GetCACaps`,
      { ca: tlsCert.certPem, checkServerIdentity: () => undefined },
      (r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(res.status, 200);
  assert.match(res.body, /^AES\n/);
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  for (const version of ['-tls1_2', '-tls1_3']) {
    // Asynchronously: the server runs in this process.
    const text = await new Promise<string>((resolve) => {
      const p = spawn('openssl', ['s_client', '-msg', version, '-connect', `127.0.0.1:${s.port}`]);
      let out = '';
      p.stdout.on('data', (c: Buffer) => (out += c.toString()));
      p.stderr.on('data', (c: Buffer) => (out += c.toString()));
      p.on('close', () => resolve(out));
      p.stdin.end();
    });
    assert.match(text, /ServerHello/, `handshake happened (${version})`);
    assert.doesNotMatch(text, /CertificateRequest/, `no client certificate requested (${version})`);
  }
});
