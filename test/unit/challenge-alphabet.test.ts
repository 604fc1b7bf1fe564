/**
 * Generated challenges use only letters and digits: Windows clients put the challengePassword
 * in a PrintableString (no `_ @ * # ! ~`), and a leading `-` reads as a command-line option.
 * One-time challenges minted by older versions (base64url) are still accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALPHANUMERIC, randomAlphanumeric } from '../../src/crypto/random-text.js';
import { OneTimeChallenges, LEGACY_ONE_TIME_CHALLENGE_LENGTH } from '../../src/ra/one-time-challenge.js';
import { loadOrCreateChallenge, STATIC_CHALLENGE_LENGTH } from '../../src/server/data-dir.js';
import { PkiStatus } from '../../src/scep/index.js';
import {
  caCerts,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  recipientOf,
  tempDir,
  testServer,
} from '../helpers/scep-server.js';

/** X.680 PrintableString characters. */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A token exactly as versions before the hex format minted it (base64url of the 32 bytes). */
function legacyToken(key: Buffer, expiresAt: Date): string {
  const body = Buffer.alloc(24);
  randomBytes(20).copy(body);
  body.writeUInt32BE(Math.floor(expiresAt.getTime() / 1000), 20);
  const tag = createHmac('sha256', key).update('scepter-otc-tag\0').update(body).digest().subarray(0, 8);
  return Buffer.concat([body, tag]).toString('base64url');
}

test('randomAlphanumeric: letters and digits only, every one of them reachable', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const s = randomAlphanumeric(32);
    assert.equal(s.length, 32);
    assert.match(s, /^[A-Za-z0-9]{32}$/);
    for (const ch of s) seen.add(ch);
  }
  // 6400 draws from 62 characters: missing one has probability ≈ 62·(61/62)^6400 ≈ 0.
  assert.equal(seen.size, ALPHANUMERIC.length);
  assert.throws(() => randomAlphanumeric(0), RangeError);
});

test('generated static challenge: 32 letters and digits (PrintableString), kept across starts', (t) => {
  const dir = tempDir(t);
  const c = loadOrCreateChallenge(dir);
  assert.equal(c.source, 'created');
  assert.equal(c.value.length, STATIC_CHALLENGE_LENGTH);
  assert.match(c.value, /^[A-Za-z0-9]+$/);
  assert.match(c.value, PRINTABLE);
  assert.equal(readFileSync(join(dir, 'challenge'), 'utf8').trim(), c.value);
  assert.equal(loadOrCreateChallenge(dir).value, c.value, 'read back, not regenerated');
});

test('one-time challenges: PrintableString hex, never a leading "-"; old base64url tokens still verify', () => {
  const key = Buffer.alloc(32, 9);
  const ot = new OneTimeChallenges(key);
  const now = new Date('2030-01-01T00:00:00Z');
  const later = new Date(now.getTime() + 3_600_000);
  for (let i = 0; i < 100; i++) {
    const v = ot.create(later).value;
    assert.match(v, /^[0-9a-f]{64}$/);
    assert.match(v, PRINTABLE);
  }
  // A token of the old format (base64url, may hold '_' or start with '-').
  const old = legacyToken(key, later);
  assert.equal(old.length, LEGACY_ONE_TIME_CHALLENGE_LENGTH);
  const r = ot.check(old, now);
  assert.equal(r.kind, 'one-time');
  assert.equal(r.kind === 'one-time' && r.hash, ot.hash(old), 'the store key it was minted under');
  assert.equal(ot.check(old, new Date(later.getTime() + 1000)).kind, 'expired');
  assert.equal(new OneTimeChallenges(Buffer.alloc(32, 1)).check(old, now).kind, 'foreign', 'other key');
  const flipped = (old[0] === 'A' ? 'B' : 'A') + old.slice(1);
  assert.equal(ot.check(flipped, now).kind, 'foreign');
});

test('an old-format one-time challenge issued before the upgrade still enrolls, once', async (t) => {
  const s = await testServer(t, { challenges: { static: false } });
  const key = s.dataDir!.challengeKey;
  const expiresAt = new Date(Date.now() + 3_600_000);
  const token = legacyToken(key, expiresAt);
  // Stored the way the older version's mint stored it: the keyed hash of the token text.
  await s.enrollment!.store.addSecret(
    new OneTimeChallenges(key).hash(token),
    new Date(Math.floor(expiresAt.getTime() / 1000) * 1000),
    {
      kind: 'one-time-challenge',
    },
  );
  const certs = await caCerts(s.url);
  const d1 = device('CN=legacy-token-1', { pool: 7 });
  const req1 = pkcsReq(d1, recipientOf(certs), { challenge: token });
  const rep1 = openCertRep((await postPki(s.url, req1.der)).body, req1, d1, certs);
  assert.equal(rep1.status, PkiStatus.SUCCESS, rep1.failInfoText);
  const d2 = device('CN=legacy-token-2', { pool: 8 });
  const req2 = pkcsReq(d2, recipientOf(certs), { challenge: token });
  const rep2 = openCertRep((await postPki(s.url, req2.der)).body, req2, d2, certs);
  assert.equal(rep2.status, PkiStatus.FAILURE, 'single use');
});
