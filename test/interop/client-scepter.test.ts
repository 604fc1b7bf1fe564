/**
 * The scepter client against scepter's own server (in-process `startServer`), in CA-only and
 * RA mode: getcaps, getca, enroll, renew with and without a new key, getcert, getcrl,
 * getnextca; polling through a manual approval (library and CLI, with its progress line);
 * an operator rejection (exit 3); and the agent renewing twice with a simulated clock (year-long
 * certificates) while the pair on disk stays consistent — the real-clock version with 20-second
 * certificates is test/interop/agent-scepter.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Agent,
  keyMatchesCert,
  parseAgentConfig,
  readPair,
  ScepClient,
  ScepTransportError,
  verifyCrlSignature,
  type IssuedResult,
} from '../../src/client/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { fromPem, parseCertificate, verifyCertificateSignature } from '../../src/pkix/certificate.js';
import { scepterCli } from '../helpers/cli.js';
import { hasCommand } from '../helpers/peers.js';
import { seeded } from '../helpers/scep-server.js';

const CHALLENGE = 'scepter-own-server-pw';
const dirs: string[] = [];
const running: RunningServer[] = [];
const stores: Store[] = [];
after(async () => {
  for (const s of running) await s.close();
  for (const s of stores) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'scepter-client-own-'));
  dirs.push(d);
  return d;
}

async function serve(
  o: { ra?: boolean; manual?: boolean } = {},
): Promise<{ srv: RunningServer; store: Store; dir: string }> {
  const dir = tmp();
  const store = await openStore(`sqlite:${join(dir, 'store.db')}`);
  stores.push(store);
  const srv = await startServer(
    seeded({
      dataDir: join(dir, 'data'),
      challenge: CHALLENGE,
      keySize: 2048,
      store,
      logLevel: 'silent',
      ...(o.ra ? { ra: true } : {}),
      ...(o.manual ? { lifecycle: { approval: { mode: 'manual' as const } } } : {}),
    }),
  );
  running.push(srv);
  return { srv, store, dir };
}

function cli(args: string[], env: Record<string, string> = {}, onStderr?: (s: string) => void) {
  return scepterCli(args, { env, ...(onStderr ? { onStderr } : {}) });
}

for (const mode of ['CA-only', 'RA'] as const) {
  test(`${mode}: getcaps, getca, enroll, renew (new and same key), getcert, getcrl, getnextca`, async () => {
    const { srv, dir } = await serve({ ra: mode === 'RA' });
    const probe = new ScepClient({ url: srv.url });
    const caps = await probe.getCaCaps();
    assert.ok(caps.has('AES') && caps.has('POSTPKIOperation') && caps.has('Renewal'));
    const ca = await probe.getCaCert();
    assert.equal(ca.ra, mode === 'RA');
    if (mode === 'RA') assert.notEqual(ca.encryption, ca.ca, 'the envelope goes to the RA certificate');

    const c = new ScepClient({ url: srv.url, caFingerprint: ca.anchorFingerprint });
    const r = (await c.enroll({
      subject: `CN=own-${mode},O=scepter`,
      sans: 'dns:own.example',
      challenge: CHALLENGE,
    })) as IssuedResult;
    assert.equal(r.status, 'issued');
    assert.equal(r.insecureCipher, undefined, 'our server never answers in single DES');
    assert.equal(r.replyCipher, 'aes256');
    assert.ok(verifyCertificateSignature(r.certificate, ca.ca.publicKey()));

    const renewedNew = (await c.renew({ cert: r.certificate, key: r.key, newKey: true })) as IssuedResult;
    assert.equal(renewedNew.via, 'RenewalReq');
    assert.ok(!renewedNew.certificate.spki.equals(r.certificate.spki));
    const renewedSame = (await c.renew({
      cert: renewedNew.certificate,
      key: renewedNew.key,
    })) as IssuedResult;
    assert.ok(renewedSame.certificate.spki.equals(renewedNew.certificate.spki));
    assert.notEqual(renewedSame.certificate.serialHex, renewedNew.certificate.serialHex);

    const fetched = await c.getCert(renewedNew.certificate.serialHex);
    assert.ok(fetched.der.equals(renewedNew.certificate.der));
    const crl = await c.getCrl(r.certificate);
    assert.ok(verifyCrlSignature(crl.crl, ca.ca));

    // No rollover in progress: GetNextCACert is not offered and the server answers HTTP 400.
    assert.ok(!caps.has('GetNextCACert'));
    await assert.rejects(
      c.getNextCaCert(),
      (e: unknown) => e instanceof ScepTransportError && e.status === 400,
    );

    if (hasCommand('openssl')) {
      const caFile = join(dir, 'ca.pem');
      const g = await cli(['getca', '--url', srv.url, '--out', caFile]);
      assert.equal(g.status, 0, g.stderr);
      const out = join(dir, 'cli');
      const e = await cli(['enroll', '--url', srv.url, '--subject', 'CN=own-cli', '--out', out, '--json'], {
        SCEPTER_CHALLENGE: CHALLENGE,
      });
      assert.equal(e.status, 0, e.stderr + e.stdout);
      assert.equal((JSON.parse(e.stdout) as { insecureCipher: unknown }).insecureCipher, null);
      const certFile = join(out, 'cert.pem');
      const v = spawnSync('openssl', ['verify', '-CAfile', caFile, certFile], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stdout + v.stderr);
      const serial = parseCertificate(fromPem(readFileSync(certFile, 'utf8'))[0]!).serialHex;
      const gc = await cli(['getcert', '--url', srv.url, '--serial', serial]);
      assert.equal(gc.status, 0, gc.stderr);
      assert.ok(fromPem(gc.stdout)[0]!.equals(fromPem(readFileSync(certFile, 'utf8'))[0]!));
      const crlFile = join(dir, 'ca.crl');
      const gl = await cli(['getcrl', '--url', srv.url, '--for', certFile, '--out', crlFile]);
      assert.equal(gl.status, 0, gl.stderr);
      const oc = spawnSync(
        'openssl',
        ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-CAfile', caFile],
        { encoding: 'utf8' },
      );
      assert.equal(oc.status, 0, oc.stdout + oc.stderr);
      assert.match(oc.stderr + oc.stdout, /verify OK/);
    }
  });
}

test('manual approval: the library polls (CertPoll, same transactionID) until an operator approves', async () => {
  const { srv, store } = await serve({ manual: true });
  const c = new ScepClient({ url: srv.url });
  const first = await c.enroll({ subject: 'CN=needs-approval', challenge: CHALLENGE });
  assert.equal(first.status, 'pending');
  if (first.status !== 'pending') return;
  const again = await c.poll(first);
  assert.equal(again.status, 'pending');
  // The operator approves once the library has started polling (event-driven, no timer race).
  const polls: number[] = [];
  let decided: Promise<unknown> | undefined;
  const r = await c.waitForCertificate(first, {
    intervalMs: 200,
    timeoutMs: 20_000,
    onPoll: (n) => {
      polls.push(n);
      decided ??= store.decide(first.transactionId, 'approved');
    },
  });
  await decided;
  assert.ok(polls.length >= 1);
  assert.equal(r.transactionId, first.transactionId);
  assert.ok(keyMatchesCert(first.key, r.certificate));
});

test('manual approval via the CLI: progress lines while pending, then issued; rejection exits 3', async () => {
  const { srv, store, dir } = await serve({ manual: true });
  let approved = false;
  const ok = await cli(
    [
      'enroll',
      '--url',
      srv.url,
      '--subject',
      'CN=cli-pending',
      '--out',
      join(dir, 'p1'),
      '--poll-interval',
      '1',
      '--poll-timeout',
      '60',
    ],
    { SCEPTER_CHALLENGE: CHALLENGE },
    (stderr) => {
      const m = /pending: the server holds request ([0-9A-F]+)/.exec(stderr);
      if (m && !approved && /poll 1 /.test(stderr)) {
        approved = true;
        void store.decide(m[1]!, 'approved');
      }
    },
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /pending: poll 1 \(\d+ s elapsed\)/);
  assert.match(ok.stdout, /issued certificate/);
  const pair = await readPair(join(dir, 'p1'));
  assert.ok(pair && keyMatchesCert(pair.key, pair.certificate));

  let rejected = false;
  const no = await cli(
    [
      'enroll',
      '--url',
      srv.url,
      '--subject',
      'CN=cli-rejected',
      '--out',
      join(dir, 'p2'),
      '--poll-interval',
      '1',
      '--poll-timeout',
      '60',
    ],
    { SCEPTER_CHALLENGE: CHALLENGE },
    (stderr) => {
      const m = /pending: the server holds request ([0-9A-F]+)/.exec(stderr);
      if (m && !rejected) {
        rejected = true;
        void store.decide(m[1]!, 'rejected', 'not on the list');
      }
    },
  );
  assert.equal(no.status, 3, no.stderr);
  assert.match(no.stderr, /rejected/);

  const timeout = await cli(
    [
      'enroll',
      '--url',
      srv.url,
      '--subject',
      'CN=cli-waits',
      '--out',
      join(dir, 'p3'),
      '--poll-interval',
      '1',
      '--poll-timeout',
      '2',
      '--json',
    ],
    { SCEPTER_CHALLENGE: CHALLENGE },
  );
  assert.equal(timeout.status, 4, timeout.stderr + timeout.stdout);
  assert.equal((JSON.parse(timeout.stdout) as { kind: string }).kind, 'ScepPendingTimeoutError');
});

test('agent against scepter serve: enroll, then two renewals as (simulated) time passes; pair always consistent', async () => {
  const { srv, dir } = await serve({ ra: true });
  let clock = Date.now();
  const cfg = parseAgentConfig(
    {
      url: srv.url,
      challenge: CHALLENGE,
      certificates: [{ name: 'gw', subject: 'CN=agent-gw,O=scepter', out: 'gw', renewAt: 0.5 }],
    },
    dir,
  );
  const agent = new Agent(cfg, { now: () => clock });
  const out = join(dir, 'gw');
  let stop = false;
  let checks = 0;
  let readerError: unknown;
  const reader = (async () => {
    while (!stop) {
      try {
        const p = await readPair(out);
        if (p) {
          assert.ok(keyMatchesCert(p.key, p.certificate));
          checks++;
        }
      } catch (e) {
        readerError = e;
        return;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const actions: string[] = [];
  const serials: string[] = [];
  // Certificates live 365 days (the default); renewAt 0.5 → due after ~182 days. The
  // simulated clock runs ahead of real time (the server issues at real time).
  const DAY = 86_400_000;
  for (const aheadDays of [0, 100, 200, 100, 200]) {
    clock = Date.now() + aheadDays * DAY;
    const [o] = await agent.runOnce();
    actions.push(o!.action);
    serials.push(o!.serial ?? '');
  }
  stop = true;
  await reader;
  assert.equal(readerError, undefined);
  assert.deepEqual(actions, ['enrolled', 'valid', 'renewed', 'valid', 'renewed']);
  assert.equal(
    new Set(serials.filter((_, i) => actions[i] !== 'valid')).size,
    3,
    'three distinct certificates',
  );
  assert.equal(serials[1], serials[0]);
  assert.equal(serials[3], serials[2]);
  assert.ok(checks > 5);
});
