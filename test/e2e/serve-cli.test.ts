/**
 * Smoke test of the built CLI: `npm run build`, then `node dist/cli/main.js serve` on an empty
 * data directory starts on embedded defaults (creates the CA with an RA and a challenge, printed once),
 * answers GetCACaps/GetCACert and an enrollment, and exits cleanly on SIGTERM/SIGINT. A second
 * start reuses the CA and the challenge without printing it, and with `--validity 30s --workers
 * 2` issues 30-second certificates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fromPem, parseCertificate } from '../../src/pkix/certificate.js';
import { PkiStatus } from '../../src/scep/index.js';
import { caCerts, csrOf, device, openCertRep, pkcsReq, postPki, tempDir } from '../helpers/scep-server.js';
import { ensureBuilt } from '../helpers/build.js';

const ROOT = join(import.meta.dirname, '..', '..');

interface Served {
  proc: ChildProcessWithoutNullStreams;
  url: string;
  /** Everything printed so far. */
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the built CLI and waits for its "listening on" line. */
function serve(args: string[]): Promise<Served> {
  const { main } = ensureBuilt();
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [main, 'serve', ...args], { cwd: ROOT });
    let out = '';
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`serve did not start in time:\n${out}`));
    }, 60_000);
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = /SCEP server listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1]!, output: () => out, exited });
      }
    };
    // The banner is on stderr, log lines on stdout.
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited early (${code}):\n${out}`));
    });
  });
}

test('built CLI: serve creates CA + challenge, serves, shuts down cleanly, restarts on the same data', async (t) => {
  const build = ensureBuilt();
  assert.equal(build.status, 0, `npm run build failed:\n${build.output}`);
  const data = tempDir(t, 'scepter-cli-');

  const first = await serve(['--data', data, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn']);
  t.after(() => first.proc.kill('SIGKILL'));
  const out1 = first.output();
  // A new data directory gets an RA by default (what certmonger and NDES-style clients expect).
  assert.match(out1, /created a new CA in .*\/ca \(RA mode/);
  const challengeFile = join(data, 'challenge');
  const challenge = readFileSync(challengeFile, 'utf8').trim();
  assert.ok(challenge.length >= 24);
  assert.equal(statSync(challengeFile).mode & 0o777, 0o600, 'challenge file is 0600');
  assert.equal(out1.split(challenge).length - 1, 1, 'the generated challenge is printed exactly once');
  assert.match(first.url, /^http:\/\/127\.0\.0\.1:\d+\/scep$/);

  const caps = await fetch(`${first.url}?operation=GetCACaps`);
  assert.equal(caps.status, 200);
  const capList = (await caps.text()).split('\n');
  for (const k of ['AES', 'DES3', 'SHA-256', 'POSTPKIOperation', 'SCEPStandard'])
    assert.ok(capList.includes(k), k);
  const trusted = await caCerts(first.url);
  const caOnDisk = parseCertificate(fromPem(readFileSync(join(data, 'ca', 'ca.crt'), 'utf8'))[0]!);
  const raOnDisk = parseCertificate(fromPem(readFileSync(join(data, 'ca', 'ra.crt'), 'utf8'))[0]!);
  assert.ok(trusted[0]!.der.equals(raOnDisk.der), 'GetCACert returns the RA created in DIR/ca first');
  assert.ok(
    trusted.some((c) => c.der.equals(caOnDisk.der)),
    'GetCACert returns the CA created in DIR/ca',
  );

  const d = device('CN=cli-dev', { pool: 1 });
  const req = pkcsReq(d, trusted[0]!, { content: csrOf(d, { challengePassword: challenge }) });
  const rep = openCertRep((await postPki(first.url, req.der)).body, req, d, trusted);
  assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);

  first.proc.kill('SIGTERM');
  assert.equal(await first.exited, 0, `clean exit on SIGTERM:\n${first.output()}`);
  assert.match(first.output(), /SIGTERM: finishing in-flight requests[\s\S]*stopped/);

  // Restart with 30 s certificates issued by two worker threads (the setting must reach them).
  const second = await serve([
    ...['--data', data, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn'],
    ...['--validity', '30s', '--workers', '2'],
  ]);
  t.after(() => second.proc.kill('SIGKILL'));
  const out2 = second.output();
  assert.match(out2, /CA loaded from/);
  assert.match(out2, /challenge loaded from .*challenge/);
  assert.ok(!out2.includes(challenge), 'the challenge is not printed again');
  const again = await caCerts(second.url);
  assert.ok(again[0]!.der.equals(raOnDisk.der), 'same RA after restart');
  assert.ok(
    again.some((c) => c.der.equals(caOnDisk.der)),
    'same CA after restart',
  );
  // The resend of the first request is answered from the store: same certificate.
  const resent = openCertRep((await postPki(second.url, req.der)).body, req, d, trusted);
  assert.ok(resent.certificates[0]!.der.equals(rep.certificates[0]!.der));
  assert.match(out2, /issued certificates are valid for 30s/);
  const d2 = device('CN=cli-dev-short', { pool: 2 });
  const req2 = pkcsReq(d2, trusted[0]!, { content: csrOf(d2, { challengePassword: challenge }) });
  const sentAt = Math.floor(Date.now() / 1000) * 1000;
  const rep2 = openCertRep((await postPki(second.url, req2.der)).body, req2, d2, trusted);
  const answeredAt = Date.now();
  assert.equal(rep2.status, PkiStatus.SUCCESS, rep2.failInfoText);
  const short = rep2.certificates[0]!;
  assert.equal(short.notAfter.getTime() - short.notBefore.getTime(), 33_000, '30 s + 3 s backdating');
  // Issued between sending and the answer (whole seconds): valid 30 s from then, however long
  // the request took on a busy machine.
  const end = short.notAfter.getTime();
  assert.ok(end >= sentAt + 30_000 && end <= answeredAt + 30_000, 'valid 30 s from issuance');
  second.proc.kill('SIGINT');
  assert.equal(await second.exited, 0);
});

test('built CLI: --ca-only creates the old CA-only layout, kept on later starts without the flag', async (t) => {
  const build = ensureBuilt();
  assert.equal(build.status, 0, `npm run build failed:\n${build.output}`);
  const data = tempDir(t, 'scepter-cli-');
  const both = spawnSync(process.execPath, [build.main, 'serve', '--data', data, '--ra', '--ca-only'], {
    encoding: 'utf8',
  });
  assert.notEqual(both.status, 0);
  assert.match(both.stderr, /--ra or --ca-only, not both/);

  const first = await serve([
    '--data',
    data,
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--log-level',
    'warn',
    '--ca-only',
  ]);
  t.after(() => first.proc.kill('SIGKILL'));
  assert.match(first.output(), /created a new CA in .*\/ca \(CA-only mode\)/);
  assert.ok(!existsSync(join(data, 'ca', 'ra.crt')), 'no RA certificate');
  const caOnDisk = parseCertificate(fromPem(readFileSync(join(data, 'ca', 'ca.crt'), 'utf8'))[0]!);
  const certs = await caCerts(first.url);
  assert.equal(certs.length, 1);
  assert.ok(certs[0]!.der.equals(caOnDisk.der));
  first.proc.kill('SIGTERM');
  assert.equal(await first.exited, 0);

  // An existing data directory keeps its layout: no RA is added by the new default.
  const second = await serve(['--data', data, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn']);
  t.after(() => second.proc.kill('SIGKILL'));
  assert.match(second.output(), /CA loaded from .*\(CA-only mode\)/);
  assert.ok(!existsSync(join(data, 'ca', 'ra.crt')), 'still no RA certificate');
  // One answered request: the server is past start-up (its signal handlers are installed).
  assert.equal((await caCerts(second.url)).length, 1);
  second.proc.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});
