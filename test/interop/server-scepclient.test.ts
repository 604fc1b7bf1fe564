/**
 * The real micromdm `scepclient` (Debian `scep`) enrolling against scepter, in CA-only and RA
 * mode. scepclient 2.1 encrypts every request with single DES whatever GetCACaps says, so it
 * needs --allow-single-des; without it, it must get FAILURE badAlg.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fromPem, parseCertificate } from '../../src/pkix/certificate.js';
import { nameToString } from '../../src/pkix/name.js';
import { logSink } from '../helpers/log-sink.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { tempDir, testServer } from '../helpers/scep-server.js';

const SCEPCLIENT = 'scepclient';

interface Run {
  code: number | null;
  output: string;
}

/** Runs a program asynchronously (the server runs in this process). */
function run(cmd: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd });
    let output = '';
    p.stdout.on('data', (c: Buffer) => (output += c.toString()));
    p.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function enrollWithScepclient(
  t: Parameters<typeof testServer>[0],
  o: { ra: boolean; allowSingleDes: boolean; log?: Writable },
) {
  const server = await testServer(t, {
    ra: o.ra,
    enrollment: { allowSingleDes: o.allowSingleDes },
    ...(o.log ? { logLevel: 'info' as const, logStream: o.log } : {}),
  });
  const work = tempDir(t, 'scepclient-');
  const keyPath = join(work, 'client.key');
  const certPath = join(work, 'client.crt');
  const r = await run(
    SCEPCLIENT,
    [
      '-server-url',
      server.url,
      '-challenge',
      server.dataDir!.challenge.value,
      '-private-key',
      keyPath,
      '-certificate',
      certPath,
      '-cn',
      `scepclient-${o.ra ? 'ra' : 'ca'}`,
      '-organization',
      'scepter-interop',
    ],
    work,
  );
  return { server, work, keyPath, certPath, r };
}

async function assertEnrolled(
  t: Parameters<typeof testServer>[0],
  e: Awaited<ReturnType<typeof enrollWithScepclient>>,
  cn: string,
): Promise<void> {
  assert.equal(e.r.code, 0, `scepclient failed: ${e.r.output}`);
  assert.ok(existsSync(e.certPath), 'certificate written');
  const cert = parseCertificate(fromPem(readFileSync(e.certPath, 'utf8'))[0]!);
  assert.match(nameToString(cert.subjectRaw), new RegExp(`CN=${cn}`));
  const clientPub = createPublicKey(createPrivateKey(readFileSync(e.keyPath))).export({
    type: 'spki',
    format: 'der',
  });
  assert.ok(cert.spki.equals(clientPub), "the certificate's key is scepclient's key");
  const stored = await e.server.enrollment!.store.getCertificate(cert.serialHex);
  assert.ok(stored?.der.equals(cert.der), 'the store holds the issued certificate');
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const v = await run(
    'openssl',
    ['verify', '-CAfile', e.server.dataDir!.loaded.paths.cert, e.certPath],
    e.work,
  );
  assert.equal(v.code, 0, v.output);
  assert.match(v.output, /: OK/);
}

test('scepclient enrolls against scepter in CA-only mode (--allow-single-des)', async (t) => {
  if (!needPeer(t, hasCommand(SCEPCLIENT), 'micromdm scepclient')) return;
  const e = await enrollWithScepclient(t, { ra: false, allowSingleDes: true });
  await assertEnrolled(t, e, 'scepclient-ca');
  assert.equal(e.server.enrollment!.stats.singleDesAccepted, 1);
});

test('scepclient enrolls against scepter in RA mode (--allow-single-des)', async (t) => {
  if (!needPeer(t, hasCommand(SCEPCLIENT), 'micromdm scepclient')) return;
  const e = await enrollWithScepclient(t, { ra: true, allowSingleDes: true });
  assert.ok(e.server.dataDir!.loaded.ra, 'RA mode');
  await assertEnrolled(t, e, 'scepclient-ra');
});

test('scepclient without --allow-single-des gets FAILURE badAlg naming the switch, and no certificate', async (t) => {
  if (!needPeer(t, hasCommand(SCEPCLIENT), 'micromdm scepclient')) return;
  const log = logSink();
  const e = await enrollWithScepclient(t, { ra: false, allowSingleDes: false, log: log.stream });
  assert.notEqual(e.r.code, 0);
  assert.match(e.r.output, /failInfo: badAlg \(0\)/);
  // The failInfoText (in the CertRep) and the server log tell the operator what to do.
  const refused = log.lines().find((l) => l.operation === 'PKIOperation' && l.failInfo === 'badAlg') as
    { detail?: string } | undefined;
  assert.ok(refused, log.text());
  assert.match(refused.detail ?? '', /single DES/);
  assert.match(refused.detail ?? '', /start the server with --allow-single-des/);
  assert.ok(!existsSync(e.certPath));
  assert.equal((await e.server.enrollment!.store.searchCertificates({})).total, 0, 'nothing issued');
});
