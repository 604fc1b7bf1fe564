/**
 * The agent against scepter's own server with a real clock (issue 5, "Done when": the agent
 * renews a short-lived certificate automatically, twice in a row, and the files on disk are
 * always a valid key/cert pair). The server (in-process `startServer`) issues 20-second
 * certificates (`--validity 20s`; notBefore backdated 2 s, 10% of the validity); the real
 * `Agent.run` with `renewAt: 0.5` enrolls and then renews on its own timers — no simulated time.
 *
 * While it runs, a reader checks the files continuously:
 * - the documented way (`readPair`: resolve `current` once, read both files from there): the
 *   key always matches the certificate, which is signed by the CA and valid right now;
 * - the plain stable names `key.pem` / `cert.pem`: each file always parses (never half-written
 *   or missing), key.pem is 0600, and whenever key.pem reads the same before and after
 *   cert.pem (no swap in between) the two match. docs/client.md says two separate opens can
 *   straddle a swap; such reads are counted, never accepted as a mismatch.
 * Each certificate the agent installs is checked with `openssl verify` against the CA while
 * it is fresh, and the renewals are real renewals: no challenge is sent with them
 * (`challengeOnRenewal: false`), so the old certificate is the credential.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  Agent,
  keyMatchesCert,
  parseAgentConfig,
  readPair,
  type AgentOutcome,
} from '../../src/client/index.js';
import { startServer } from '../../src/server/index.js';
import { fromPem, parseCertificate, toPem, verifyCertificateSignature } from '../../src/pkix/certificate.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { seeded, tempDir, TEST_CHALLENGE } from '../helpers/scep-server.js';

const run = promisify(execFile);
const VALIDITY = 20;

test('agent with a real clock renews 20 s certificates from scepter serve twice; the pair on disk always matches', async (t) => {
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const dir = tempDir(t, 'scepter-agent-real-');
  const srv = await startServer(
    seeded({
      dataDir: join(dir, 'data'),
      keySize: 2048,
      challenge: TEST_CHALLENGE,
      logLevel: 'silent',
      enrollment: { validitySeconds: VALIDITY },
      // Nothing else to configure: renewal is on by default and the default window (100%)
      // accepts a renewal at any point of the lifetime.
    }),
  );
  t.after(() => srv.close());
  const ca = srv.dataDir!.loaded.caCert;
  const caPem = join(dir, 'ca.pem');
  writeFileSync(caPem, toPem(ca.der));

  const out = join(dir, 'gw');
  const cfg = parseAgentConfig(
    {
      url: srv.url,
      caFingerprint: ca.fingerprint,
      challenge: TEST_CHALLENGE,
      challengeOnRenewal: false,
      backoffSeconds: 0.5,
      maxBackoffSeconds: 2,
      certificates: [{ name: 'gw', subject: 'CN=agent-real-clock,O=scepter', out: 'gw', renewAt: 0.5 }],
    },
    dir,
  );

  const started = Date.now();
  const outcomes: AgentOutcome[] = [];
  const verified: Array<Promise<{ serial: string; stdout: string }>> = [];
  const ac = new AbortController();
  const agent = new Agent(cfg, {
    outcome: (o) => {
      outcomes.push({ ...o });
      if (o.action === 'enrolled' || o.action === 'renewed') {
        // openssl verify (with the real current time) while the certificate is fresh.
        const file = join(dir, `issued-${outcomes.length}.pem`);
        const { certificate } = readPairSync(out);
        assert.equal(certificate.serialHex, o.serial, 'the outcome names the certificate on disk');
        writeFileSync(file, toPem(certificate.der));
        verified.push(
          run('openssl', ['verify', '-CAfile', caPem, file]).then((r) => ({
            serial: certificate.serialHex,
            stdout: r.stdout,
          })),
        );
      }
      if (outcomes.filter((x) => x.action === 'renewed').length >= 2) {
        ac.abort();
      }
    },
  });

  let stop = false;
  const stats = { pairs: 0, plain: 0, straddled: 0 };
  const reader = (async () => {
    while (!stop) {
      const pair = await readPair(out);
      if (pair) {
        const now = Date.now();
        assert.ok(keyMatchesCert(pair.key, pair.certificate), 'readPair: key and certificate match');
        assert.ok(verifyCertificateSignature(pair.certificate, ca.publicKey()), 'signed by the CA');
        assert.ok(pair.certificate.notBefore.getTime() <= now, 'already valid');
        assert.ok(now < pair.certificate.notAfter.getTime(), 'the certificate on disk has not expired');
        stats.pairs++;

        // The plain stable names.
        const key1 = await readFile(join(out, 'key.pem'), 'utf8');
        const certPem = await readFile(join(out, 'cert.pem'), 'utf8');
        const key2 = await readFile(join(out, 'key.pem'), 'utf8');
        const cert = parseCertificate(fromPem(certPem)[0]!);
        const key = createPrivateKey(key1);
        createPrivateKey(key2);
        assert.equal(statSync(join(out, 'key.pem')).mode & 0o777, 0o600);
        if (key1 === key2) {
          assert.ok(keyMatchesCert(key, cert), 'key.pem and cert.pem match');
          stats.plain++;
        } else {
          stats.straddled++;
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  // A failing reader stops the agent at once instead of waiting for the deadline.
  reader.catch(() => ac.abort());

  const deadline = setTimeout(() => ac.abort(), 40_000);
  try {
    await agent.run(ac.signal);
  } finally {
    clearTimeout(deadline);
    stop = true;
  }
  // That run() returns right after an abort during a pass (instead of sleeping until the next
  // check) is proven without a clock by the abort test in test/unit/client-agent.test.ts.
  await reader;
  const elapsed = (Date.now() - started) / 1000;

  const done = outcomes.filter((o) => o.action !== 'valid');
  assert.deepEqual(
    done.map((o) => o.action),
    ['enrolled', 'renewed', 'renewed'],
    JSON.stringify(outcomes),
  );
  const serials = done.map((o) => o.serial!);
  assert.equal(new Set(serials).size, 3, 'three distinct certificates');

  // Renewed on time: not before half of the nominal lifetime (20 s + 2 s backdating) after
  // notBefore, and before the previous certificate expired (a loaded machine may be late, but
  // never that late without a bug).
  const certs = await Promise.all(
    serials.map(async (s) => parseCertificate((await srv.enrollment!.store.getCertificate(s))!.der)),
  );
  for (const c of certs) {
    assert.equal(c.notAfter.getTime() - c.notBefore.getTime(), (VALIDITY + 2) * 1000);
    assert.ok(c.issuerRaw.equals(ca.subjectRaw));
  }
  for (let i = 1; i < certs.length; i++) {
    const prev = certs[i - 1]!;
    const due = prev.notBefore.getTime() + 0.5 * (prev.notAfter.getTime() - prev.notBefore.getTime());
    const issuedAt = certs[i]!.notBefore.getTime() + 2000;
    assert.ok(
      issuedAt >= due - 1000 && issuedAt < prev.notAfter.getTime(),
      `renewal ${i} issued ${(issuedAt - due) / 1000} s after it was due`,
    );
    assert.ok(!certs[i]!.spki.equals(prev.spki), 'each renewal has a new key');
  }

  const v = await Promise.all(verified);
  assert.deepEqual(
    v.map((x) => x.serial),
    serials,
  );
  for (const x of v) assert.match(x.stdout, /: OK$/m);

  // The renewals were RenewalReqs authorized by the previous certificate (no challenge sent).
  for (const c of certs.slice(1)) {
    const rec = await srv.enrollment!.store.getCertificate(c.serialHex);
    assert.ok(rec?.transactionId?.startsWith('renewal:'), `transaction ${rec?.transactionId}`);
  }
  t.diagnostic(
    `${elapsed.toFixed(1)} s; readPair checks ${stats.pairs}, plain-file checks ${stats.plain}, ` +
      `plain reads that straddled a swap ${stats.straddled}`,
  );
  const final = readPairSync(out);
  assert.equal(final.certificate.serialHex, serials[2]);
  assert.ok(stats.pairs > 100, `readPair checked ${stats.pairs} times`);
  assert.ok(
    stats.plain > 100,
    `plain files checked ${stats.plain} times (${stats.straddled} straddled a swap)`,
  );
});

/** key.pem + cert.pem read from `current/` resolved once (synchronously, for the outcome callback). */
function readPairSync(out: string) {
  const base = realpathSync(join(out, 'current'));
  const certificate = parseCertificate(fromPem(readFileSync(join(base, 'cert.pem'), 'utf8'))[0]!);
  const key = createPrivateKey(readFileSync(join(base, 'key.pem'), 'utf8'));
  assert.ok(keyMatchesCert(key, certificate));
  return { key, certificate };
}
