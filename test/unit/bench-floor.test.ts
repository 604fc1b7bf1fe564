/**
 * The floor server of `npm run bench -- --floor` (bench/lib/floor-server.ts) is only a fair
 * reference if it really does the work it claims: it must refuse a request whose signature
 * does not verify, answer an enrollment with the client's key encrypted to the client, sign
 * with the CA key, and do the same on its second engine and with its store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, privateDecrypt, verify, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { floorRequests, floorUrl, startFloor } from '../../bench/lib/floor.js';
import { postPkiMessage } from '../helpers/enrollment.js';

const rsa = (): { privateKey: KeyObject; publicKey: KeyObject } =>
  generateKeyPairSync('rsa', { modulusLength: 2048 });

test('the floor server verifies, decrypts, signs and answers on both engines and with its store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-floor-'));
  const ca = rsa();
  const client = rsa();
  const caKeyFile = join(dir, 'ca.pem');
  writeFileSync(caKeyFile, ca.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  try {
    const variants: Array<{ engines?: number; storeDir?: string }> = [
      {},
      { engines: 2 },
      { storeDir: join(dir, 'store') },
    ];
    for (const o of variants) {
      if (o.storeDir) mkdirSync(o.storeDir);
      const server = await startFloor({ caKeyFile, logFile: join(dir, 'server.log'), ...o });
      try {
        // Three of each, so that with two engines both of them answer.
        for (let i = 0; i < 3; i++) {
          const [enroll] = floorRequests('enroll', [client.privateKey], ca.publicKey, 1);
          const r = await postPkiMessage(floorUrl(server, 'enroll'), enroll!.der);
          assert.equal(r.status, 200, r.body.toString());
          assert.equal(r.body.length, 3600);
          // After the CertRep signature (256 bytes): the new key, RSA-encrypted to the client.
          // (Raw decryption: a PKCS#1 v1.5 type-2 block with a 16-byte key at its end.)
          const block = privateDecrypt(
            { key: client.privateKey, padding: constants.RSA_NO_PADDING },
            r.body.subarray(256, 512),
          );
          assert.deepEqual([block[0], block[1], block[block.length - 17]], [0, 2, 0]);

          const [poll] = floorRequests('poll', [client.privateKey], ca.publicKey, 1);
          const p = await postPkiMessage(floorUrl(server, 'poll'), poll!.der);
          assert.equal(p.status, 200);
          assert.equal(p.body.length, 1300);
          // The reply's first 256 bytes sign the 80 after them, with the CA key.
          assert.ok(verify('sha256', p.body.subarray(256, 336), ca.publicKey, p.body.subarray(0, 256)));

          // One flipped byte in the signed part: refused, not answered.
          const bad = Buffer.from(poll!.der);
          bad[bad.length - 300]! ^= 1;
          const b = await postPkiMessage(floorUrl(server, 'poll'), bad);
          assert.equal(b.status, 400);
          assert.match(b.body.toString(), /bad signature/);
        }
      } finally {
        await server.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
