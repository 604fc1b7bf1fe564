/**
 * The agent and its file handling: atomic writes, generation swap, and the agent renewing a
 * short-lived certificate twice in a row while a reader checks, in a loop, that key and
 * certificate on disk always form a valid pair.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdtempSync,
  rmSync,
  promises as fs,
  readFileSync,
  writeFileSync,
  lstatSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getEventListeners } from 'node:events';
import {
  Agent,
  installGeneration,
  keyMatchesCert,
  parseAgentConfig,
  readPair,
  ScepClient,
  writeFileAtomic,
  type AgentOutcome,
} from '../../src/client/index.js';
import { fromPem, parseCertificate } from '../../src/pkix/certificate.js';
import { verifyCertificateSignature } from '../../src/pkix/certificate.js';
import { scepterCli } from '../helpers/cli.js';
import { startFakeScep, type FakeScep } from '../helpers/fake-scep.js';
import { makeIssued, makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';

const dirs: string[] = [];
const servers: FakeScep[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'scepter-agent-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const s of servers) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('writeFileAtomic: final mode, content, no temp files left', async () => {
  const d = tmp();
  const p = join(d, 'sub', 'key.pem');
  await writeFileAtomic(p, 'secret-ish', 0o600);
  await writeFileAtomic(p, 'second', 0o600);
  assert.equal(readFileSync(p, 'utf8'), 'second');
  assert.equal(lstatSync(p).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(join(d, 'sub')), ['key.pem']);
});

test('installGeneration: symlinked stable names, previous generation kept, older pruned, mismatch refused', async () => {
  const d = tmp();
  const ca = makeSelfSigned({ subject: 'CN=CA', ca: true, key: pooledRsaKey(30) });
  const pairs = [31, 32, 33].map((n) =>
    makeIssued({ subject: `CN=leaf${n}`, issuer: ca, key: pooledRsaKey(n) }),
  );
  const gens: string[] = [];
  for (const p of pairs) {
    const r = await installGeneration(d, { key: p.key, certificate: p.cert, chain: [ca.cert] });
    gens.push(r.generation);
    const back = await readPair(d);
    assert.ok(back && back.certificate.der.equals(p.cert.der) && keyMatchesCert(back.key, back.certificate));
    assert.ok(lstatSync(join(d, 'cert.pem')).isSymbolicLink());
    assert.equal(lstatSync(join(d, 'key.pem', '..', 'current', 'key.pem')).mode & 0o777, 0o600);
    assert.ok(fromPem(readFileSync(join(d, 'chain.pem'), 'utf8'))[0]!.equals(ca.certDer));
  }
  const left = readdirSync(join(d, '.generations')).sort();
  assert.equal(left.length, 2, 'the current and the previous generation remain');
  assert.ok(gens.slice(1).every((g) => left.some((l) => g.endsWith(l))));
  await assert.rejects(
    installGeneration(d, { key: pooledRsaKey(31), certificate: pairs[2]!.cert, chain: [] }),
    /does not match/,
  );
  assert.ok(
    (await readPair(d))!.certificate.der.equals(pairs[2]!.cert.der),
    'a refused pair changes nothing',
  );
});

test('agent config: defaults, relative paths, challenge from env/file, errors name the field', () => {
  const d = tmp();
  writeFileSync(join(d, 'challenge.txt'), 'from-file\n');
  const cfg = parseAgentConfig(
    {
      url: 'http://127.0.0.1:1/scep',
      challengeFile: 'challenge.txt',
      certificates: [
        { subject: 'CN=a', out: 'certs/a' },
        { subject: 'CN=b', out: '/abs/b', challengeEnv: 'MY_CH', renewAt: 0.5 },
      ],
    },
    d,
    { MY_CH: 'from-env' },
  );
  assert.equal(cfg.challenge, 'from-file');
  assert.equal(cfg.certificates[0]!.out, join(d, 'certs/a'));
  assert.equal(cfg.certificates[0]!.renewAt, 0.66);
  assert.equal(cfg.certificates[0]!.newKey, true);
  assert.equal(cfg.certificates[1]!.challenge, 'from-env');
  assert.equal(cfg.certificates[1]!.out, '/abs/b');
  assert.throws(() => parseAgentConfig({ url: 'ftp://x', certificates: [] }, d), /config.url/);
  assert.throws(
    () => parseAgentConfig({ url: 'http://x', certificates: [{ subject: 'CN=a', out: 'o', renewAt: 2 }] }, d),
    /certificates\[0\]\.renewAt/,
  );
  assert.throws(
    () =>
      parseAgentConfig(
        { url: 'http://x', certificates: [{ subject: 'CN=a', out: 'o', challengeEnv: 'NOPE' }] },
        d,
        {},
      ),
    /NOPE is not set/,
  );
});

test('agent renews a short-lived certificate twice; key and cert on disk always match', async () => {
  const s = await startFakeScep({ challenge: 'agent-pw', validitySeconds: 6 });
  process.env.AGENT_TEST_SECRET = 'agent-pw';
  servers.push(s);
  const d = tmp();
  const out = join(d, 'dev');
  const cfg = parseAgentConfig(
    {
      url: s.url,
      caFingerprint: s.ca.cert.fingerprint,
      challenge: 'agent-pw',
      checkIntervalSeconds: 30,
      backoffSeconds: 0.2,
      certificates: [
        {
          name: 'dev',
          subject: 'CN=agent-dev,O=Acme',
          sans: 'dns:agent.example',
          out,
          renewAt: 0.5,
          hook: 'echo "$SCEPTER_NAME $(basename "$SCEPTER_CERT") [$AGENT_TEST_SECRET]" >> ../hook.log',
        },
      ],
    },
    d,
  );
  const outcomes: AgentOutcome[] = [];
  const ac = new AbortController();
  const agent = new Agent(cfg, {
    outcome: (o) => {
      outcomes.push(o);
      if (outcomes.filter((x) => x.action === 'renewed').length >= 2) ac.abort();
    },
  });
  // A reader that keeps checking the pair while the agent works.
  let checks = 0;
  let readerError: unknown;
  let stopReader = false;
  const reader = (async () => {
    while (!stopReader) {
      try {
        const pair = await readPair(out);
        if (pair) {
          assert.ok(keyMatchesCert(pair.key, pair.certificate), 'key and certificate must match');
          assert.ok(verifyCertificateSignature(pair.certificate, s.ca.cert.publicKey()));
          // The stable names are never half-written either.
          parseCertificate(fromPem(readFileSync(join(out, 'cert.pem'), 'utf8'))[0]!);
          checks++;
        }
      } catch (e) {
        readerError = e;
        return;
      }
      await new Promise((r) => setTimeout(r, 15));
    }
  })();
  const timer = setTimeout(() => ac.abort(), 30_000);
  await agent.run(ac.signal);
  clearTimeout(timer);
  delete process.env.AGENT_TEST_SECRET;
  stopReader = true;
  await reader;
  assert.equal(readerError, undefined);
  const actions = outcomes.map((o) => o.action).filter((a) => a !== 'valid');
  assert.deepEqual(actions, ['enrolled', 'renewed', 'renewed']);
  const serials = outcomes.filter((o) => o.action !== 'valid').map((o) => o.serial);
  assert.equal(new Set(serials).size, 3, 'three different certificates');
  assert.ok(checks > 20, `the reader checked the pair ${checks} times`);
  // RenewalReq was used for the renewals (the fake advertises Renewal).
  assert.deepEqual(
    s.log.map((l) => l.messageType),
    [19, 17, 17],
  );
  const final = (await readPair(out))!;
  assert.equal(final.certificate.serialHex, serials[2]);
  // The hook gets its variables but never the challenge, even through an inherited variable.
  assert.equal(readFileSync(join(d, 'hook.log'), 'utf8'), 'dev cert.pem []\n'.repeat(3));
});

test('`scepter agent --once`: enrolls, then reports valid; a failing server gives exit 1 and backoff', async () => {
  const s = await startFakeScep({ challenge: 'cli-pw', validitySeconds: 3600 });
  servers.push(s);
  const d = tmp();
  const cfgPath = join(d, 'agent.json');
  writeFileSync(
    cfgPath,
    JSON.stringify({
      url: s.url,
      challengeEnv: 'AGENT_CH',
      certificates: [{ name: 'one', subject: 'CN=once', out: 'once' }],
    }),
  );
  // Async spawn: the fake server lives in this process and must keep answering.
  const run = () =>
    scepterCli(['agent', '--config', cfgPath, '--once', '--json'], {
      env: { AGENT_CH: 'cli-pw' },
      hangLimitMs: 60_000,
    });
  const r1 = await run();
  assert.equal(r1.status, 0, r1.stderr + r1.stdout);
  const ev1 = r1.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; action?: string });
  assert.ok(ev1.some((e) => e.event === 'outcome' && e.action === 'enrolled'));
  assert.ok(!r1.stdout.includes('cli-pw'), 'the challenge is never printed');
  const pair = await readPair(join(d, 'once'));
  assert.ok(pair && keyMatchesCert(pair.key, pair.certificate));
  const r2 = await run();
  assert.equal(r2.status, 0);
  assert.ok(r2.stdout.includes('"action":"valid"'));
  await fs.rm(join(d, 'once'), { recursive: true });
  s.options.fail = 2;
  const r3 = await run();
  assert.equal(r3.status, 1);
  const err = r3.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { action?: string; errorKind?: string; nextCheck?: string })
    .find((e) => e.action === 'error');
  assert.equal(err?.errorKind, 'ScepFailureError');
  assert.ok(Date.parse(err!.nextCheck!) > Date.now(), 'the next attempt is scheduled later (backoff)');
});

test('agent.run: an abort during a pass stops it at once (no sleep to the next check); sleeps leave no abort listeners behind', async () => {
  const d = tmp();
  // Nothing listens on port 1: every pass is a quick connection error, then backoff.
  const cfg = parseAgentConfig(
    {
      url: 'http://127.0.0.1:1/scep',
      challenge: 'pw',
      backoffSeconds: 0.1,
      certificates: [{ subject: 'CN=abort-test', out: 'dev' }],
    },
    d,
  );
  cfg.maxBackoffSeconds = 0.1; // below what a config file may say: keeps the test short
  const ac = new AbortController();
  let listenersDuringPass = -1;
  let errors = 0;
  const agent = new Agent(cfg, {
    client: (o) => new ScepClient({ ...o, retries: 0 }),
    outcome: (o) => {
      assert.equal(o.action, 'error');
      if (++errors === 6) {
        // Five sleeps are behind us: none of them may have left its listener on the signal.
        listenersDuringPass = getEventListeners(ac.signal, 'abort').length;
        // Now the next sleep would be an hour (a real agent: up to checkIntervalSeconds).
        cfg.backoffSeconds = 3600;
        cfg.maxBackoffSeconds = 3600;
      }
      if (errors === 7) ac.abort(); // like SIGTERM arriving while a certificate is processed
    },
  });
  let stopped = false;
  const running = agent.run(ac.signal).then(() => (stopped = true));
  // Hang detector, not a timing assertion: run() must return after the abort instead of
  // entering the hour-long sleep; 60 s is far beyond seven refused connections on any machine.
  let guard: NodeJS.Timeout | undefined;
  await Promise.race([running, new Promise((r) => (guard = setTimeout(r, 60_000).unref()))]);
  clearTimeout(guard);
  assert.ok(stopped, `run() still sleeping after the abort (${errors} errors seen)`);
  assert.equal(errors, 7);
  assert.equal(listenersDuringPass, 0, 'abort listeners left behind by earlier sleeps');
  await running;
});
