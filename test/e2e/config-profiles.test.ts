/**
 * examples/two-profiles.yaml served as the configuration file says (loaded, validated and mapped
 * by src/config/, run by startServer) and driven by scepter's client and the real micromdm
 * `scepclient`: GetCACert on both paths, a laptop enrolls with an allowed SAN and is refused
 * with another, a router waits for approval and then gets a certificate with serverAuth +
 * clientAuth that `openssl verify -purpose sslserver` accepts; a reload that changes the
 * laptops challenge while a request is held in flight (by a validation webhook this test
 * controls) lets that request finish under the old configuration; the same with --workers 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OID } from '../../src/asn1/oids.js';
import { ScepClient, ScepFailureError } from '../../src/client/index.js';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { reloadFromFile } from '../../src/cli/commands/serve-config.js';
import { profileSet, restartOnly, serverOptions } from '../../src/config/runtime.js';
import type { ScepterConfig } from '../../src/config/schema.js';
import { parseExtKeyUsage } from '../../src/pkix/extensions.js';
import { nameToString } from '../../src/pkix/name.js';
import { toPem } from '../../src/pkix/certificate.js';
import { crlPath } from '../../src/server/crl-route.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { pooledRsaKey } from '../helpers/pki.js';
import { run } from '../helpers/run.js';
import { seedCa, seeded, tempDir } from '../helpers/scep-server.js';
import type { TestContext } from 'node:test';

const EXAMPLE = 'examples/two-profiles.yaml';
const LAPTOPS_CHALLENGE = 'laptops-secret-1';

function exampleConfig(): ScepterConfig {
  return loadConfigFile(EXAMPLE, { env: { SCEPTER_LAPTOPS_CHALLENGE: LAPTOPS_CHALLENGE } }).config;
}

/** The example's server on a fresh data directory (fixture CA, port 0, silent). */
async function serve(
  t: TestContext,
  config: ScepterConfig,
  o: { workers?: number } = {},
): Promise<RunningServer> {
  const dir = tempDir(t);
  // Named CAs from fixture keys too (the server would create them on first start).
  for (const name of Object.keys(config.cas ?? {})) seedCa({ dataDir: dir, name }, { ra: true });
  const so = serverOptions(config, dir, 'test');
  const s = await startServer(
    seeded({
      ...so,
      ra: true,
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent' as const,
      workers: o.workers ?? 1,
      keySize: 2048 as const,
    }),
  );
  t.after(() => s.close());
  return s;
}

const ekusOf = (c: { extension(oid: string): { value: Buffer } | undefined }) => {
  const e = c.extension(OID.extKeyUsage);
  return e ? parseExtKeyUsage(e.value) : [];
};

test('the example: GetCACert on the two profile paths returns the two CAs, other paths 404', async (t) => {
  const config = exampleConfig();
  // A named admin token from the file's server.admin.tokens.
  config.server = { ...config.server, admin: { tokens: [{ name: 'ops', token: 'ops-token-0123456789' }] } };
  const s = await serve(t, config);
  const fingerprint = async (path: string) =>
    (await new ScepClient({ url: `${s.origin}${path}` }).getCaCert()).ca.fingerprint;
  const laptops = await fingerprint('/scep/laptops');
  const routers = await fingerprint('/scep/routers');
  assert.notEqual(laptops, routers, 'each profile has its own CA');
  assert.equal(await fingerprint('/scep/laptops/cgi-bin/pkiclient.exe'), laptops);
  assert.equal(await fingerprint('/scep/routers/pkiclient.exe'), routers);
  assert.equal(laptops, s.dataDir!.loaded.ca.cert.fingerprint, 'laptops: the default CA');
  for (const fp of [laptops, routers]) {
    const crl = await fetch(`${s.origin}${crlPath(fp)}`);
    assert.equal(crl.status, 200, `the CRL of CA ${fp}`);
  }
  assert.equal((await fetch(`${s.origin}/crl/routers.crl`)).status, 200, 'the CRL of CA routers by name');
  const other = await fetch(`${s.origin}/scep?operation=GetCACaps`);
  assert.equal(other.status, 404);
  assert.match(await other.text(), /no SCEP profile/);

  // The admin dashboard (web console) lists the CAs of both profiles, by name.
  const dash = await fetch(`${s.origin}/admin/dashboard`, {
    headers: { authorization: 'Bearer ops-token-0123456789' },
  });
  assert.equal(dash.status, 200);
  const { cas } = (await dash.json()) as {
    cas: Array<{ ca: string; fingerprint: string; current: boolean }>;
  };
  assert.deepEqual(
    cas.filter((c) => c.current).map((c) => [c.ca, c.fingerprint]),
    [
      ['default', laptops],
      ['routers', routers],
    ],
  );
});

test('the example: a laptop enrolls with a SAN under laptops.example (clientAuth, 90 days) and is refused with another', async (t) => {
  const s = await serve(t, exampleConfig());
  const c = new ScepClient({ url: `${s.origin}/scep/laptops` });
  const r = await c.enroll({
    subject: 'CN=laptop-1',
    sans: 'dns:laptop-1.laptops.example',
    challenge: LAPTOPS_CHALLENGE,
    key: pooledRsaKey(1),
  });
  assert.equal(r.status, 'issued');
  if (r.status !== 'issued') return;
  assert.deepEqual(ekusOf(r.certificate), [OID.ekuClientAuth]);
  const days = (r.certificate.notAfter.getTime() - Date.now()) / 86_400_000;
  assert.ok(days > 89 && days <= 90, `validity ${days} days`);

  await assert.rejects(
    c.enroll({
      subject: 'CN=laptop-2',
      sans: 'dns:laptop-2.example.com',
      challenge: LAPTOPS_CHALLENGE,
      key: pooledRsaKey(2),
    }),
    (e: unknown) =>
      e instanceof ScepFailureError &&
      e.failInfoName === 'badRequest' &&
      /not under laptops\.example/.test(e.failInfoText ?? ''),
  );
  // The laptops challenge is not the routers' (mode none: manual approval) nor accepted elsewhere.
  await assert.rejects(
    c.enroll({
      subject: 'CN=laptop-3',
      sans: 'dns:l3.laptops.example',
      challenge: 'wrong',
      key: pooledRsaKey(3),
    }),
    (e: unknown) => e instanceof ScepFailureError && e.failInfoName === 'badRequest',
  );
});

test('the example: a router waits for approval, then gets serverAuth + clientAuth that openssl verifies for sslserver', async (t) => {
  const config = exampleConfig();
  config.server = { ...config.server, admin: { tokens: [{ name: 'ops', token: 'ops-token-0123456789' }] } };
  const s = await serve(t, config);
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${s.origin}${path}`, {
      method,
      headers: {
        authorization: 'Bearer ops-token-0123456789',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const c = new ScepClient({ url: `${s.origin}/scep/routers` });
  const first = await c.enroll({
    subject: 'CN=router-1.example',
    sans: 'dns:router-1.example',
    key: pooledRsaKey(4),
  });
  assert.equal(first.status, 'pending');
  if (first.status !== 'pending') return;
  // Approved through the admin API, which shows the request's CA and profile.
  const approved = await admin(
    'POST',
    `/admin/pending/${encodeURIComponent(first.transactionId)}/approve`,
    {},
  );
  assert.equal(approved.status, 200);
  const av = (await approved.json()) as { ca: string; profile: string; state: string };
  assert.deepEqual([av.state, av.ca, av.profile], ['approved', 'routers', 'routers']);
  const r = await c.poll(first);
  assert.equal(r.status, 'issued');
  if (r.status !== 'issued') return;
  assert.deepEqual(ekusOf(r.certificate).sort(), [OID.ekuClientAuth, OID.ekuServerAuth].sort());

  // Revoked through the admin API into the CRL of its own CA (routers), audited with CA and profile.
  const serial = r.certificate.serialHex;
  const revoked = await admin('POST', `/admin/certificates/${serial}/revoke?ca=routers`, {
    reason: 'keyCompromise',
  });
  assert.equal(revoked.status, 200);
  const rv = (await revoked.json()) as { ca: string; profile: string; crl: { crlNumber: string } };
  assert.deepEqual([rv.ca, rv.profile], ['routers', 'routers']);
  const latest = await s.enrollment!.store.latestCrl(r.chain[0]!.fingerprint);
  assert.equal(latest?.crlNumber.toString(), rv.crl.crlNumber, "a new CRL of the routers' CA");
  const audit = (await (await admin('GET', '/admin/audit?action=request.')).json()) as {
    items: Array<{ actor: string; details: { ca?: string; profile?: string } }>;
  };
  assert.deepEqual(
    audit.items.map((i) => [i.actor, i.details.ca, i.details.profile]),
    [['ops', 'routers', 'routers']],
  );
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const dir = tempDir(t, 'router-verify-');
  writeFileSync(join(dir, 'ca.pem'), toPem(r.chain[0]!.der));
  writeFileSync(join(dir, 'router.pem'), toPem(r.certificate.der));
  const v = await run('openssl', [
    'verify',
    '-purpose',
    'sslserver',
    '-CAfile',
    join(dir, 'ca.pem'),
    join(dir, 'router.pem'),
  ]);
  assert.equal(v.code, 0, v.output);
  assert.match(v.output, /router\.pem: OK/);
});

test('the example driven by the real micromdm scepclient: a laptop enrolls at /scep/laptops', async (t) => {
  if (!needPeer(t, hasCommand('scepclient'), 'micromdm scepclient')) return;
  const config = exampleConfig();
  // scepclient 2.1 encrypts with single DES whatever GetCACaps says (docs/interop.md).
  config.profiles!.laptops!.allowSingleDes = true;
  const s = await serve(t, config);
  const work = tempDir(t, 'scepclient-');
  const r = await run(
    'scepclient',
    [
      '-server-url',
      `${s.origin}/scep/laptops`,
      '-challenge',
      LAPTOPS_CHALLENGE,
      '-private-key',
      join(work, 'k.pem'),
      '-certificate',
      join(work, 'c.pem'),
      '-cn',
      'laptop-scepclient',
    ],
    { cwd: work },
  );
  assert.equal(r.code, 0, r.output);
  const pem = readFileSync(join(work, 'c.pem'), 'utf8');
  assert.match(pem, /BEGIN CERTIFICATE/);
  const wrong = await run(
    'scepclient',
    [
      '-server-url',
      `${s.origin}/scep/laptops`,
      '-challenge',
      'not-the-laptops-challenge',
      '-private-key',
      join(work, 'k2.pem'),
      '-certificate',
      join(work, 'c2.pem'),
      '-cn',
      'laptop-scepclient-2',
    ],
    { cwd: work },
  );
  assert.notEqual(wrong.code, 0, 'a wrong challenge is refused');
});

/**
 * A validation webhook that holds each request until `release()`: the gate that keeps an
 * enrollment in flight across a reload, deterministically (no timing).
 */
async function gateWebhook(t: TestContext) {
  let arrived!: () => void;
  let arrival = new Promise<void>((r) => (arrived = r));
  let open = false;
  const waiting: ServerResponse[] = [];
  const allow = (res: ServerResponse) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"allow":true}');
  const srv = createServer((req: IncomingMessage, res) => {
    req.resume();
    req.on('end', () => {
      if (open) return allow(res);
      waiting.push(res);
      arrived();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/validate`,
    /** Resolves once a request waits at the gate. */
    held: () => arrival,
    release() {
      open = true;
      for (const res of waiting.splice(0)) allow(res);
      arrival = new Promise<void>((r) => (arrived = r));
    },
  };
}

function laptopsWith(challenge: string, webhook: string): string {
  return `profiles:
  laptops:
    challenge: {mode: static, secrets: ['${challenge}']}
    validation: {url: '${webhook}', mode: always}
    subjectAltNames: {types: [dns], dnsSuffixes: [laptops.example]}
`;
}

for (const workers of [1, 2]) {
  test(`reload (workers ${workers}): a new laptops challenge takes effect; a request in flight finishes under the old one`, async (t) => {
    const gate = await gateWebhook(t);
    const dir = tempDir(t, 'reload-');
    const file = join(dir, 'scepter.yaml');
    writeFileSync(file, laptopsWith('old-challenge', gate.url));
    const first = loadConfigFile(file);
    const s = await serve(t, first.config, { workers });
    assert.equal(s.version().loads, 1);
    const url = `${s.origin}/scep/laptops`;
    const c = new ScepClient({ url });
    await c.getCaCert();

    // In flight: passed the local (old) challenge, now waiting at the webhook.
    const inflight = c.enroll({
      subject: 'CN=held',
      sans: 'dns:held.laptops.example',
      challenge: 'old-challenge',
      key: pooledRsaKey(5),
    });
    await gate.held();

    writeFileSync(file, laptopsWith('new-challenge', gate.url));
    await reloadFromFile(s, file, { config: restartOnly(first.config) });
    assert.equal(s.version().loads, 2, 'the reload was accepted');
    assert.equal(s.version().id, loadConfigFile(file).hash);

    gate.release();
    const held = await inflight;
    assert.equal(
      held.status,
      'issued',
      'the request in flight finished under the configuration it started with',
    );

    await assert.rejects(
      c.enroll({
        subject: 'CN=late-old',
        sans: 'dns:late.laptops.example',
        challenge: 'old-challenge',
        key: pooledRsaKey(6),
      }),
      (e: unknown) => e instanceof ScepFailureError && e.failInfoName === 'badRequest',
    );
    const fresh = await c.enroll({
      subject: 'CN=new',
      sans: 'dns:new.laptops.example',
      challenge: 'new-challenge',
      key: pooledRsaKey(7),
    });
    assert.equal(fresh.status, 'issued');

    // A file that fails validation is refused: the running configuration keeps serving.
    writeFileSync(file, 'profiles:\n  laptops:\n    validity: forever\n');
    await reloadFromFile(s, file, { config: restartOnly(first.config) });
    assert.equal(s.version().loads, 2);
    assert.equal(s.version().failedReloads, 1);
    const ready = await (await fetch(`${s.origin}/readyz`)).text();
    assert.match(ready, /config: [0-9a-f]{16} load 2/);
    const again = await c.enroll({
      subject: 'CN=after-bad',
      sans: 'dns:after.laptops.example',
      challenge: 'new-challenge',
      key: pooledRsaKey(8),
    });
    assert.equal(again.status, 'issued');
    const metrics = await (await fetch(`${s.origin}/metrics`)).text();
    assert.match(metrics, /scepter_config_reload_failures_total 1/);
    assert.match(metrics, /scepter_profile_requests_total\{profile="laptops",outcome="SUCCESS"\} \d+/);
  });
}

test('a reload that changes a restart-only key (server.port) is refused', async (t) => {
  const dir = tempDir(t, 'reload-port-');
  const file = join(dir, 'scepter.yaml');
  writeFileSync(file, 'profiles:\n  default: {}\n');
  const first = loadConfigFile(file);
  const s = await serve(t, first.config);
  writeFileSync(file, 'server: {port: 9999}\nprofiles:\n  default: {validity: 1d}\n');
  await reloadFromFile(s, file, { config: restartOnly(first.config) });
  assert.equal(s.version().loads, 1);
  assert.equal(s.version().failedReloads, 1);
  // The default profile serves every other path, today's URLs included.
  const caps = await fetch(`${s.origin}/cgi-bin/pkiclient.exe?operation=GetCACaps`);
  assert.equal(caps.status, 200);
  assert.deepEqual(
    profileSet(parseConfig('profiles:\n  default: {}\n', 'x').config).defaultProfile,
    'default',
  );
});

test('profile features end to end: CA-only, advertised capabilities, subject template, one-time challenges only, EKU codeSigning', async (t) => {
  const config = parseConfig(
    `profiles:
  signers:
    ra: false
    capabilities: [AES, SHA-256, POSTPKIOperation, SCEPStandard]
    challenge: {mode: one-time}
    subject: {template: 'CN={{csr.CN}},O=Acme Signing'}
    extensions: {extKeyUsage: [codeSigning], keyUsage: [digitalSignature]}
  default:
    challenge: {mode: static, secrets: [plain-secret]}
`,
    'inline.yaml',
  ).config;
  const s = await serve(t, config);
  const signers = `${s.origin}/scep/signers`;
  const caps = (await (await fetch(`${signers}?operation=GetCACaps`)).text()).trim().split('\n');
  assert.deepEqual(caps, ['AES', 'SHA-256', 'POSTPKIOperation', 'SCEPStandard']);
  const everywhere = (await (await fetch(`${s.origin}/anything?operation=GetCACaps`)).text()).split('\n');
  assert.ok(
    everywhere.includes('Renewal'),
    'the default profile serves every other path with all capabilities',
  );
  const c = new ScepClient({ url: signers });
  const ca = await c.getCaCert();
  assert.equal(ca.ra, false, 'CA-only: no RA certificate for this profile (the CA has one)');
  // A static secret is no challenge here; a one-time challenge is.
  await assert.rejects(
    c.enroll({ subject: 'CN=tool,O=Evil', challenge: 'plain-secret', key: pooledRsaKey(9) }),
    (e: unknown) => e instanceof ScepFailureError && e.failInfoName === 'badRequest',
  );
  const { OneTimeChallenges } = await import('../../src/ra/one-time-challenge.js');
  const [otc] = await new OneTimeChallenges(s.dataDir!.challengeKey).mint(s.enrollment!.store, {
    ttlSeconds: 600,
    actor: 'test',
  });
  const r = await c.enroll({ subject: 'CN=tool,O=Evil', challenge: otc!.value, key: pooledRsaKey(9) });
  assert.equal(r.status, 'issued');
  if (r.status !== 'issued') return;
  assert.equal(
    nameToString(r.certificate.subjectRaw),
    'CN=tool,O=Acme Signing',
    'the template replaced the subject',
  );
  assert.deepEqual(ekusOf(r.certificate), [OID.ekuCodeSigning]);
  const rec = await s.enrollment!.store.getCertificate(r.certificate.serialHex, 'default');
  assert.equal(rec?.profile, 'signers', 'the store records the profile');
});
