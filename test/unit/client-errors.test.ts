/**
 * Stable error codes of the public client API: callers (and the CLI) branch on the error class
 * and its `code`, never on message text. Everything is imported from the package entry point
 * (src/index.ts), so this also checks that the errors and their code types are exported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ScepClient,
  ScepClientError,
  ScepArgumentError,
  ScepFailureError,
  ScepTransportError,
  ScepProtocolError,
  AgentConfigError,
  parseAgentConfig,
  type FetchLike,
  type ScepClientErrorCode,
} from '../../src/index.js';
import { FailInfo } from '../../src/scep/types.js';
import { scepterCli } from '../helpers/cli.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';

function client(fetch: FetchLike): ScepClient {
  return new ScepClient({ url: 'http://scep.invalid/scep', fetch, retries: 0 });
}

async function rejectsWith<T extends ScepClientError>(
  p: Promise<unknown>,
  cls: abstract new (...a: never[]) => T,
  code: ScepClientErrorCode,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

test('argument errors carry a code and are thrown before any request', async () => {
  assert.throws(
    () => new ScepClient({ url: 'ftp://x/scep' }),
    (e: unknown) => e instanceof ScepArgumentError && e.code === 'invalid-url',
  );
  assert.throws(
    () => new ScepClient({ url: 'http://x/scep', caFingerprint: 'md5:00' }),
    (e: unknown) => e instanceof ScepArgumentError && e.code === 'invalid-fingerprint',
  );
  // renew with a key that is not the certificate's: the code the CLI maps to a usage error.
  const a = makeSelfSigned({ subject: 'CN=a', key: pooledRsaKey(0) });
  const other = pooledRsaKey(1);
  let calls = 0;
  const c = client(async () => {
    calls++;
    return new Response('', { status: 200 });
  });
  await rejectsWith(c.renew({ cert: a.cert, key: other }), ScepArgumentError, 'key-cert-mismatch');
  assert.equal(calls, 1, 'only GetCACaps was sent');
});

test('transport errors: unreachable, timeout, HTTP status, oversize body', async () => {
  await rejectsWith(
    client(async () => {
      throw new TypeError('fetch failed');
    }).getCaCert(),
    ScepTransportError,
    'unreachable',
  );
  await rejectsWith(
    client(async () => {
      throw Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    }).getCaCert(),
    ScepTransportError,
    'timeout',
  );
  await rejectsWith(
    client(async () => new Response('no', { status: 403 })).getCaCert(),
    ScepTransportError,
    'http-status',
  );
  await rejectsWith(
    client(
      async () => new Response('x', { status: 200, headers: { 'content-length': String(1 << 30) } }),
    ).getCaCert(),
    ScepTransportError,
    'body-too-large',
  );
});

test('a transport error keeps its code through retries', async () => {
  let calls = 0;
  const c = new ScepClient({
    url: 'http://scep.invalid/scep',
    retries: 2,
    backoffMs: 1,
    fetch: async () => {
      calls++;
      return new Response('busy', { status: 503 });
    },
  });
  await assert.rejects(c.getCaCert(), (e: unknown) => {
    assert.ok(e instanceof ScepTransportError);
    assert.equal(e.code, 'http-status');
    assert.equal(e.status, 503);
    return true;
  });
  assert.equal(calls, 3);
});

test('protocol errors: undecodable or unpinned GetCACert', async () => {
  await rejectsWith(
    client(
      async () =>
        new Response(new Uint8Array([1, 2, 3]), {
          headers: { 'content-type': 'application/x-x509-ca-cert' },
        }),
    ).getCaCert(),
    ScepProtocolError,
    'bad-ca-certs',
  );
  const ca = makeSelfSigned({ subject: 'CN=ca', key: pooledRsaKey(0), ca: true });
  const pinned = new ScepClient({
    url: 'http://x/scep',
    caFingerprint: 'sha256:' + '00'.repeat(32),
    retries: 0,
    fetch: async () =>
      new Response(new Uint8Array(ca.certDer), { headers: { 'content-type': 'application/x-x509-ca-cert' } }),
  });
  await rejectsWith(pinned.getCaCert(), ScepProtocolError, 'ca-not-pinned');
});

test('failure codes follow the failInfo', () => {
  const code = (f: FailInfo | undefined) => new ScepFailureError({ failInfo: f, transactionId: 't' }).code;
  assert.equal(code(FailInfo.badAlg), 'bad-alg');
  assert.equal(code(FailInfo.badMessageCheck), 'bad-message-check');
  assert.equal(code(FailInfo.badRequest), 'bad-request');
  assert.equal(code(FailInfo.badTime), 'bad-time');
  assert.equal(code(FailInfo.badCertId), 'bad-cert-id');
  assert.equal(code(undefined), 'unknown-fail-info');
  assert.equal(code(9 as FailInfo), 'unknown-fail-info');
});

test('agent config errors carry a code', () => {
  const codeOf = (raw: unknown, env: Record<string, string> = {}): string => {
    try {
      parseAgentConfig(raw, '/tmp', env);
    } catch (e) {
      assert.ok(e instanceof AgentConfigError);
      return e.code;
    }
    return 'no error';
  };
  assert.equal(codeOf([]), 'invalid-config');
  assert.equal(codeOf({ url: 'http://x/scep', certificates: [] }), 'invalid-config');
  const cert = { subject: 'CN=a', out: '/tmp/a' };
  assert.equal(
    codeOf({ url: 'http://x/scep', challengeEnv: 'NOPE_NOT_SET', certificates: [cert] }),
    'missing-challenge',
  );
  assert.equal(
    codeOf({ url: 'http://x/scep', challengeFile: '/nonexistent/dir/file', certificates: [cert] }),
    'unreadable-file',
  );
});

test("CLI renew: a key that is not the certificate's is a usage error (exit 2), found by code", async (t) => {
  // GetCACert gets a CA certificate, anything else an empty 200 (GetCACaps: no capabilities).
  const ca = makeSelfSigned({ subject: 'CN=ca', key: pooledRsaKey(2), ca: true });
  const srv = createServer((req, res) => {
    if (!req.url?.includes('GetCACert')) return res.end();
    res.setHeader('content-type', 'application/x-x509-ca-cert');
    res.end(ca.certDer);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'scepter-renew-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = makeSelfSigned({ subject: 'CN=a', key: pooledRsaKey(0) });
  writeFileSync(join(dir, 'cert.pem'), a.certPem);
  writeFileSync(join(dir, 'key.pem'), pooledRsaKey(1).export({ format: 'pem', type: 'pkcs8' }));
  const args = ['renew', '--url', `http://127.0.0.1:${port}/scep`, '--cert', join(dir, 'cert.pem')];
  args.push('--key', join(dir, 'key.pem'), '--out', join(dir, 'out'));
  const r = await scepterCli(args);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--key is not the private key of --cert/);
});
