/**
 * The systemd units in packaging/systemd/: `systemd-analyze verify` accepts both (with
 * ExecStart pointed at this checkout's CLI, since /usr/bin/scepter is not installed here; a
 * missing systemd-analyze skips with a reason), each runs as its own user with the required
 * hardening (ProtectSystem=strict, NoNewPrivileges, the data directory the only writable
 * path), the server unit starts with named admin tokens and JSON logs, and the sample agent
 * configuration is one `scepter agent` accepts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAgentConfig } from '../../src/client/agent.js';
import { hasCommand, needPeer } from '../helpers/peers.js';
import { tempDir } from '../helpers/scep-server.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'packaging', 'systemd');
const UNITS = ['scepter.service', 'scepter-agent.service'];

/** `Key=value` settings of a unit (every occurrence). */
function settings(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const x = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (x) m.set(x[1]!, [...(m.get(x[1]!) ?? []), x[2]!]);
  }
  return m;
}

test('systemd units: hardening of each unit', () => {
  for (const unit of UNITS) {
    const s = settings(readFileSync(join(DIR, unit), 'utf8'));
    const one = (k: string) => s.get(k)?.at(-1);
    assert.match(one('User') ?? '', /^scepter(-agent)?$/, `${unit} User`);
    assert.equal(one('ProtectSystem'), 'strict', unit);
    assert.equal(one('NoNewPrivileges'), 'yes', unit);
    assert.equal(one('CapabilityBoundingSet'), '', unit);
    const state = one('StateDirectory');
    assert.ok(state, `${unit} StateDirectory`);
    assert.deepEqual(
      s.get('ReadWritePaths'),
      [`/var/lib/${state}`],
      `${unit}: only the data directory is writable`,
    );
    assert.equal(one('ProtectHome'), 'yes', unit);
    assert.equal(one('PrivateTmp'), 'yes', unit);
  }
  const serve = settings(readFileSync(join(DIR, 'scepter.service'), 'utf8')).get('ExecStart')?.[0] ?? '';
  assert.match(serve, / serve --data \/var\/lib\/scepter /);
  assert.match(serve, / --admin-tokens \/etc\/scepter\/admin-tokens /);
  assert.match(serve, / --log-format json/);
  const users = readFileSync(join(DIR, 'scepter.sysusers.conf'), 'utf8');
  assert.match(users, /^u scepter /m);
  assert.match(users, /^u scepter-agent /m);
});

test('systemd units: systemd-analyze verify', (t) => {
  if (!needPeer(t, hasCommand('systemd-analyze'), 'systemd-analyze')) return;
  const dir = tempDir(t, 'scepter-units-');
  const cli = `${process.execPath} --import tsx ${join(ROOT, 'src', 'cli', 'main.ts')}`;
  for (const unit of UNITS) {
    const text = readFileSync(join(DIR, unit), 'utf8').replace(
      'ExecStart=/usr/bin/scepter ',
      `ExecStart=${cli} `,
    );
    writeFileSync(join(dir, unit), text);
  }
  const r = spawnSync('systemd-analyze', ['verify', ...UNITS.map((u) => join(dir, u))], { encoding: 'utf8' });
  assert.equal(r.status, 0, `systemd-analyze verify failed:\n${r.stdout}${r.stderr}`);
  // Only complaints about this machine's environment may remain, none about the units.
  const complaints = `${r.stdout}${r.stderr}`
    .split('\n')
    .filter((l) => l.trim() !== '' && UNITS.some((u) => l.includes(u)));
  assert.deepEqual(complaints, []);
});

test('sample agent configuration: accepted by scepter agent', (t) => {
  const dir = tempDir(t, 'scepter-agent-cfg-');
  const challenge = join(dir, 'agent-challenge');
  writeFileSync(challenge, 'sample-challenge\n');
  const raw = JSON.parse(readFileSync(join(DIR, 'agent.json'), 'utf8')) as Record<string, unknown>;
  // The sample's placeholder fingerprint replaced, as an operator does.
  const cfg = parseAgentConfig(
    { ...raw, challengeFile: challenge, caFingerprint: `sha256:${'ab'.repeat(32)}` },
    dir,
  );
  assert.equal(cfg.certificates[0]?.out, '/var/lib/scepter-agent/web');
  assert.equal(cfg.url, 'https://ca.example.net/scep');
});
