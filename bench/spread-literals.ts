/**
 * Why eslint.config.js refuses object literals that start with a spread (docs/benchmarks.md,
 * issue #15, fourth round): each form below runs 300,000 times in its own node process with
 * V8's map log and GC trace on; the table gives the hidden classes (map transitions) the
 * process made and the bytes its scavenges promoted.
 *
 *   node --import tsx bench/spread-literals.ts
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FORMS: Record<string, string> = {
  '`{ a: x.a, …, c, d }` (written out)':
    '({ transactionId: x.transactionId, recipientNonce: x.recipientNonce, signer: x.signer, digest: x.digest, status: 0, certificates: [i] })',
  '`{ ...x, c, d }`': '({ ...x, status: 0, certificates: [i] })',
  '`{ ...x, ...y }`': '({ ...x, ...y })',
  '`{ c, ...x }`': '({ status: 0, ...x })',
  '`Object.assign({}, x, { c, d })`': 'Object.assign({}, x, { status: 0, certificates: [i] })',
  '`{ ...x }`': '({ ...x })',
};

function script(form: string): string {
  return `let sink = 0;
function once(i) {
  const x = { transactionId: 't' + i, recipientNonce: i, signer: null, digest: 'sha256' };
  const y = { outcome: 'x', serial: 's' + i };
  const o = ${form};
  sink += Object.keys(o).length;
}
for (let i = 0; i < 300000; i++) once(i);`;
}

const dir = mkdtempSync(join(tmpdir(), 'scepter-spread-'));
try {
  console.log(`node ${process.version}, 300,000 runs of each form`);
  console.log('');
  console.log('| literal | hidden classes made | promoted by scavenges |');
  console.log('|---|---:|---:|');
  for (const [name, form] of Object.entries(FORMS)) {
    const log = join(dir, 'v8.log');
    const r = spawnSync(
      process.execPath,
      [
        '--trace-gc-nvp',
        '--log-maps',
        '--no-log-maps-details',
        `--logfile=${log}`,
        '--no-logfile-per-isolate',
        '--log',
        '-e',
        script(form),
      ],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    if (r.status !== 0) throw new Error(`${name}: node failed:\n${r.stderr}`);
    const maps = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('map,Transition')).length;
    let promoted = 0;
    for (const m of r.stdout.matchAll(/ gc=s .*? promoted=(\d+)/g)) promoted += Number(m[1]);
    console.log(`| ${name} | ${maps} | ${(promoted / 1e6).toFixed(1)} MB |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
