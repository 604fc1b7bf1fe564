/**
 * A real micromdm `scepclient` PKCSReq: captured from a throwaway HTTP server, then decoded
 * with our codec and with `scepter inspect`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import {
  decodeGetMessage,
  decodePkiRequest,
  FailInfo,
  MessageType,
  openEnvelope,
  ScepError,
} from '../../src/scep/index.js';
import { parseCsr, verifyCsrSignature } from '../../src/pkix/csr.js';
import { nameToString } from '../../src/pkix/name.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { fixture } from '../helpers/scep-fixtures.js';

const CHALLENGE = 'scepclient-sekrit-9921';

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

async function capture(dir: string): Promise<Buffer> {
  const f = fixture();
  let captured: Buffer | undefined;
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const op = url.searchParams.get('operation');
      const data = await body(req);
      if (op === 'GetCACaps') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('POSTPKIOperation\nSHA-256\nAES\n');
      } else if (op === 'GetCACert') {
        res.writeHead(200, { 'content-type': 'application/x-x509-ca-cert' }).end(f.ca.certDer);
      } else if (op === 'PKIOperation') {
        captured = req.method === 'POST' ? data : decodeGetMessage(url.searchParams.get('message') ?? '');
        res.writeHead(400).end('captured');
      } else {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    await new Promise<void>((resolve) => {
      const child = spawn(
        'scepclient',
        [
          '-server-url',
          `http://127.0.0.1:${port}/scep`,
          '-private-key',
          join(dir, 'client.key'),
          '-certificate',
          join(dir, 'client.crt'),
          '-challenge',
          CHALLENGE,
          '-cn',
          'scepclient-test',
          '-keySize',
          '2048',
        ],
        { stdio: 'ignore', timeout: 30_000 },
      );
      child.on('exit', () => resolve());
      child.on('error', () => resolve());
    });
  } finally {
    server.close();
  }
  assert.ok(captured, 'scepclient sent a PKIOperation');
  return captured;
}

test('micromdm scepclient PKCSReq: decode, single-DES policy, CSR, inspect', async (t) => {
  if (!needPeer(t, hasCommand('scepclient'), 'micromdm scepclient')) return;
  const dir = mkdtempSync(join(tmpdir(), 'scepter-scepclient-'));
  try {
    const f = fixture();
    const msg = await capture(dir);
    const req = decodePkiRequest(msg);
    assert.equal(req.failure, undefined, req.failure?.text);
    assert.equal(req.messageType, MessageType.PKCSReq);
    assert.ok(req.transactionId.length > 0);
    assert.equal(req.senderNonce.length, 16);

    let opened: { content: Buffer; cipher: string };
    try {
      opened = openEnvelope(req, [f.caRecipient]);
      // A newer scepclient that honours AES in GetCACaps is fine too.
      assert.notEqual(opened.cipher, 'des');
    } catch (e) {
      assert.ok(e instanceof ScepError, String(e));
      assert.equal(e.failInfo, FailInfo.badAlg);
      assert.match(e.message, /--allow-single-des/);
      assert.ok(!e.message.includes(CHALLENGE));
      opened = openEnvelope(req, [f.caRecipient], { allowSingleDes: true });
      assert.equal(opened.cipher, 'des');
    }
    const csr = parseCsr(opened.content);
    assert.equal(csr.challengePassword, CHALLENGE);
    assert.ok(verifyCsrSignature(csr));
    assert.match(nameToString(csr.subjectRaw), /CN=scepclient-test/);
    assert.ok(csr.spki.equals(req.signerCert.spki), 'signer key = CSR key');

    const file = join(dir, 'pkcsreq.der');
    const keyFile = join(dir, 'ca.key');
    writeFileSync(file, msg);
    writeFileSync(keyFile, f.ca.keyPem);
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'inspect', ...args], {
        encoding: 'utf8',
        timeout: 60_000,
      });
    const out = run(file, '--key', keyFile);
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /messageType: PKCSReq \(19\)/);
    assert.ok(out.stdout.includes(`transactionId: ${req.transactionId}`));
    assert.ok(out.stdout.includes(`senderNonce: ${req.senderNonce.toString('hex')}`));
    assert.match(out.stdout, /signature: valid/);
    assert.match(out.stdout, /cipher: (des-cbc|aes-\d+-cbc|des-ede3-cbc)/);
    assert.match(out.stdout, /CN=scepclient-test/);
    assert.match(out.stdout, /challenge: present/);
    assert.match(out.stdout, /key: rsa 2048/);
    assert.ok(!out.stdout.includes(CHALLENGE) && !out.stderr.includes(CHALLENGE), 'challenge never printed');

    const js = run(file, '--key', keyFile, '--json');
    assert.equal(js.status, 0, js.stderr);
    const parsed = JSON.parse(js.stdout) as { csr: { challenge: string }; transactionId: string };
    assert.equal(parsed.csr.challenge, 'present');
    assert.equal(parsed.transactionId, req.transactionId);
    assert.ok(!js.stdout.includes(CHALLENGE));

    // base64 text input and garbage.
    writeFileSync(join(dir, 'msg.b64'), msg.toString('base64').replace(/.{64}/g, '$&\n'));
    const b64 = run(join(dir, 'msg.b64'));
    assert.equal(b64.status, 0, b64.stderr);
    assert.match(b64.stdout, /PKCSReq/);
    writeFileSync(join(dir, 'junk'), Buffer.from([0x30, 0x82, 0xff, 0xff, 1, 2, 3]));
    const bad = run(join(dir, 'junk'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^scepter inspect: .+\n$/);
    assert.ok(!bad.stderr.includes('    at '), 'no stack trace');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
