/**
 * scepter's own client CLI as a new user meets it (issue #12), each run as a subprocess
 * against scepter's server in-process: a pending enrollment that times out is saved and the
 * rerun resumes the SAME transaction; `enroll` refuses to overwrite a pair without --force;
 * `--san` takes bare IP addresses; a closed stdout pipe (`| head -1`) exits quietly; the
 * agent reports each outcome once and `--once` promises no retry.
 * No wall-clock assertions: every wait is on a process exit or a store state.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { fromPem, parseCertificate } from '../../src/pkix/certificate.js';
import { OID } from '../../src/asn1/oids.js';
import { parseSubjectAltName } from '../../src/pkix/extensions.js';
import { scepterCli, type CliRun } from '../helpers/cli.js';
import { seeded } from '../helpers/scep-server.js';
import { pooledRsaKey } from '../helpers/pki.js';
import { buildCertificate, wholeSeconds } from '../../src/pkix/certificate-builder.js';
import { buildName } from '../../src/pkix/name.js';
import { buildSubjectAltName } from '../../src/pkix/extensions.js';
import { createSigner } from '../../src/pkix/signature.js';
import { toPem } from '../../src/pkix/certificate.js';
import { createPublicKey } from 'node:crypto';

const CHALLENGE = 'client-cli-pw';
const dirs: string[] = [];
const running: RunningServer[] = [];
const stores: Store[] = [];
after(async () => {
  for (const s of running) await s.close();
  for (const s of stores) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'scepter-client-cli-'));
  dirs.push(d);
  return d;
}

/** A self-signed TLS server certificate for 127.0.0.1 (fixture key) as PEM, with its key. */
function tlsIdentity(): { cert: string; key: string } {
  const key = pooledRsaKey(5);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const name = buildName('CN=scepter test TLS');
  const notBefore = wholeSeconds(new Date(Date.now() - 60_000));
  const der = buildCertificate(
    {
      serial: Buffer.from([0x12, 0x34]),
      issuerRaw: name,
      subjectRaw: name,
      spki,
      notBefore,
      notAfter: new Date(notBefore.getTime() + 86_400_000),
      extensions: [buildSubjectAltName([{ type: 'ip', value: '127.0.0.1' }])],
    },
    createSigner(key, 'sha256'),
  );
  return { cert: toPem(der), key: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

async function serve(
  manual = false,
  tls?: { cert: string; key: string },
): Promise<{ url: string; store: Store }> {
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
      ...(manual ? { lifecycle: { approval: { mode: 'manual' as const } } } : {}),
      ...(tls ? { tls } : {}),
    }),
  );
  running.push(srv);
  return { url: srv.url, store };
}

/** Runs the CLI; `closeStdout` closes our end of its stdout pipe at once (a reader that left). */
function cli(args: string[], o: { closeStdout?: boolean } = {}): Promise<CliRun> {
  return scepterCli(args, { env: { SCEPTER_CHALLENGE: CHALLENGE }, ...o });
}

function certIn(dir: string) {
  const der = fromPem(readFileSync(join(dir, 'cert.pem'), 'latin1'))[0];
  assert.ok(der, 'cert.pem holds a certificate');
  return parseCertificate(der);
}

test('pending: a poll timeout saves the request; the rerun resumes the same transaction', async () => {
  const { url, store } = await serve(true);
  const out = join(tmp(), 'dev');
  const args = ['enroll', '--url', url, '--subject', 'CN=resume-me', '--out', out, '--poll-timeout', '0'];
  const first = await cli([...args, '--json']);
  assert.equal(first.status, 4, first.stderr + first.stdout);
  const j1 = JSON.parse(first.stdout) as { transactionId: string; resumeFile: string };
  assert.equal(j1.resumeFile, join(out, 'pending.json'));
  assert.ok(existsSync(join(out, 'pending.json')));
  assert.equal(statSync(join(out, 'pending.json')).mode & 0o777, 0o600);
  assert.equal(statSync(join(out, 'pending-key.pem')).mode & 0o777, 0o600);
  assert.ok(!existsSync(join(out, 'key.pem')), 'nothing is installed while pending');
  const savedKey = readFileSync(join(out, 'pending-key.pem'), 'utf8');

  // A second timed-out run resumes (CertPoll) rather than sending a new request.
  const again = await cli(args);
  assert.equal(again.status, 4, again.stderr);
  assert.match(again.stderr, new RegExp(`resuming pending request ${j1.transactionId}`));
  assert.match(again.stderr, /run the same command again \(or with --resume\)/);
  const pending = await store.listTransactions({ state: 'pending', subject: 'resume-me' });
  assert.equal(pending.total, 1, 'still one transaction on the server');

  assert.equal(await store.decide(j1.transactionId, 'approved'), true);
  const second = await cli([...args, '--resume', '--json']);
  assert.equal(second.status, 0, second.stderr + second.stdout);
  const j2 = JSON.parse(second.stdout) as { transactionId: string; status: string };
  assert.equal(j2.status, 'issued');
  assert.equal(j2.transactionId, j1.transactionId, 'the SAME transaction was resumed');
  assert.equal(readFileSync(join(out, 'key.pem'), 'utf8'), savedKey, 'with the saved key');
  assert.equal(statSync(join(out, 'key.pem')).mode & 0o777, 0o600);
  assert.ok(!existsSync(join(out, 'pending.json')) && !existsSync(join(out, 'pending-key.pem')));
  assert.equal((await store.listTransactions({ subject: 'resume-me' })).total, 1);

  // --resume with nothing saved is a usage error.
  const none = await cli([...args, '--resume', '--force']);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--resume: no pending request/);
});

test('enroll: refuses to overwrite key.pem/cert.pem without --force; --san takes bare IPs', async () => {
  const { url } = await serve();
  const out = join(tmp(), 'dev9');
  const base = ['enroll', '--url', url, '--subject', 'CN=dev9', '--out', out];
  const r = await cli([...base, '--san', 'dev9.example,10.1.2.3,2001:db8::9']);
  assert.equal(r.status, 0, r.stderr);
  const cert = certIn(out);
  const san = cert.extension(OID.subjectAltName);
  assert.ok(san);
  assert.deepEqual(parseSubjectAltName(san.value), [
    { type: 'dns', value: 'dev9.example' },
    { type: 'ip', value: '10.1.2.3' },
    { type: 'ip', value: '2001:db8::9' },
  ]);

  const keyBefore = readFileSync(join(out, 'key.pem'), 'utf8');
  const refused = await cli(base);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /key\.pem exists: pass --force/);
  assert.equal(readFileSync(join(out, 'key.pem'), 'utf8'), keyBefore, 'the key is untouched');

  const forced = await cli([...base, '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.notEqual(readFileSync(join(out, 'key.pem'), 'utf8'), keyBefore);

  const bad = await cli([...base, '--force', '--san', 'upn:someone@example']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--san: unknown type 'upn:'/);
});

test('a reader that closes stdout early (| head -1): quiet exit, no EPIPE stack trace', async () => {
  const { url } = await serve();
  const r = await cli(['getca', '--url', url], { closeStdout: true });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /EPIPE|Error|at /);
});

test('agent --once: each outcome once, and no promise of a retry', async () => {
  const { url } = await serve();
  const dir = tmp();
  const cfg = join(dir, 'agent.json');
  writeFileSync(
    cfg,
    JSON.stringify({ url, challenge: CHALLENGE, certificates: [{ subject: 'CN=agent-once', out: 'a' }] }),
  );
  const ok = await cli(['agent', '--config', cfg, '--once']);
  assert.equal(ok.status, 0, ok.stderr);
  const all = ok.stdout + ok.stderr;
  assert.equal(all.match(/enrolled certificate/g)?.length, 1, all);
  assert.doesNotMatch(all, /next check/);

  // Unreachable server (port 9 on loopback: nothing listens): one error line, no "retrying".
  const bad = join(dir, 'bad.json');
  writeFileSync(
    bad,
    JSON.stringify({
      url: 'http://127.0.0.1:9/scep',
      challenge: CHALLENGE,
      certificates: [{ subject: 'CN=agent-down', out: 'b' }],
    }),
  );
  const down = await cli(['agent', '--config', bad, '--once']);
  assert.equal(down.status, 1);
  const text = down.stdout + down.stderr;
  assert.equal(text.match(/cannot reach/g)?.length, 1, text);
  assert.doesNotMatch(text, /retrying in|next check/);
  assert.match(text, /not retried \(--once\)/);
});

test('TLS: --tls-ca trusts a private CA; an untrusted certificate fails at once, in one sentence', async () => {
  const id = tlsIdentity();
  const { url } = await serve(false, id);
  assert.match(url, /^https:\/\/127\.0\.0\.1:/);
  const dir = tmp();
  const caFile = join(dir, 'tls-ca.pem');
  writeFileSync(caFile, id.cert);

  // Without the CA: a verification error, reported once and not retried (--json: no "after N attempts").
  const untrusted = await cli(['getcaps', '--url', url, '--retries', '3']);
  assert.equal(untrusted.status, 5, untrusted.stderr);
  assert.match(
    untrusted.stderr,
    /TLS certificate of 127\.0\.0\.1:\d+ is not trusted \([A-Z_]+\): trust the CA that issued it with --tls-ca FILE/,
  );
  assert.doesNotMatch(untrusted.stderr, /attempts/);
  assert.equal(untrusted.stderr.trim().split('\n').length, 1, untrusted.stderr);

  const trusted = await cli(['getca', '--url', url, '--tls-ca', caFile]);
  assert.equal(trusted.status, 0, trusted.stderr);
  assert.match(trusted.stdout, /sha256:/);

  // The agent config takes the same CA (relative to the config file).
  const cfg = join(dir, 'agent.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      url,
      tlsCa: 'tls-ca.pem',
      challenge: CHALLENGE,
      certificates: [{ subject: 'CN=agent-tls', out: 'a' }],
    }),
  );
  const agent = await cli(['agent', '--config', cfg, '--once']);
  assert.equal(agent.status, 0, agent.stderr + agent.stdout);
  assert.match(agent.stdout, /agent-tls: enrolled certificate/);
});

test('https:// against plain HTTP, and a URL that is not a SCEP endpoint: one clear sentence each', async () => {
  const { url } = await serve();
  const https = url.replace(/^http:/, 'https:');
  const r = await cli(['getca', '--url', https]);
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /does not speak TLS \(it answered plain HTTP to https:\/\/\): use an http:\/\/ URL/);
  assert.doesNotMatch(r.stderr, /wrong version number|attempts/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);

  const health = new URL('/healthz', url).toString();
  const h = await cli(['getca', '--url', health]);
  assert.equal(h.status, 6, h.stderr);
  assert.match(h.stderr, /answered text\/plain.*not CA certificates: is it a SCEP endpoint\?/);
  assert.doesNotMatch(h.stderr, /SignedData|truncated/);
});
