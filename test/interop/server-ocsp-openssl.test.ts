/**
 * The OCSP responder at /ocsp (src/ca/ocsp-responder.ts, src/server/ocsp-route.ts) driven by
 * the real `openssl ocsp` client: good (response verified against the CA, nonce echoed), then
 * revoked with time and reason after `scepter revoke` (another process), an unknown serial,
 * a foreign issuer (unauthorized), the GET form with RFC 5019 caching headers, hostile inputs
 * (truncated, huge, MD5 CertID, garbage: malformedRequest, never a 500), the AIA OCSP URL in
 * issued certificates, a delegated responder certificate verified by openssl (-CAfile and
 * -VAfile), and --workers with PostgreSQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ScepClient, type IssuedResult } from '../../src/client/index.js';
import { toPem, type Certificate } from '../../src/pkix/certificate.js';
import { revokeCertificate } from '../../src/ra/operator.js';
import type { RunningServer, StartServerOptions } from '../../src/server/index.js';
import { openStore } from '../../src/store/index.js';
import { hasCommand, needPeer, PG_URL, pgReachable } from '../helpers/peers.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import { run as runPeer } from '../helpers/run.js';
import { tempDir, testServer, TEST_CHALLENGE } from '../helpers/scep-server.js';

const HAVE = hasCommand('openssl');

const CLI = ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'src/cli/main.ts')];

/** Runs a program without blocking the event loop (the server answering it runs in this process). */
async function run(cmd: string, args: string[], cwd?: string): Promise<{ status: number; out: string }> {
  const r = await runPeer(cmd, args, { ...(cwd ? { cwd } : {}), env: { ...process.env, SCEPTER_DB: '' } });
  return { status: r.code ?? -1, out: r.output };
}

/** Runs openssl in `dir`. */
function ossl(dir: string, args: string[]): Promise<{ status: number; out: string }> {
  return run('openssl', args, dir);
}

interface Setup {
  s: RunningServer;
  dir: string;
  url: string;
  caPem: string;
  enroll(cn: string, keyIndex: number): Promise<{ cert: Certificate; pem: string }>;
  /**
   * `openssl ocsp` about `about` (a certificate's PEM file, or a `0x…` serial) issued by the CA:
   * asks the responder (or reads the DER response in `respin`), verifies the answer against the
   * CA (-CAfile), with the CertID hashed by `digest` (openssl's default: SHA-1) and `extra`
   * (-resp_text, -no_nonce) last.
   */
  ocsp(
    about: string,
    o?: { digest?: 'sha256'; respin?: string; extra?: readonly string[] },
  ): Promise<{ status: number; out: string }>;
}

async function setup(
  t: import('node:test').TestContext,
  o: Partial<StartServerOptions> = {},
): Promise<Setup> {
  const s = await testServer(t, o);
  const dir = tempDir(t, 'scepter-ocsp-');
  const caPem = join(dir, 'ca.pem');
  writeFileSync(caPem, toPem(s.dataDir!.loaded.ca.cert.der));
  const url = `${s.origin}/ocsp`;
  return {
    s,
    dir,
    url,
    caPem,
    async enroll(cn, keyIndex) {
      const c = new ScepClient({ url: s.url });
      const r = (await c.enroll({
        subject: `CN=${cn},O=OCSP`,
        challenge: TEST_CHALLENGE,
        key: pooledRsaKey(keyIndex, 2048),
      })) as IssuedResult;
      assert.equal(r.status, 'issued');
      const pem = join(dir, `${cn}.pem`);
      writeFileSync(pem, toPem(r.certificate.der));
      return { cert: r.certificate, pem };
    },
    ocsp(about, o = {}) {
      return ossl(dir, [
        'ocsp',
        ...(o.digest ? [`-${o.digest}`] : []),
        ...(o.respin !== undefined ? ['-respin', o.respin] : []),
        '-issuer',
        caPem,
        ...(about.startsWith('0x') ? ['-serial', about] : ['-cert', about]),
        ...(o.respin !== undefined ? [] : ['-url', url]),
        '-CAfile',
        caPem,
        ...(o.extra ?? []),
      ]);
    },
  };
}

test('openssl ocsp: good (verified, nonce echoed), revoked with time and reason after `scepter revoke`, unknown serial', async (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  const { s, dir, enroll, ocsp } = await setup(t, {
    lifecycle: { publicUrl: 'http://ca.example:8080/' },
  });
  const dev = await enroll('dev-ocsp-1', 1);

  // Issued certificates name the responder (authorityInfoAccess id-ad-ocsp) next to the CRL DP.
  const uri = await ossl(dir, ['x509', '-in', dev.pem, '-noout', '-ocsp_uri']);
  assert.equal(uri.out.trim(), 'http://ca.example:8080/ocsp');

  const good = await ocsp(dev.pem, { extra: ['-resp_text'] });
  assert.equal(good.status, 0, good.out);
  assert.match(good.out, /Response verify OK/);
  assert.match(good.out, new RegExp(`${dev.pem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: good`));
  assert.match(good.out, /OCSP Nonce/); // openssl sends a nonce by default and checks the echo
  assert.doesNotMatch(good.out, /WARNING/);
  assert.match(good.out, /This Update: .*\n\s*Next Update: /);
  // ResponderID byKey (RFC 5019 §2.2.2), signed by the CA itself: no certificates sent along.
  assert.match(good.out, /Responder Id: [0-9A-F]{40}/);

  // `scepter revoke` in another process, on the same data directory and store.
  const rv = await run(process.execPath, [
    ...CLI,
    'revoke',
    '--data',
    s.dataDir!.dataDir,
    '--serial',
    dev.cert.serialHex,
    '--reason',
    'keyCompromise',
  ]);
  assert.equal(rv.status, 0, rv.out);
  const revoked = await ocsp(dev.pem, { extra: ['-resp_text'] });
  assert.equal(revoked.status, 0, revoked.out);
  assert.match(revoked.out, /: revoked/);
  assert.match(revoked.out, /Reason: keyCompromise/);
  const when = /Revocation Time: (.*)/.exec(revoked.out)?.[1];
  assert.ok(when && Math.abs(Date.parse(when) - Date.now()) < 86_400_000, revoked.out);
  assert.match(revoked.out, /Response verify OK/);

  const unknown = await ocsp('0x0badc0ffee');
  assert.equal(unknown.status, 0, unknown.out);
  assert.match(unknown.out, /0x0badc0ffee: unknown/);
  assert.match(unknown.out, /Response verify OK/);

  // A CertID hashed with SHA-256 finds the same CA.
  const sha256 = await ocsp(dev.pem, { digest: 'sha256' });
  assert.match(sha256.out, /: revoked/);
});

test('openssl ocsp: a foreign issuer is unauthorized; hostile requests get malformedRequest, never a 500', async (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  const { dir, url, caPem, enroll } = await setup(t);
  const dev = await enroll('dev-ocsp-2', 2);
  const foreign = makeSelfSigned({
    subject: 'CN=Foreign CA',
    key: pooledRsaKey(9, 2048),
    days: 30,
    ca: true,
  });
  const foreignPem = join(dir, 'foreign.pem');
  writeFileSync(foreignPem, foreign.certPem);
  const other = await ossl(dir, ['ocsp', '-issuer', foreignPem, '-serial', '0x01', '-url', url]);
  assert.match(other.out, /Responder Error: unauthorized \(6\)/i);

  // MD5 CertIDs: refused.
  const md5 = await ossl(dir, ['ocsp', '-md5', '-issuer', caPem, '-cert', dev.pem, '-url', url]);
  assert.match(md5.out, /Responder Error: malformedrequest \(1\)/i);

  const reqDer = join(dir, 'req.der');
  assert.equal(
    (await ossl(dir, ['ocsp', '-issuer', caPem, '-cert', dev.pem, '-no_nonce', '-reqout', reqDer])).status,
    0,
  );
  const req = readFileSync(reqDer);
  const post = async (body: Buffer) => {
    const a = await fetch(url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/ocsp-request' },
    });
    return {
      status: a.status,
      type: a.headers.get('content-type'),
      body: Buffer.from(await a.arrayBuffer()),
    };
  };
  const malformed = Buffer.from('30030a0101', 'hex');
  for (const bad of [
    req.subarray(0, req.length - 3), // truncated
    Buffer.concat([req, Buffer.from([0])]), // trailing byte
    randomBytes(64), // garbage
    Buffer.alloc(100 * 1024, 0x30), // larger than the 16 KiB OCSP bound, within the HTTP body limit
  ]) {
    const a = await post(bad);
    assert.equal(a.status, 200);
    assert.equal(a.type, 'application/ocsp-response');
    assert.deepEqual(a.body, malformed);
  }
  // Beyond the HTTP body limit: 413 before anything is read.
  assert.equal((await post(Buffer.alloc(300 * 1024))).status, 413);
  // GET with something that is not base64, and an empty GET.
  // A broken percent-encoding never reaches us: the router answers 400.
  assert.equal((await fetch(url.replace('/ocsp', '/ocsp/%%%'))).status, 400);
  for (const path of ['/ocsp/!!notbase64', '/ocsp/QUJD%3D%3D%3D%3D', '/ocsp']) {
    const a = await fetch(url.replace('/ocsp', path));
    assert.equal(a.status, 200, path);
    assert.deepEqual(Buffer.from(await a.arrayBuffer()), malformed, path);
  }
  // The well-formed request still works after all that.
  const fine = (await post(req)).body; // 30 82 LL LL, then responseStatus ENUMERATED successful
  assert.equal(fine.subarray(4, 7).toString('hex'), '0a0100');
});

test('GET /ocsp/<base64>: cacheable good answer with RFC 5019 headers, ETag revalidation; openssl reads it', async (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  const { s, dir, url, caPem, enroll, ocsp } = await setup(t, {
    lifecycle: { ocsp: { validitySeconds: 7200 } },
  });
  const dev = await enroll('dev-ocsp-3', 3);
  const reqDer = join(dir, 'req.der');
  assert.equal(
    (await ossl(dir, ['ocsp', '-issuer', caPem, '-cert', dev.pem, '-no_nonce', '-reqout', reqDer])).status,
    0,
  );
  const b64 = readFileSync(reqDer).toString('base64');
  const get = await fetch(`${url}/${encodeURIComponent(b64)}`);
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('content-type'), 'application/ocsp-response');
  const cc = get.headers.get('cache-control') ?? '';
  const maxAge = Number(/max-age=(\d+)/.exec(cc)?.[1]);
  assert.ok(maxAge > 3600 && maxAge <= 7200, cc);
  assert.match(cc, /public/);
  assert.match(cc, /no-transform/);
  assert.ok(get.headers.get('expires'));
  assert.ok(get.headers.get('last-modified'));
  const etag = get.headers.get('etag');
  assert.ok(etag);
  const body = Buffer.from(await get.arrayBuffer());
  const respDer = join(dir, 'resp.der');
  writeFileSync(respDer, body);
  const read = await ocsp(dev.pem, { respin: respDer, extra: ['-no_nonce', '-resp_text'] });
  assert.match(read.out, /: good/);
  assert.match(read.out, /Response verify OK/);
  // Next Update is thisUpdate + the configured 2 h.
  const m = /This Update: (.*)\n\s*Next Update: (.*)/.exec(read.out);
  assert.ok(m, read.out);
  assert.equal(Date.parse(m[2]!) - Date.parse(m[1]!), 7200 * 1000);

  // Raw base64 (no percent-encoding) and base64url work too; the same cached response comes back.
  const raw = await fetch(`${url}/${b64}`);
  assert.deepEqual(Buffer.from(await raw.arrayBuffer()), body);
  const b64url = b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  assert.deepEqual(Buffer.from(await (await fetch(`${url}/${b64url}`)).arrayBuffer()), body);
  const again = await fetch(`${url}/${encodeURIComponent(b64)}`, { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);

  // A revocation invalidates the cached response at once; a POST answer is never HTTP-cacheable.
  await revokeCertificate(
    { store: s.enrollment!.store, crls: s.lifecycle!.crls, actor: 'test' },
    dev.cert.serialHex,
    4,
  );
  const after = await fetch(`${url}/${encodeURIComponent(b64)}`);
  writeFileSync(respDer, Buffer.from(await after.arrayBuffer()));
  const readRevoked = await ocsp(dev.pem, { respin: respDer, extra: ['-no_nonce'] });
  assert.match(readRevoked.out, /: revoked/);
  assert.match(readRevoked.out, /Reason: superseded/);
  const postAnswer = await fetch(url, { method: 'POST', body: readFileSync(reqDer) });
  assert.equal(postAnswer.headers.get('cache-control'), 'no-store');
  // Counted under their own operation label.
  const metrics = await (await fetch(`${s.origin}/metrics`)).text();
  const counted = /scepter_requests_total\{operation="OCSP",outcome="SUCCESS"\} (\d+)/.exec(metrics);
  assert.ok(counted && Number(counted[1]) >= 5, metrics.slice(0, 2000));
});

test('delegated responder: an OCSP-signing certificate with ocsp-nocheck, verified by openssl (-CAfile, -VAfile)', async (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  const { s, dir, url, caPem, enroll, ocsp } = await setup(t, {
    lifecycle: { ocsp: { signer: 'delegated' } },
  });
  const dev = await enroll('dev-ocsp-4', 4);
  const a = await ocsp(dev.pem, { extra: ['-resp_text'] });
  assert.equal(a.status, 0, a.out);
  assert.match(a.out, /: good/);
  assert.match(a.out, /Response verify OK/);
  assert.match(a.out, /OCSP Signing/);
  assert.match(a.out, /OCSP No Check/);
  assert.match(a.out, /Signature Algorithm: ecdsa-with-SHA256/);

  // -VAfile: trust exactly the responder certificate (no chain building).
  const responder = await s.ocsp!.responderFor(s.dataDir!.loaded.ca);
  assert.ok(responder.cert);
  const vaPem = join(dir, 'responder.pem');
  writeFileSync(vaPem, toPem(responder.cert.der));
  const va = await ossl(dir, ['ocsp', '-issuer', caPem, '-cert', dev.pem, '-url', url, '-VAfile', vaPem]);
  assert.match(va.out, /Response verify OK/);
  assert.match(va.out, /: good/);
  // The responder certificate is recorded like every certificate the CA signs.
  const rec = await s.enrollment!.store.getCertificate(responder.cert.serialHex);
  assert.ok(rec);
  assert.match(rec.subject, /OCSP responder/);
  // Checked against the CA with -verify (chain and purpose): openssl accepts it for OCSP signing.
  const rPem = join(dir, 'r.pem');
  writeFileSync(rPem, toPem(responder.cert.der));
  const v = await ossl(dir, ['verify', '-CAfile', caPem, '-purpose', 'ocsphelper', rPem]);
  assert.match(v.out, /OK/);
});

test('with --workers 2 on PostgreSQL: good, revoked after a revocation from another store connection', async (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  if (!needPeer(t, await pgReachable(), `PostgreSQL at ${PG_URL}`)) return;
  const schema = `scepter_ocsp_${randomBytes(6).toString('hex')}`;
  const store = await openStore(PG_URL, { schema, poolSize: 4 });
  const other = await openStore(PG_URL, { schema, poolSize: 1 });
  t.after(async () => {
    await store.close();
    await other.close();
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await c.end();
  });
  const { s, enroll, ocsp } = await setup(t, { store, workers: 2 });
  const dev = await enroll('dev-ocsp-5', 5);
  const good = await ocsp(dev.pem, { extra: ['-no_nonce'] });
  assert.match(good.out, /: good/);
  // Another instance (another connection, as `scepter revoke` would be) revokes it.
  assert.equal(await other.revoke(dev.cert.serialHex, 5, new Date()), true);
  const revoked = await ocsp(dev.pem, { extra: ['-no_nonce'] });
  assert.match(revoked.out, /: revoked/);
  assert.match(revoked.out, /Reason: cessationOfOperation/);
  assert.equal(s.port > 0, true);
});
