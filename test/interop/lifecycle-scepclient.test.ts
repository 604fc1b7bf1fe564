/**
 * The certificate lifecycle against real programs: micromdm `scepclient` (manual approval —
 * it resends its PKCSReq every 30 s while PENDING —, RenewalReq with the same and a new key),
 * the real `scepter pending|revoke` CLI in another process on the same SQLite store, and
 * `openssl crl` / `openssl verify -crl_check` on the published CRL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, request, type IncomingMessage } from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fromPem, parseCertificate, toPem } from '../../src/pkix/certificate.js';
import { decodeCertRep, decodePkiRequest, PkiStatus, type CertRep } from '../../src/scep/index.js';
import { ScepClient } from '../../src/client/client.js';
import type { RunningServer } from '../../src/server/index.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { run, waitFor } from '../helpers/run.js';
import { scepclient } from '../helpers/scepclient.js';
import { TEST_CHALLENGE, tempDir, testServer } from '../helpers/scep-server.js';

const HAVE_SCEPCLIENT = hasCommand('scepclient');
const HAVE_OPENSSL = hasCommand('openssl');
const CLI = join(process.cwd(), 'src/cli/main.ts');

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

/**
 * A recording HTTP proxy in front of the server: every PKIOperation request and reply. Errors
 * on either leg (a client hanging up, the upstream failing) are recorded and answered with 502
 * instead of crashing the test process; upstream connections are not reused (`agent: false`),
 * so no request ever lands on an idle socket the server is closing.
 */
async function recordingProxy(
  t: Parameters<typeof testServer>[0],
  target: RunningServer,
): Promise<{ url: string; exchanges: Array<{ req: Buffer; rep: Buffer }>; errors: string[] }> {
  const exchanges: Array<{ req: Buffer; rep: Buffer }> = [];
  const errors: string[] = [];
  const server = createServer((req, res) => {
    const fail = (e: unknown) => {
      errors.push(`${req.method} ${req.url}: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('proxy error\n');
      else res.destroy();
    };
    res.on('error', (e) => errors.push(`reply to ${req.url}: ${e.message}`));
    body(req).then((data) => {
      const fwd = request(
        `${target.origin}${req.url ?? '/'}`,
        {
          method: req.method,
          agent: false,
          headers: { 'content-type': req.headers['content-type'] ?? '' },
        },
        (up) => {
          body(up).then((rep) => {
            if ((req.url ?? '').includes('PKIOperation') && req.method === 'POST')
              exchanges.push({ req: data, rep });
            res
              .writeHead(up.statusCode ?? 502, { 'content-type': up.headers['content-type'] ?? '' })
              .end(rep);
          }, fail);
        },
      );
      fwd.on('error', fail);
      fwd.end(data);
    }, fail);
  });
  server.on('clientError', (e, socket) => {
    errors.push(`client: ${e.message}`);
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/scep`, exchanges, errors };
}

/**
 * Runs the CLI without blocking this process, which also runs the server under test: a
 * synchronous spawn would stall the server's and the HTTP client's keep-alive timers, and the
 * next request could then reuse a connection the server closes at the same moment.
 */
async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const r = await run(process.execPath, ['--import', 'tsx', CLI, ...args], { hangLimitMs: 60_000 });
  return { code: r.code, out: r.output };
}

/** Every recorded reply verifies under the CA and echoes its own request's nonce and transactionID. */
function checkReplies(
  exchanges: Array<{ req: Buffer; rep: Buffer }>,
  ca: ReturnType<typeof parseCertificate>,
): CertRep[] {
  return exchanges.map(({ req, rep }) => {
    const r = decodePkiRequest(req);
    return decodeCertRep(rep, {
      transactionId: r.transactionId,
      senderNonce: r.senderNonce,
      trustedSigners: [ca],
    });
  });
}

test(
  'scepclient waits while PENDING; `scepter pending approve` → certificate, `reject` → FAILURE',
  { timeout: 150_000 },
  async (t) => {
    if (!needPeer(t, HAVE_SCEPCLIENT, 'micromdm scepclient')) return;
    const s = await testServer(t, {
      enrollment: { allowSingleDes: true },
      lifecycle: { approval: { mode: 'manual' } },
    });
    const data = s.dataDir!.dataDir;
    const ca = s.dataDir!.loaded.caCert;
    const proxy = await recordingProxy(t, s);
    const dirA = tempDir(t);
    const dirB = tempDir(t);
    // Without a challenge: the operator decides.
    const a = scepclient(proxy.url, dirA, 'approve-me');
    const b = scepclient(proxy.url, dirB, 'reject-me');

    const store = s.enrollment!.store;
    const pending = await waitFor(async () => {
      const p = await store.listTransactions({ state: 'pending' });
      return p.items.length === 2 ? p.items : undefined;
    }, 20_000);
    const txA = pending.find((x) => x.subject?.includes('approve-me'))!;
    const txB = pending.find((x) => x.subject?.includes('reject-me'))!;
    assert.ok(txA && txB);

    const list = await cli(['pending', 'list', '--data', data]);
    assert.equal(list.code, 0, list.out);
    assert.ok(list.out.includes(txA.transactionId) && list.out.includes(txB.transactionId), list.out);
    const show = await cli(['pending', 'show', txA.transactionId, '--data', data, '--json']);
    assert.equal(JSON.parse(show.out).challenge, 'absent');
    assert.equal((await cli(['pending', 'approve', txA.transactionId, '--data', data])).code, 0);
    assert.equal(
      (await cli(['pending', 'reject', txB.transactionId, '--data', data, '--reason', 'unknown device']))
        .code,
      0,
    );
    assert.equal(
      (await cli(['pending', 'approve', txB.transactionId, '--data', data])).code,
      1,
      'already decided',
    );

    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(ra.code, 0, ra.output);
    assert.match(ra.output, /PENDING/);
    const issued = parseCertificate(fromPem(readFileSync(join(dirA, 'client.pem'), 'utf8'))[0]!);
    assert.equal(issued.issuerRaw.equals(ca.subjectRaw), true);
    assert.notEqual(rb.code, 0);
    assert.match(rb.output, /badRequest/);
    assert.ok(!existsSync(join(dirB, 'client.pem')));

    const reps = checkReplies(proxy.exchanges, ca);
    const statuses = reps.map((r) => r.status);
    assert.ok(statuses.filter((x) => x === PkiStatus.PENDING).length >= 2, 'both got PENDING first');
    assert.equal(statuses.filter((x) => x === PkiStatus.SUCCESS).length, 1);
    assert.equal(statuses.filter((x) => x === PkiStatus.FAILURE).length, 1);
    assert.equal((await store.searchCertificates({ transactionId: txA.transactionId })).total, 1);
  },
);

test(
  'scepclient renews (RenewalReq) with the same key and with a new key per --renewal-key',
  { timeout: 120_000 },
  async (t) => {
    if (!needPeer(t, HAVE_SCEPCLIENT, 'micromdm scepclient')) return;
    if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
    for (const policy of ['any', 'new'] as const) {
      const s = await testServer(t, {
        enrollment: { allowSingleDes: true },
        lifecycle: { renewal: { key: policy } },
      });
      const proxy = await recordingProxy(t, s);
      const ca = s.dataDir!.loaded.caCert;
      const dir = tempDir(t);
      const first = await scepclient(proxy.url, dir, `renew-${policy}`, {
        extra: ['-challenge', TEST_CHALLENGE],
      });
      assert.equal(first.code, 0, first.output);
      const pem = join(dir, 'client.pem');
      const c0 = parseCertificate(fromPem(readFileSync(pem, 'utf8'))[0]!);

      // Same key: scepclient signs a RenewalReq with client.pem and reuses csr.pem.
      const same = await scepclient(proxy.url, dir, `renew-${policy}`);
      const c1 = parseCertificate(fromPem(readFileSync(pem, 'utf8'))[0]!);
      if (policy === 'any') {
        assert.equal(same.code, 0, same.output);
        assert.notEqual(c1.serialHex, c0.serialHex);
        assert.ok(c1.spki.equals(c0.spki));
      } else {
        assert.notEqual(same.code, 0);
        assert.match(same.output, /RenewalReq \(17\) request failed, failInfo: badRequest/);
        assert.ok(c1.der.equals(c0.der), 'certificate unchanged');
      }

      // New key: a CSR for a fresh key (subject of the old certificate), still signed with the old one.
      const subj = spawnSync('openssl', ['x509', '-in', pem, '-noout', '-subject', '-nameopt', 'compat'], {
        encoding: 'utf8',
      })
        .stdout.replace(/^subject=\s*/, '')
        .trim();
      const newKey = join(dir, 'new.key');
      const r = spawnSync('openssl', [
        'req',
        '-new',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        newKey,
        '-subj',
        subj,
        '-out',
        join(dir, 'csr.pem'),
      ]);
      assert.equal(r.status, 0, r.stderr?.toString());
      const renewed = await scepclient(proxy.url, dir, `renew-${policy}`);
      assert.equal(renewed.code, 0, renewed.output);
      const c2 = parseCertificate(fromPem(readFileSync(pem, 'utf8'))[0]!);
      const newSpki = spawnSync('openssl', ['pkey', '-in', newKey, '-pubout', '-outform', 'DER']).stdout;
      assert.ok(c2.spki.equals(newSpki), 'certified the new key');
      for (const rep of checkReplies(proxy.exchanges, ca)) assert.ok(rep.status !== PkiStatus.PENDING);
    }
  },
);

test(
  'revoke via CLI: openssl crl lists the serial with its reason; verify -crl_check rejects it; GetCert/GetCRL agree',
  { timeout: 120_000 },
  async (t) => {
    if (!needPeer(t, HAVE_OPENSSL, 'openssl')) return;
    const s = await testServer(t);
    const data = s.dataDir!.dataDir;
    const dir = tempDir(t);
    const client = new ScepClient({ url: s.url, caFingerprint: s.dataDir!.loaded.caCert.fingerprint });
    const good = await client.enroll({ subject: 'CN=stays-valid', challenge: TEST_CHALLENGE });
    const bad = await client.enroll({ subject: 'CN=gets-revoked', challenge: TEST_CHALLENGE });
    assert.ok(good.status === 'issued' && bad.status === 'issued');
    const caPem = join(dir, 'ca.pem');
    writeFileSync(caPem, toPem(s.dataDir!.loaded.caCert.der));
    const goodPem = join(dir, 'good.pem');
    const badPem = join(dir, 'bad.pem');
    writeFileSync(goodPem, toPem(good.certificate.der));
    writeFileSync(badPem, toPem(bad.certificate.der));

    const serialWithColons = bad.certificate.serialHex.toUpperCase().match(/../g)!.join(':');
    const rv = await cli([
      'revoke',
      '--data',
      data,
      '--serial',
      `00:${serialWithColons}`,
      '--reason',
      'keyCompromise',
    ]);
    assert.equal(rv.code, 0, rv.out);
    assert.match(rv.out, /reason keyCompromise/);

    // Plain DER over HTTP, read by openssl.
    const crlDer = Buffer.from(await (await fetch(`${s.origin}/crl`)).arrayBuffer());
    const crlFile = join(dir, 'crl.der');
    writeFileSync(crlFile, crlDer);
    const text = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text'], {
      encoding: 'utf8',
    });
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`Serial Number: ${bad.certificate.serialHex.toUpperCase()}`));
    assert.match(text.stdout, /Key Compromise/);
    assert.match(text.stdout, /X509v3 CRL Number/);
    assert.ok(!text.stdout.includes(good.certificate.serialHex.toUpperCase()));
    const crlPem = join(dir, 'crl.pem');
    writeFileSync(crlPem, toPem(crlDer, 'X509 CRL'));
    const vBad = spawnSync(
      'openssl',
      ['verify', '-crl_check', '-CAfile', caPem, '-CRLfile', crlPem, badPem],
      { encoding: 'utf8' },
    );
    assert.notEqual(vBad.status, 0);
    assert.match(vBad.stdout + vBad.stderr, /certificate revoked/);
    const vGood = spawnSync(
      'openssl',
      ['verify', '-crl_check', '-CAfile', caPem, '-CRLfile', crlPem, goodPem],
      { encoding: 'utf8' },
    );
    assert.equal(vGood.status, 0, vGood.stdout + vGood.stderr);

    // GetCRL serves the same CRL the CLI published; GetCert returns the stored certificate.
    const viaScep = await client.getCrl(bad.certificate);
    assert.ok(viaScep.crl.equals(crlDer));
    const got = await client.getCert(
      Buffer.concat([Buffer.from([0]), Buffer.from(bad.certificate.serialHex, 'hex')]),
    );
    assert.ok(got.der.equals(bad.certificate.der));

    const list = await cli(['certs', 'list', '--data', data, '--status', 'revoked', '--json']);
    const parsed = JSON.parse(list.out) as {
      total: number;
      items: Array<{ serial: string; revocationReason: string }>;
    };
    assert.equal(parsed.total, 1);
    assert.equal(parsed.items[0]!.serial, bad.certificate.serialHex);
    assert.equal(parsed.items[0]!.revocationReason, 'keyCompromise');
    const cn = await cli(['certs', 'list', '--data', data, '--cn', 'stays']);
    assert.ok(
      cn.out.includes(good.certificate.serialHex) && !cn.out.includes(bad.certificate.serialHex),
      cn.out,
    );
  },
);
