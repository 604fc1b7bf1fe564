/**
 * Durability under a crash (issue 6): `scepter serve` runs as a child process with two
 * enrollment workers and group-committed SQLite; clients enroll concurrently; the server is
 * killed with SIGKILL mid-load. After a restart on the same data directory every client that
 * got SUCCESS finds its certificate: a resend of its request gets the byte-identical
 * certificate, and the store holds it under its transactionID and passes its integrity check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCa } from '../../src/ca/keystore.js';
import { seedCa } from '../helpers/scep-server.js';
import { openStore } from '../../src/store/index.js';
import {
  checkReply,
  generateRsaKeys,
  makeEnrollment,
  postPkiMessage,
  type PreparedEnrollment,
} from '../helpers/enrollment.js';

const CHALLENGE = 'crash-test-challenge-5';
const ROOT = new URL('../../', import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  url: string;
  output: () => string;
}

/** Starts `scepter serve` from the sources and waits for its listening line. */
function serve(dataDir: string): Promise<Child> {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/main.ts'),
      'serve',
      '--data',
      dataDir,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--challenge',
      CHALLENGE,
      '--workers',
      '2',
      '--log-level',
      'warn',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start:\n${out}`));
    }, 60_000);
    const check = () => {
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        proc.stdout?.off('data', check);
        proc.stderr?.off('data', check);
        resolve({ proc, url: m[1] as string, output: () => out });
      }
    };
    // The banner is on stderr, log lines on stdout.
    proc.stdout?.on('data', check);
    proc.stderr?.on('data', check);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${out}`));
    });
  });
}

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

test('kill -9 under load: every SUCCESS survives the restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-crash-'));
  let child: Child | undefined;
  t.after(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await exited(child.proc);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  seedCa(dir); // the CA from fixture keys, as `scepter ca init` would write it
  const { caCert } = loadCa(dir);
  const keys = await generateRsaKeys(8);
  const requests = Array.from({ length: 600 }, (_, i) =>
    makeEnrollment({
      key: keys[i % keys.length]!,
      recipient: caCert,
      challenge: CHALLENGE,
      cn: `crash-${i}`,
    }),
  );

  child = await serve(dir);
  const first = child;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const succeeded: Array<{ e: PreparedEnrollment; serial: string; certDer: Buffer }> = [];
  const interrupted: PreparedEnrollment[] = [];
  let next = 0;
  let killed = false;
  const kill = () => {
    if (killed) return;
    killed = true;
    first.proc.kill('SIGKILL');
  };
  const clients = Array.from({ length: 16 }, async () => {
    while (!killed && next < requests.length) {
      const e = requests[next++]!;
      try {
        const r = await postPkiMessage(first.url, e.der, agent);
        const c = checkReply(r.status, r.body, e, [caCert]);
        if (!c.ok) assert.fail(`before the crash: ${c.reason}`);
        // A reply that arrived counts, even if the kill lands right after it.
        succeeded.push({ e, serial: c.serial, certDer: c.certDer });
        if (succeeded.length >= 120) kill();
      } catch (err) {
        if (!killed) throw err;
        interrupted.push(e);
      }
    }
  });
  const watchdog = setTimeout(kill, 20_000);
  await Promise.all(clients);
  clearTimeout(watchdog);
  agent.destroy();
  await exited(first.proc);
  assert.equal(first.proc.signalCode, 'SIGKILL', 'the server died by SIGKILL, not by itself');
  assert.ok(succeeded.length >= 100, `enough successes before the crash (${succeeded.length})`);

  // Restart on the same data directory: every SUCCESS is answered again, identically.
  child = await serve(dir);
  const second = child;
  const agent2 = new Agent({ keepAlive: true, maxSockets: 8 });
  for (const s of succeeded) {
    const r = await postPkiMessage(second.url, s.e.der, agent2);
    const c = checkReply(r.status, r.body, s.e, [caCert]);
    assert.ok(c.ok, `resend of ${s.e.transactionId} after the crash: ${c.ok ? '' : c.reason}`);
    assert.ok(c.certDer.equals(s.certDer), `${s.e.transactionId}: the same certificate as before the crash`);
  }
  // Requests cut off by the crash complete now (issued once, whether or not they had committed).
  for (const e of interrupted.slice(0, 8)) {
    const r = await postPkiMessage(second.url, e.der, agent2);
    const c = checkReply(r.status, r.body, e, [caCert]);
    assert.ok(c.ok, `interrupted ${e.transactionId} completes after restart: ${c.ok ? '' : c.reason}`);
  }
  agent2.destroy();
  second.proc.kill('SIGTERM');
  await exited(second.proc);

  const store = await openStore(join(dir, 'scepter.db'));
  try {
    for (const s of succeeded) {
      const rec = await store.getCertificate(s.serial);
      assert.ok(rec, `certificate ${s.serial} is in the store`);
      assert.equal(rec.transactionId, s.e.transactionId);
      assert.ok(rec.der.equals(s.certDer));
    }
    for (const e of interrupted.slice(0, 8)) {
      const page = await store.searchCertificates({ transactionId: e.transactionId });
      assert.equal(page.total, 1, `exactly one certificate for interrupted ${e.transactionId}`);
    }
    const report = await store.integrityCheck();
    assert.ok(report.ok, report.problems.join('; '));
  } finally {
    await store.close();
  }
});
