/**
 * The real certmonger against scepter: its daemon (`getcert add-scep-ca`, `getcert request`,
 * renewal with `getcert resubmit`) and its SCEP helper `scep-submit` alone, in RA mode (the
 * default for a new data directory) and CA-only mode.
 *
 * certmonger checks the CertRep signature with OpenSSL against the CA certificates it was
 * given as trusted. From GetCACert in RA mode it gets the RA and the CA (trusted); from a
 * CA-only answer only the one certificate, which it uses to encrypt but does not trust, so
 * its daemon ends in CA_UNREACHABLE ("failed to verify signature on server response") unless
 * the CA certificate is handed to it with `getcert add-scep-ca -N ca.pem`.
 *
 * The daemon runs in session mode on a private D-Bus bus (`dbus-daemon --session --fork`),
 * with its state in a temporary directory (CERTMONGER_*_DIR); both are stopped after the test.
 * Every wait polls `getcert list` with a hang limit; nothing is timed.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromPem, parseCertificate, toPem, type Certificate } from '../../src/pkix/certificate.js';
import { nameToString } from '../../src/pkix/name.js';
import { parseEnvelopedData, decryptEnvelopedData } from '../../src/cms/enveloped-data.js';
import { parseDegenerate } from '../../src/cms/degenerate.js';
import { RsaKeyTransport } from '../../src/crypto/key-transport.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { run } from '../helpers/run.js';
import { caCerts, device, pkcsReq, tempDir, testServer } from '../helpers/scep-server.js';

const SCEP_SUBMIT = ['/usr/libexec/certmonger/scep-submit', '/usr/lib/certmonger/scep-submit'].find((p) =>
  existsSync(p),
);
const HAS_DAEMON = hasCommand('certmonger') && hasCommand('getcert') && hasCommand('dbus-daemon');
/** Polls of `getcert list` (one per second at most) before a request is declared hung. */
const POLLS = 180;

interface Daemon {
  getcert(args: string[]): Promise<{ code: number | null; output: string }>;
}

/** A private D-Bus session bus and a certmonger daemon on it, both stopped after the test. */
async function startDaemon(t: TestContext, dir: string): Promise<Daemon> {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir, TMPDIR: dir };
  for (const [name, sub] of [
    ['CERTMONGER_CONFIG_DIR', 'config'],
    ['CERTMONGER_REQUESTS_DIR', 'requests'],
    ['CERTMONGER_CAS_DIR', 'cas'],
    ['CERTMONGER_LOCAL_CA_DIR', 'local'],
    ['CERTMONGER_TMPDIR', 'tmp'],
  ] as const) {
    env[name] = join(dir, sub);
    mkdirSync(env[name]!, { recursive: true });
  }
  env.CERTMONGER_SYSTEM_LOCK_FILE = join(dir, 'lock');
  delete env.DBUS_SESSION_BUS_ADDRESS;

  const bus = spawnSync('dbus-daemon', ['--session', '--fork', '--print-address=1', '--print-pid=1'], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  const [address, pidText] = bus.stdout.trim().split('\n');
  const busPid = Number(pidText);
  assert.ok(address && Number.isInteger(busPid) && busPid > 0, `dbus-daemon did not start: ${bus.stderr}`);
  t.after(() => {
    try {
      process.kill(busPid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  });
  env.DBUS_SESSION_BUS_ADDRESS = address;

  const daemon = spawn('certmonger', ['-n', '-s'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let daemonLog = '';
  daemon.stderr.on('data', (c: Buffer) => (daemonLog += c.toString()));
  const exited = new Promise<void>((r) => daemon.on('close', () => r()));
  t.after(async () => {
    daemon.kill('SIGTERM');
    const killer = setTimeout(() => daemon.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(killer);
  });

  const getcert = (args: string[]) =>
    run('getcert', [args[0]!, '-s', ...args.slice(1)], { env, hangLimitMs: 60_000 });
  for (let i = 0; ; i++) {
    const r = await getcert(['list']);
    if (r.code === 0) break;
    assert.ok(i < POLLS && daemon.exitCode === null, `certmonger did not come up: ${r.output}\n${daemonLog}`);
    await sleep(500);
  }
  return { getcert };
}

/** Polls `getcert list -i ID` until the request settles in one of `states`; returns its listing. */
async function waitFor(
  d: Daemon,
  id: string,
  states: RegExp,
  until: (listing: string) => boolean = () => true,
) {
  let last = '';
  for (let i = 0; i < POLLS; i++) {
    const r = await d.getcert(['list', '-i', id]);
    last = r.output;
    const status = /status: (\S+)/.exec(last)?.[1] ?? '';
    if (states.test(status) && until(last)) return last;
    await sleep(1000);
  }
  assert.fail(`request ${id} did not reach ${states}: ${last}`);
}

function certFile(path: string): Certificate {
  return parseCertificate(fromPem(readFileSync(path, 'utf8'))[0]!);
}

/** The certificate's serial, or undefined while the file is missing or being rewritten. */
function serialIn(path: string): string | undefined {
  try {
    return certFile(path).serialHex;
  } catch {
    return undefined;
  }
}

function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

async function daemonEnrollAndRenew(t: TestContext, ra: boolean): Promise<void> {
  if (!needPeer(t, HAS_DAEMON, 'certmonger with getcert and dbus-daemon (Debian certmonger, dbus)')) return;
  const server = await testServer(t, { ra });
  const work = tempDir(t, 'certmonger-');
  const d = await startDaemon(t, join(work, 'state'));
  const ca = (await caCerts(server.url)).find((c) => c.issuerRaw.equals(c.subjectRaw))!;
  const caPem = join(work, 'ca.pem');
  writeFileSync(caPem, toPem(ca.der));

  // CA-only mode: as configured out of the box, the daemon cannot check the CertRep signature.
  if (!ra) {
    let r = await d.getcert(['add-scep-ca', '-c', 'bare', '-u', server.url]);
    assert.equal(r.code, 0, r.output);
    r = await d.getcert([
      ...['request', '-c', 'bare', '-I', 'bare', '-k', join(work, 'bare.key'), '-f', join(work, 'bare.crt')],
      ...['-N', 'CN=certmonger-bare', '-L', server.dataDir!.challenge.value],
    ]);
    assert.equal(r.code, 0, r.output);
    const listing = await waitFor(d, 'bare', /^(MONITORING|CA_UNREACHABLE|CA_REJECTED|CA_UNCONFIGURED)$/);
    assert.match(listing, /CA_UNREACHABLE/);
    assert.match(listing, /failed to verify signature on server response/);
    await d.getcert(['stop-tracking', '-i', 'bare']);
  }

  // RA mode as is; CA-only mode with the CA certificate given as the signing CA (-N).
  let r = await d.getcert(['add-scep-ca', '-c', 'scepter', '-u', server.url, ...(ra ? [] : ['-N', caPem])]);
  assert.equal(r.code, 0, r.output);
  const keyPath = join(work, 'device.key');
  const crtPath = join(work, 'device.crt');
  const cn = `certmonger-${ra ? 'ra' : 'ca'}`;
  r = await d.getcert([
    ...['request', '-c', 'scepter', '-I', 'dev', '-k', keyPath, '-f', crtPath],
    ...['-N', `CN=${cn},O=scepter-interop`, '-L', server.dataDir!.challenge.value],
  ]);
  assert.equal(r.code, 0, r.output);
  const settled = /^(MONITORING|CA_UNREACHABLE|CA_REJECTED|CA_UNCONFIGURED|NEED_.*)$/;
  let listing = await waitFor(d, 'dev', settled);
  assert.match(listing, /status: MONITORING/, listing);
  const first = certFile(crtPath);
  assert.match(nameToString(first.subjectRaw), new RegExp(`CN=${cn}`));
  assert.deepEqual(first.issuerRaw, ca.subjectRaw);
  assert.deepEqual(
    first.spki,
    createPublicKey(readFileSync(keyPath, 'utf8')).export({ type: 'spki', format: 'der' }),
  );

  // Renewal: certmonger signs the new request with the certificate it holds.
  r = await d.getcert(['resubmit', '-i', 'dev']);
  assert.equal(r.code, 0, r.output);
  listing = await waitFor(d, 'dev', settled, () => {
    const sn = serialIn(crtPath);
    return sn !== undefined && sn !== first.serialHex;
  });
  assert.match(listing, /status: MONITORING/, listing);
  const second = certFile(crtPath);
  assert.notEqual(second.serialHex, first.serialHex);
  assert.match(nameToString(second.subjectRaw), new RegExp(`CN=${cn}`));
  assert.deepEqual(second.issuerRaw, ca.subjectRaw);
}

test('certmonger daemon enrolls and renews (getcert resubmit) in RA mode, the default', async (t) => {
  await daemonEnrollAndRenew(t, true);
});

test('certmonger daemon in CA-only mode: CA_UNREACHABLE as is, enrolls and renews with -N ca.pem', async (t) => {
  await daemonEnrollAndRenew(t, false);
});

/** scep-submit alone: GetCACaps, GetCACert and a PKCSReq built by our codec. */
async function scepSubmitAlone(t: TestContext, ra: boolean): Promise<void> {
  if (!needPeer(t, SCEP_SUBMIT !== undefined, "certmonger's scep-submit (Debian certmonger)")) return;
  const server = await testServer(t, { ra });
  const work = tempDir(t, 'scep-submit-');
  const caps = await run(SCEP_SUBMIT!, ['-u', server.url, '-c']);
  assert.equal(caps.code, 0, caps.output);
  for (const k of ['AES', 'POSTPKIOperation', 'Renewal', 'SHA-256'])
    assert.match(caps.output, new RegExp(`^${k}$`, 'm'));
  const got = await run(SCEP_SUBMIT!, ['-u', server.url, '-C']);
  assert.equal(got.code, 0, got.output);
  const certs = await caCerts(server.url);
  const ca = certs.find((c) => c.issuerRaw.equals(c.subjectRaw))!;
  const recipient = certs[0]!;
  assert.ok(
    got.output.includes(toPem(recipient.der).trim().split('\n')[1]!),
    'scep-submit -C shows the first certificate',
  );
  const file = (name: string, data: string): string => {
    const p = join(work, name);
    writeFileSync(p, data);
    return p;
  };
  const raPem = file('ra.pem', toPem(recipient.der));
  const caPem = file('ca.pem', toPem(ca.der));
  const dev = device(`CN=scep-submit-${ra ? 'ra' : 'ca'}`, { pool: 6 });
  const req = pkcsReq(dev, recipient, { challenge: server.dataDir!.challenge.value });
  const msg = file('req.b64', req.der.toString('base64'));

  // The daemon's configuration: RA mode has the CA as the trusted signing CA; CA-only has nothing.
  if (!ra) {
    const bare = await run(SCEP_SUBMIT!, ['-u', server.url, '-r', raPem, '-p', msg]);
    assert.notEqual(bare.code, 0);
    assert.match(bare.output, /failed to verify signature on server response/);
  }
  const ok = await run(SCEP_SUBMIT!, ['-u', server.url, '-r', raPem, '-N', caPem, '-p', msg]);
  assert.equal(ok.code, 0, ok.output);
  // scep-submit prints the verified reply's pkcsPKIEnvelope; the device opens it.
  const envelope = fromPem(ok.stdout.toString('utf8'), 'PKCS7')[0]!;
  const { content } = decryptEnvelopedData(parseEnvelopedData(envelope), [
    { cert: dev.signer.cert, transport: new RsaKeyTransport(dev.key) },
  ]);
  const issued = parseDegenerate(content).certificates[0]!;
  assert.match(nameToString(issued.subjectRaw), /CN=scep-submit-/);
  assert.deepEqual(issued.spki, spkiOf(dev.key));
  assert.deepEqual(issued.issuerRaw, ca.subjectRaw);
}

test('certmonger scep-submit alone against RA mode', async (t) => {
  await scepSubmitAlone(t, true);
});

test('certmonger scep-submit alone against CA-only mode (needs -N ca.pem)', async (t) => {
  await scepSubmitAlone(t, false);
});
