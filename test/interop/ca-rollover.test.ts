/**
 * CA rollover end to end (issue 4 part 5), checked with the real `openssl`: `scepter ca
 * rollover` (CLI, another process) while a server runs → GetCACaps lists GetNextCACert within
 * a second, GetNextCACert verifies under the current CA (parseNextCaCertResponse, `openssl cms
 * -verify`, our client's getNextCaCert); `scepter ca activate` + restart → new certificates chain
 * to the new CA, old ones still verify under the old CA, GetCert still finds an old certificate
 * (also through ScepClient.getCert/getCrl naming the retired CA as `issuer`),
 * an old certificate renews into one from the new CA, and `scepter revoke` of an old certificate
 * lands in the old CA's CRL (/crl/<fp>.crl and GetCRL). CA-only mode runs with two worker
 * threads, RA mode in-process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ScepClient, ScepProtocolError, verifyCrlSignature } from '../../src/client/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { fromPem, parseCertificate, toPem, type Certificate } from '../../src/pkix/certificate.js';
import {
  buildIssuerAndSerial,
  MessageType,
  parseCapabilities,
  parseNextCaCertResponse,
  PkiStatus,
} from '../../src/scep/index.js';
import { scepterCli, type CliRun } from '../helpers/cli.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import {
  caCerts,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  seeded,
  tempDir,
  TEST_CHALLENGE,
  type Device,
} from '../helpers/scep-server.js';

function cli(args: string[]): Promise<CliRun> {
  return scepterCli(args);
}

function openssl(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

async function caps(url: string): Promise<Set<string>> {
  const r = await fetch(`${url}?operation=GetCACaps`);
  return parseCapabilities(await r.text());
}

async function enroll(url: string, d: Device): Promise<Certificate> {
  const certs = await caCerts(url);
  const req = pkcsReq(d, certs[0]!);
  const r = await postPki(url, req.der);
  const rep = openCertRep(r.body, req, d, certs);
  assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);
  return rep.certificates[0]!;
}

/** GetCert / GetCRL with an explicit issuer Name (the old CA's after activation). */
async function lookup(
  url: string,
  d: Device,
  type: MessageType.GetCert | MessageType.GetCRL,
  issuerRaw: Buffer,
  serialHex: string,
) {
  const certs = await caCerts(url);
  const content = buildIssuerAndSerial({ issuerRaw, serial: Buffer.from(serialHex, 'hex') });
  const req = pkcsReq(d, certs[0]!, { messageType: type, content });
  const r = await postPki(url, req.der);
  return openCertRep(r.body, req, d, certs);
}

for (const mode of ['CA-only', 'RA'] as const) {
  test(`${mode}: rollover, GetNextCACert, activate, old certificates keep working`, async (t) => {
    if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
    const tmp = tempDir(t, 'scepter-rollover-');
    const dir = join(tmp, 'data');
    const base = {
      dataDir: dir,
      keySize: 2048 as const,
      challenge: TEST_CHALLENGE,
      logLevel: 'silent' as const,
      ...(mode === 'RA' ? { ra: true } : {}),
    };
    let srv: RunningServer = await startServer(
      seeded({ ...base, ...(mode === 'CA-only' ? { workers: 2 } : {}) }),
    );
    t.after(() => srv.close());

    // Before: no rollover — not advertised, GetNextCACert is a 4xx with a reason.
    assert.ok(!(await caps(srv.url)).has('GetNextCACert'));
    const none = await fetch(`${srv.url}?operation=GetNextCACert`);
    assert.equal(none.status, 400);
    assert.match(await none.text(), /no CA rollover/);

    const oldCa = srv.dataDir!.loaded.caCert;
    const oldCaPem = join(tmp, 'old-ca.pem');
    writeFileSync(oldCaPem, toPem(oldCa.der));
    const devOld = device('CN=before-rollover,O=Test', { pool: 1 });
    const oldCert = await enroll(srv.url, devOld);
    const oldCertPem = join(tmp, 'old-cert.pem');
    writeFileSync(oldCertPem, toPem(oldCert.der));

    // Stage a next CA from the CLI (another process); the running server notices within ~1 s.
    const staged = await cli(['ca', 'rollover', '--data', dir, '--key-size', '2048']);
    assert.equal(staged.status, 0, staged.stderr);
    assert.match(staged.stdout, /staged next CA .* G2/);
    const nextCaFile = join(dir, 'ca', 'next', 'ca.crt');
    assert.equal(statSync(join(dir, 'ca', 'next', 'ca.key')).mode & 0o777, 0o600);
    const nextCa = parseCertificate(fromPem(readFileSync(nextCaFile, 'latin1'))[0]!);
    assert.notEqual(nextCa.subjectRaw.toString('hex'), oldCa.subjectRaw.toString('hex'));
    const again = await cli(['ca', 'rollover', '--data', dir]);
    assert.equal(again.status, 1, 'a second rollover is refused while one is staged');
    assert.match(again.stderr, /already staged/);
    // The cross certificate: the next CA's key certified by the current CA.
    assert.equal(openssl(['verify', '-CAfile', oldCaPem, join(dir, 'ca', 'next', 'cross.crt')]).status, 0);

    let advertised = false;
    for (let i = 0; i < 40 && !advertised; i++) {
      advertised = (await caps(srv.url)).has('GetNextCACert');
      if (!advertised) await sleep(100);
    }
    assert.ok(advertised, 'GetNextCACert appears in GetCACaps while a next CA is staged');

    const r = await fetch(`${srv.url}?operation=GetNextCACert`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/x-x509-next-ca-cert');
    const body = Buffer.from(await r.arrayBuffer());
    const announced = parseNextCaCertResponse(body, [oldCa]);
    assert.equal(announced[0]!.fingerprint, nextCa.fingerprint);
    if (mode === 'RA') {
      assert.equal(announced.length, 2, 'the next RA certificate comes with the next CA');
      assert.ok(announced[1]!.issuerRaw.equals(nextCa.subjectRaw));
    } else {
      assert.equal(announced.length, 1);
    }
    assert.throws(() => parseNextCaCertResponse(body, [nextCa]), /not signed by the current CA/);

    // openssl: the signature verifies under the current CA, the content holds the next CA.
    const bodyFile = join(tmp, 'next.p7');
    const contentFile = join(tmp, 'next-content.der');
    writeFileSync(bodyFile, body);
    const v = openssl([
      'cms',
      '-verify',
      '-inform',
      'DER',
      '-in',
      bodyFile,
      '-CAfile',
      oldCaPem,
      '-out',
      contentFile,
    ]);
    assert.equal(v.status, 0, v.out);
    const inner = openssl(['pkcs7', '-inform', 'DER', '-in', contentFile, '-print_certs', '-noout']);
    assert.equal(inner.status, 0, inner.out);
    assert.match(inner.out, /G2/);
    const nextCaPem = join(tmp, 'next-ca.pem');
    writeFileSync(nextCaPem, toPem(nextCa.der));
    assert.notEqual(
      openssl([
        'cms',
        '-verify',
        '-inform',
        'DER',
        '-in',
        bodyFile,
        '-CAfile',
        nextCaPem,
        '-out',
        '/dev/null',
      ]).status,
      0,
      'not trusted under the next CA',
    );

    // Our client library: getNextCaCert, authenticated against the pinned current CA.
    const client = new ScepClient({ url: srv.url, caFingerprint: oldCa.fingerprint });
    const viaClient = await client.getNextCaCert();
    assert.equal(viaClient[0]!.fingerprint, nextCa.fingerprint);

    // Still issuing under the old CA until activation + restart.
    const devMid = device('CN=while-staged,O=Test', { pool: 2 });
    const midCert = await enroll(srv.url, devMid);
    assert.ok(midCert.issuerRaw.equals(oldCa.subjectRaw));

    // Activate, restart on the same data directory.
    const act = await cli(['ca', 'activate', '--data', dir]);
    assert.equal(act.status, 0, act.stderr);
    assert.ok(existsSync(join(dir, 'ca', 'previous', oldCa.fingerprint, 'ca.key')));
    assert.ok(!existsSync(join(dir, 'ca', 'next')));
    await srv.close();
    srv = await startServer(base);
    assert.equal(srv.dataDir!.loaded.caCert.fingerprint, nextCa.fingerprint);
    assert.ok(!(await caps(srv.url)).has('GetNextCACert'), 'nothing staged any more');
    assert.equal((await fetch(`${srv.url}?operation=GetNextCACert`)).status, 400);
    const served = await caCerts(srv.url);
    assert.ok(served.some((c) => c.fingerprint === nextCa.fingerprint));
    assert.ok(!served.some((c) => c.fingerprint === oldCa.fingerprint));
    if (mode === 'RA') assert.ok(served[0]!.issuerRaw.equals(nextCa.subjectRaw), 'the RA is the staged one');

    // New certificates chain to the new CA only; old ones still verify under the old CA.
    const devNew = device('CN=after-rollover,O=Test', { pool: 3 });
    const newCert = await enroll(srv.url, devNew);
    const newCertPem = join(tmp, 'new-cert.pem');
    writeFileSync(newCertPem, toPem(newCert.der));
    assert.equal(openssl(['verify', '-CAfile', nextCaPem, newCertPem]).status, 0);
    assert.notEqual(openssl(['verify', '-CAfile', oldCaPem, newCertPem]).status, 0);
    assert.equal(openssl(['verify', '-CAfile', oldCaPem, oldCertPem]).status, 0);

    // GetCert still finds the old certificate (issuer = the old CA's Name).
    const got = await lookup(srv.url, devNew, MessageType.GetCert, oldCa.subjectRaw, oldCert.serialHex);
    assert.equal(got.status, PkiStatus.SUCCESS, got.failInfoText);
    assert.ok(got.certificates[0]!.der.equals(oldCert.der));
    // Our client: the CertRep is signed by the current CA/RA, the certificate in it by the
    // retired CA, which the client accepts only when the caller names that CA as issuer.
    const current = new ScepClient({ url: srv.url, caFingerprint: nextCa.fingerprint });
    const notByCa = (e: unknown) => e instanceof ScepProtocolError && /not signed by the CA/.test(e.message);
    await assert.rejects(current.getCert(oldCert.serialHex, { issuerRaw: oldCa.subjectRaw }), notByCa);
    const oldViaClient = await current.getCert(oldCert.serialHex, { issuer: oldCa });
    assert.ok(oldViaClient.der.equals(oldCert.der));

    // An old certificate renews (no challenge) into one from the new CA.
    const renewed = await new ScepClient({ url: srv.url, caFingerprint: nextCa.fingerprint }).renew({
      cert: midCert,
      key: devMid.key,
    });
    assert.equal(renewed.status, 'issued');
    if (renewed.status === 'issued') assert.ok(renewed.certificate.issuerRaw.equals(nextCa.subjectRaw));

    // Revoke the old certificate with the CLI; the old CA's CRL lists it.
    const rv = await cli([
      'revoke',
      '--data',
      dir,
      '--serial',
      oldCert.serialHex,
      '--reason',
      'keyCompromise',
    ]);
    assert.equal(rv.status, 0, rv.stderr);
    const crlRes = await fetch(`${srv.origin}/crl/${oldCa.fingerprint}.crl`);
    assert.equal(crlRes.status, 200);
    const crlFile = join(tmp, 'old.crl');
    writeFileSync(crlFile, Buffer.from(await crlRes.arrayBuffer()));
    const crlText = openssl([
      'crl',
      '-inform',
      'DER',
      '-in',
      crlFile,
      '-text',
      '-noout',
      '-CAfile',
      oldCaPem,
    ]);
    assert.equal(crlText.status, 0, crlText.out);
    assert.match(crlText.out, /verify OK/);
    assert.match(crlText.out, new RegExp(oldCert.serialHex.toUpperCase()));
    assert.match(crlText.out, /Key Compromise/);
    const crlPem = join(tmp, 'old-crl.pem');
    assert.equal(openssl(['crl', '-inform', 'DER', '-in', crlFile, '-out', crlPem]).status, 0);
    const checked = openssl(['verify', '-crl_check', '-CAfile', oldCaPem, '-CRLfile', crlPem, oldCertPem]);
    assert.notEqual(checked.status, 0);
    assert.match(checked.out, /revoked/);
    // GetCRL for the old issuer gives the same CRL.
    const gc = await lookup(srv.url, devNew, MessageType.GetCRL, oldCa.subjectRaw, oldCert.serialHex);
    assert.equal(gc.status, PkiStatus.SUCCESS, gc.failInfoText);
    const gcFile = join(tmp, 'getcrl.der');
    writeFileSync(gcFile, gc.crls[0]!);
    assert.match(openssl(['crl', '-inform', 'DER', '-in', gcFile, '-text', '-noout']).out, /Key Compromise/);
    // The same through our client: the old CA's CRL with `issuer`, refused without it, and a
    // named issuer that did not sign it is no help.
    await assert.rejects(current.getCrl(oldCert), notByCa);
    const crlViaClient = await current.getCrl(oldCert, { issuer: oldCa });
    assert.ok(verifyCrlSignature(crlViaClient.crl, oldCa));
    assert.ok(crlViaClient.crl.includes(oldCert.serial), 'the CRL lists the revoked serial');
    // And from the command line (--issuer-cert).
    const pin = ['--url', srv.url, '--ca-fingerprint', nextCa.fingerprint];
    const cliCrl = await cli(['getcrl', ...pin, '--for', oldCertPem, '--issuer-cert', oldCaPem, '--json']);
    assert.equal(cliCrl.status, 0, cliCrl.stderr + cliCrl.stdout);
    const cliCert = await cli(['getcert', ...pin, '--serial', oldCert.serialHex, '--issuer-cert', oldCaPem]);
    assert.equal(cliCert.status, 0, cliCert.stderr + cliCert.stdout);
    assert.ok(fromPem(cliCert.stdout)[0]!.equals(oldCert.der));
    await assert.rejects(
      current.getCrl(oldCert, { issuer: newCert }),
      (e: unknown) =>
        e instanceof ScepProtocolError && /signed neither by the CA nor by the given issuer/.test(e.message),
    );
  });
}
