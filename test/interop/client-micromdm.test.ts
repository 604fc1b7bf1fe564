/**
 * The scepter client (library and CLI) against the real micromdm `scepserver` (Debian `scep`):
 * getcaps, getca, enroll and renew (RenewalReq signed by the old certificate; micromdm wants the
 * challenge on renewal too), the issued certificates verify with `openssl verify`, and the
 * output says the server answered in single DES (it always does).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScepClient, ScepFailureError, type IssuedResult } from '../../src/client/index.js';
import { fromPem, parseCertificate } from '../../src/pkix/certificate.js';
import { scepterCli, type CliRun } from '../helpers/cli.js';
import { hasCommand, needPeer } from '../helpers/peers.js';

const HAVE = hasCommand('scepserver') && hasCommand('openssl');
const CHALLENGE = 'micromdm-interop-secret';
let dir = '';
let url = '';
let proc: ChildProcess | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitUp(u: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${u}?operation=GetCACaps`);
      if (r.ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('scepserver did not come up');
}

before(async () => {
  if (!HAVE) return;
  dir = mkdtempSync(join(tmpdir(), 'scepter-micromdm-'));
  const depot = join(dir, 'depot');
  const init = spawnSync('scepserver', ['ca', '-init', '-depot', depot, '-keySize', '2048'], {
    encoding: 'utf8',
  });
  assert.equal(init.status, 0, init.stderr);
  const port = await freePort();
  proc = spawn(
    'scepserver',
    ['-depot', depot, '-port', String(port), '-challenge', CHALLENGE, '-allowrenew', '0'],
    { stdio: 'ignore' },
  );
  url = `http://127.0.0.1:${port}/scep`;
  await waitUp(url);
});

after(() => {
  if (proc && proc.exitCode === null) proc.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return scepterCli(args, { env });
}

function opensslVerify(caFile: string, certFile: string): void {
  const r = spawnSync('openssl', ['verify', '-CAfile', caFile, certFile], { encoding: 'utf8' });
  assert.equal(r.status, 0, `openssl verify: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /: OK/);
}

test('library: getcaps, getca, enroll, renew (new key and same key) against micromdm scepserver', async (t) => {
  if (!needPeer(t, HAVE, 'micromdm scepserver and openssl')) return;
  const c = new ScepClient({ url });
  const caps = await c.getCaCaps();
  assert.ok(caps.has('Renewal') && caps.has('POSTPKIOperation') && caps.has('AES'));
  const ca = await c.getCaCert();
  assert.equal(ca.ra, false);
  // Pin what we saw and enroll through a pinned client.
  const pinned = new ScepClient({ url, caFingerprint: ca.ca.fingerprint });
  const r = (await pinned.enroll({
    subject: 'CN=interop-lib,O=scepter',
    challenge: CHALLENGE,
  })) as IssuedResult;
  assert.equal(r.status, 'issued');
  assert.equal(r.insecureCipher, 'des', 'micromdm answers in single DES');
  assert.equal(r.negotiated.cipher, 'aes256');
  const renewed = (await pinned.renew({
    cert: r.certificate,
    key: r.key,
    newKey: true,
    challenge: CHALLENGE,
  })) as IssuedResult;
  assert.equal(renewed.status, 'issued');
  assert.equal(renewed.via, 'RenewalReq');
  assert.notEqual(renewed.certificate.serialHex, r.certificate.serialHex);
  assert.ok(!renewed.certificate.spki.equals(r.certificate.spki));
  const same = (await pinned.renew({
    cert: renewed.certificate,
    key: renewed.key,
    challenge: CHALLENGE,
  })) as IssuedResult;
  assert.ok(same.certificate.spki.equals(renewed.certificate.spki));
  // micromdm checks the challenge on every request, renewals included.
  await assert.rejects(pinned.renew({ cert: same.certificate, key: same.key }), ScepFailureError);
});

test('CLI: getcaps, getca, enroll, renew; openssl verifies; output names single DES; wrong challenge exits 3', async (t) => {
  if (!needPeer(t, HAVE, 'micromdm scepserver and openssl')) return;
  const caps = await cli(['getcaps', '--url', url]);
  assert.equal(caps.status, 0, caps.stderr);
  assert.match(caps.stdout, /^Renewal$/m);
  assert.match(caps.stdout, /aes256\/sha256 via POST/);

  const caFile = join(dir, 'ca.pem');
  const getca = await cli(['getca', '--url', url, '--out', caFile, '--json']);
  assert.equal(getca.status, 0, getca.stderr);
  const caInfo = JSON.parse(getca.stdout) as {
    certificates: Array<{ fingerprint: string; roles: string[] }>;
  };
  const fp = caInfo.certificates[0]!.fingerprint;
  assert.match(fp, /^sha256:[0-9a-f]{64}$/);
  assert.equal(fromPem(readFileSync(caFile, 'utf8')).length, 1);

  const out = join(dir, 'cli-dev');
  const enroll = await cli(
    [
      'enroll',
      '--url',
      url,
      '--ca-fingerprint',
      fp,
      '--subject',
      'CN=interop-cli,O=scepter',
      '--san',
      'dns:interop.example',
      '--out',
      out,
    ],
    { SCEPTER_CHALLENGE: CHALLENGE },
  );
  assert.equal(enroll.status, 0, enroll.stderr);
  assert.match(enroll.stderr, /single DES/);
  assert.ok(!enroll.stdout.includes(CHALLENGE) && !enroll.stderr.includes(CHALLENGE));
  assert.equal(statSync(join(out, 'key.pem')).mode & 0o777, 0o600);
  opensslVerify(caFile, join(out, 'cert.pem'));
  const first = parseCertificate(fromPem(readFileSync(join(out, 'cert.pem'), 'utf8'))[0]!);

  const renew = await cli(
    [
      'renew',
      '--url',
      url,
      '--ca-fingerprint',
      fp,
      '--cert',
      join(out, 'cert.pem'),
      '--key',
      join(out, 'key.pem'),
      '--out',
      out,
      '--new-key',
      '--json',
    ],
    { SCEPTER_CHALLENGE: CHALLENGE },
  );
  assert.equal(renew.status, 0, renew.stderr + renew.stdout);
  const rj = JSON.parse(renew.stdout) as {
    via: string;
    insecureCipher: string | null;
    certificate: { serial: string };
  };
  assert.equal(rj.via, 'RenewalReq');
  assert.equal(rj.insecureCipher, 'des');
  opensslVerify(caFile, join(out, 'cert.pem'));
  const second = parseCertificate(fromPem(readFileSync(join(out, 'cert.pem'), 'utf8'))[0]!);
  assert.notEqual(second.serialHex, first.serialHex);
  assert.equal(rj.certificate.serial, second.serialHex);
  const check = spawnSync('openssl', ['x509', '-noout', '-pubkey', '-in', join(out, 'cert.pem')], {
    encoding: 'utf8',
  });
  const fromKey = spawnSync('openssl', ['pkey', '-pubout', '-in', join(out, 'key.pem')], {
    encoding: 'utf8',
  });
  assert.equal(check.stdout, fromKey.stdout, 'the written key belongs to the renewed certificate');

  const bad = await cli([
    'enroll',
    '--url',
    url,
    '--subject',
    'CN=nope',
    '--challenge',
    'wrong',
    '--out',
    join(dir, 'nope'),
    '--json',
  ]);
  assert.equal(bad.status, 3, bad.stderr + bad.stdout);
  assert.equal((JSON.parse(bad.stdout) as { kind: string }).kind, 'ScepFailureError');

  const next = await cli(['getnextca', '--url', url, '--retries', '0']);
  assert.equal(next.status, 5, 'micromdm has no GetNextCACert: an HTTP error, exit 5');
});
