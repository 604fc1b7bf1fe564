/**
 * Durable key/cert writes (src/ca/durable-file.ts) and the start-up permission warnings
 * (src/server/data-dir.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileDurably } from '../../src/ca/durable-file.js';
import { writePublic, writeSecret } from '../../src/ca/keystore.js';
import { permissionWarnings } from '../../src/server/data-dir.js';

const dir = mkdtempSync(join(tmpdir(), 'scepter-durable-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('writeFileDurably: complete content, exact mode whatever the umask, no temporary file left', () => {
  const old = process.umask(0o077);
  try {
    writeFileDurably(join(dir, 'a.crt'), 'cert\n', { mode: 0o644 });
  } finally {
    process.umask(old);
  }
  assert.equal(readFileSync(join(dir, 'a.crt'), 'utf8'), 'cert\n');
  assert.equal(statSync(join(dir, 'a.crt')).mode & 0o777, 0o644);
  writeFileDurably(join(dir, 'b.key'), Buffer.alloc(100_000, 7), { mode: 0o600 });
  assert.deepEqual(readFileSync(join(dir, 'b.key')), Buffer.alloc(100_000, 7));
  assert.equal(statSync(join(dir, 'b.key')).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir).sort(), ['a.crt', 'b.key']);
});

test('writeFileDurably: exclusive by default (EEXIST, old content kept); exclusive false replaces', () => {
  const p = join(dir, 'c.key');
  writeFileDurably(p, 'one', { mode: 0o600 });
  assert.throws(
    () => writeFileDurably(p, 'two', { mode: 0o600 }),
    (e: NodeJS.ErrnoException) => e.code === 'EEXIST',
  );
  assert.equal(readFileSync(p, 'utf8'), 'one');
  writeFileDurably(p, 'three', { mode: 0o600, exclusive: false });
  assert.equal(readFileSync(p, 'utf8'), 'three');
  assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temporary file left behind');
});

test('keystore writers use it: 0600 keys, 0644 certificates, never overwrite', () => {
  const sub = join(dir, 'ks');
  mkdirSync(sub);
  writeSecret(join(sub, 'ca.key'), 'KEY');
  writePublic(join(sub, 'ca.crt'), 'CERT');
  assert.equal(statSync(join(sub, 'ca.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(sub, 'ca.crt')).mode & 0o777, 0o644);
  assert.throws(() => writeSecret(join(sub, 'ca.key'), 'OTHER'), /EEXIST/);
  assert.equal(readFileSync(join(sub, 'ca.key'), 'utf8'), 'KEY');
});

test(
  'permissionWarnings: data directory, CA directory and admin token file readable by others',
  { skip: process.platform === 'win32' },
  () => {
    const data = join(dir, 'data');
    mkdirSync(join(data, 'ca'), { recursive: true });
    const token = join(dir, 'token');
    writeFileSync(token, 'x'.repeat(32));
    chmodSync(data, 0o700);
    chmodSync(join(data, 'ca'), 0o700);
    chmodSync(token, 0o600);
    assert.deepEqual(permissionWarnings({ dataDir: data, adminTokenFile: token }), []);
    chmodSync(data, 0o755);
    chmodSync(token, 0o640);
    const w = permissionWarnings({ dataDir: data, adminTokenFile: token });
    assert.equal(w.length, 2);
    assert.match(w[0]!, /^the data directory .* is readable by group or others \(mode 755\): chmod 700 /);
    assert.match(w[1]!, /^the admin token file .* \(mode 640\): chmod 600 /);
    assert.ok(!w.join('\n').includes('x'.repeat(32)), 'never the token itself');
    assert.deepEqual(permissionWarnings({ dataDir: join(dir, 'missing') }), []);
  },
);
