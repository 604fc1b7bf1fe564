/**
 * The README's quickstart works as written (issue #12): `npx scepter` resolves in a checkout,
 * and the quickstart's commands, run against `scepter serve` (the built CLI, as `npm start`
 * runs it, on a free port and a fixture CA), end in an issued certificate.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scepterCli } from '../helpers/cli.js';
import { ensureBuilt } from '../helpers/build.js';
import { seedCa } from '../helpers/scep-server.js';
import { fromPem, parseCertificate } from '../../src/pkix/certificate.js';
import { OID } from '../../src/asn1/oids.js';
import { parseSubjectAltName } from '../../src/pkix/extensions.js';

const ROOT = join(import.meta.dirname, '..', '..');
const procs: ChildProcessWithoutNullStreams[] = [];
const dirs: string[] = [];
after(() => {
  for (const p of procs) p.kill();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The fenced sh blocks of the README section `heading`. */
function section(readme: string, heading: string): string[] {
  const start = readme.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README has "${heading}"`);
  const end = readme.indexOf('\n## ', start + heading.length + 2);
  const body = readme.slice(start, end < 0 ? undefined : end);
  return [...body.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Shell words of one command line (double quotes, no expansions), comment stripped. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(#.*$)|(\S+)/g;
  for (const m of line.matchAll(re)) {
    if (m[2] !== undefined) break;
    out.push(m[1] ?? m[3]!);
  }
  return out;
}

function run(args: string[], cwd: string) {
  return scepterCli(args, { main: ensureBuilt().main, cwd });
}

test('README quickstart: npx scepter resolves in the checkout; serve + enroll end in a certificate', async () => {
  const b = ensureBuilt();
  assert.equal(b.status, 0, b.output);
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = section(readme, '## Quickstart: a first certificate');
  assert.equal(blocks.length, 2);
  assert.match(blocks[0]!, /^npm ci && npm start\b/);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    scripts: Record<string, string>;
  };
  assert.equal(pkg.bin.scepter, 'dist/cli/main.js');
  assert.equal(pkg.scripts.start, 'node dist/cli/main.js serve --data ./data --port 8080');

  // `npx scepter` from the checkout runs the package's own bin (no install, no PATH change).
  const npx = spawnSync('npx', ['--no-install', 'scepter', '--version'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(npx.status, 0, npx.stderr);
  assert.equal(
    npx.stdout.trim(),
    (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
  );

  // `npm start` in a fresh directory, on a free port and with a fixture CA (no key generation).
  const cwd = mkdtempSync(join(tmpdir(), 'scepter-readme-'));
  dirs.push(cwd);
  seedCa(join(cwd, 'data'));
  const server = spawn(process.execPath, [b.main, 'serve', '--data', './data', '--port', '0'], { cwd });
  procs.push(server);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /SCEP server listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.on('exit', (c) => reject(new Error(`serve exited ${c}: ${out}`)));
  });

  const lines = blocks[1]!
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => l.trim() !== '');
  assert.ok(lines.length >= 2);
  const outputs: string[] = [];
  for (const line of lines) {
    const w = words(line.replaceAll('http://127.0.0.1:8080/scep', url));
    assert.deepEqual(w.slice(0, 2), ['npx', 'scepter'], line);
    const r = await run(w.slice(2), cwd);
    assert.equal(r.status, 0, `${line}\n${r.stderr}`);
    outputs.push(r.stdout);
  }
  assert.ok(
    outputs.some((o) => /issued certificate [0-9a-f]+ for /i.test(o)),
    outputs.join('\n'),
  );
  const der = fromPem(readFileSync(join(cwd, 'dev1', 'cert.pem'), 'latin1'))[0]!;
  const cert = parseCertificate(der);
  const san = cert.extension(OID.subjectAltName);
  assert.ok(san);
  assert.deepEqual(parseSubjectAltName(san.value), [
    { type: 'dns', value: 'dev1.example' },
    { type: 'ip', value: '10.1.2.3' },
  ]);
  assert.ok(existsSync(join(cwd, 'dev1', 'key.pem')));
});
